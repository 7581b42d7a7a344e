"""A workflow whose agent keeps a conversation, for the resume test of conversation history:
``python chatty.py SQLITE_URL BASE_URL run|resume RUN_ID``.

Step ``chat`` runs an agent with ``history=3`` (OpenAI-protocol server at BASE_URL) in its
code, then writes $PLAIT_TEST_LOG.blocked and hangs until the test kills the process (unless
$PLAIT_NO_BLOCK is set): the agent's turn is kept and its model call recorded, the step is
not checkpointed, so the resumed run runs the step again.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from plait import Agent, Step, StepInput, Workflow


def build(url: str, base_url: str) -> tuple[Workflow, Agent]:
    from plait_openai import OpenAIModel

    model = OpenAIModel("gpt-4o-mini", base_url=base_url, api_key="sk-test")
    agent = Agent(name="Chat", model=model, history=3)

    def chat(step_input: StepInput) -> str:
        reply = agent.run(step_input.input).content
        if not os.environ.get("PLAIT_NO_BLOCK"):
            Path(f"{os.environ['PLAIT_TEST_LOG']}.blocked").write_text("chat")
            time.sleep(120)  # killed here: the turn is kept, the step is not checkpointed
        return str(reply)

    return Workflow(name="chatty", steps=[Step(name="chat", executor=chat)], storage=url), agent


if __name__ == "__main__":
    url, base_url, mode, run_id = sys.argv[1:5]
    workflow, _ = build(url, base_url)
    if mode == "run":
        output = workflow.run("Remember 42.", run_id=run_id, session_id="conv")
    else:
        output = workflow.continue_run(run_id)
    print(json.dumps({"status": str(output.status), "content": output.content}))
