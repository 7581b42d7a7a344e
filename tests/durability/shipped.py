"""A Parallel whose branches a runner ships to another process (by default through pickle:
plait.testing.PickleRoundTripRunner), one of them an agent, for the recording tests of shipped
branches; as a script, for crash tests: ``python shipped.py STORAGE BASE_URL run|resume RUN_ID``.

STORAGE is as in tool_loop.py. With ``log=`` the agent has a tool (a closure: cloudpickle, as
Ray uses, ships it; plain pickle cannot ship an agent with tools) that appends a line to that
file per call, and the server's handler makes it loop twice. With $PLAIT_DIE_AFTER set to N,
the other branch waits until the run's storage holds N recorded calls of the agent's step, then
the process kills itself with SIGKILL (the agent's branch has finished and the parent stored
its calls; the Parallel has not finished).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from plait import Agent, Parallel, Step, StepInput, Steps, Workflow
from plait.storage import resolve_storage
from plait.testing import PickleRoundTripRunner
from tests.durability.tool_loop import storage_for
from tests.servers.openai_server import Reply, ToolCallReply

AGENT_STEP = "fan/research"


def handler(body: dict[str, Any]) -> Reply | str:
    """With a tool: two rounds of one tool call each; then the answer."""
    done = sum(1 for m in body["messages"] if m["role"] == "tool")
    if body.get("tools") and done < 2:
        return Reply(tool_calls=[ToolCallReply("lookup", {"n": done + 1})])
    return "Looked up items 1 and 2."


async def tally(step_input: StepInput) -> str:
    """The other branch: with $PLAIT_DIE_AFTER, dies once the agent's calls are stored."""
    wanted = os.environ.get("PLAIT_DIE_AFTER")
    if wanted:
        storage = resolve_storage(storage_for(os.environ["PLAIT_TEST_STORAGE"]))
        assert storage is not None
        await storage.setup()
        run_id = os.environ["PLAIT_TEST_RUN"]
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            calls = [c for c in await storage.load_calls(run_id) if c.step_id == AGENT_STEP]
            if len(calls) >= int(wanted):
                Path(f"{os.environ['PLAIT_TEST_LOG']}.dying").write_text(str(len(calls)))
                os.kill(os.getpid(), signal.SIGKILL)
            await asyncio.sleep(0.05)
        raise RuntimeError("the agent's calls were never stored")
    return f"tally of {step_input.input}"


class FailOnce:
    """A step that fails the first time (``marker`` absent), then passes its input on."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __call__(self, step_input: StepInput) -> str:
        if not Path(self.marker).exists():
            Path(self.marker).write_text("failed")
            raise RuntimeError("check failed")
        return f"checked: {step_input.previous_step_content}"


def looker(
    base_url: str, instructions: str = "Look items up one at a time.", log: Path | None = None
) -> tuple[Agent, Any]:
    """The agent (with a tool when ``log`` is given) and its model (to close)."""
    from plait_openai import OpenAIModel

    tools = []
    if log is not None:
        path = str(log)

        def lookup(n: int) -> str:
            """Look up item n."""
            with open(path, "a") as f:
                f.write(f"{n}\n")
            return f"item {n} is {n * n}"

        tools.append(lookup)
    model = OpenAIModel("gpt-4o-mini", base_url=base_url, api_key="sk-test-secret-key")
    return Agent(name="Looker", model=model, tools=tools, instructions=instructions), model


def build(
    storage: Any,
    base_url: str,
    runner: Any = None,
    instructions: str = "Look items up one at a time.",
    log: Path | None = None,
) -> tuple[Workflow, Any]:
    """The workflow (its Parallel shipped through ``runner``) and its model (to close)."""
    agent, model = looker(base_url, instructions, log)
    workflow = Workflow(
        name="shipped",
        steps=[Parallel(Step(name="research", agent=agent), Step(name="tally", executor=tally), name="fan")],
        storage=storage,
        runner=runner or PickleRoundTripRunner(),
    )
    return workflow, model


def build_failing(
    storage: Any, base_url: str, runner: Any, marker: Path, log: Path | None = None
) -> tuple[Workflow, Any]:
    """As :func:`build`, the agent's branch a Steps whose second step fails the first time."""
    agent, model = looker(base_url, log=log)
    branch = Steps(
        name="research",
        steps=[Step(name="ask", agent=agent), Step(name="check", executor=FailOnce(str(marker)))],
    )
    workflow = Workflow(
        name="shipped-failing",
        steps=[Parallel(branch, Step(name="tally", executor=tally), name="fan")],
        storage=storage,
        runner=runner,
    )
    return workflow, model


if __name__ == "__main__":
    spec, base_url, mode, run_id = sys.argv[1:5]
    workflow, _ = build(storage_for(spec), base_url)
    output = workflow.run("items 1 and 2", run_id=run_id) if mode == "run" else workflow.continue_run(run_id)
    print(json.dumps({"status": str(output.status), "content": dict(output.content)}))
