"""An agent in a 5-round tool loop against an OpenAI-protocol server, for crash tests run in
subprocesses: ``python tool_loop.py STORAGE BASE_URL run|resume RUN_ID``.

STORAGE is ``sqlite:///path``, ``postgres:SCHEMA`` or ``redis:PREFIX`` (a schema or prefix of
the test's own). Each tool call appends a line to $PLAIT_TEST_LOG (the side effect a test
counts); the call named by $PLAIT_BLOCK_AT (``"3"``: the third) writes ``$PLAIT_TEST_LOG.blocked``
first and then hangs until the test kills the process.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from plait import Agent, Step, Workflow


def storage_for(spec: str) -> Any:
    """A storage object for ``postgres:SCHEMA`` / ``redis:PREFIX``; anything else (a URL) as it is."""
    if "://" in spec:
        return spec
    if spec.startswith("postgres:"):
        from plait_postgres import PostgresStorage

        return PostgresStorage("postgresql://127.0.0.1:5432/test", schema=spec.partition(":")[2])
    if spec.startswith("redis:"):
        from plait_redis import RedisStorage

        return RedisStorage("redis://127.0.0.1:6379/0", prefix=spec.partition(":")[2])
    return spec


def lookup(n: int) -> str:
    """Look up item n."""
    log = Path(os.environ["PLAIT_TEST_LOG"])
    if os.environ.get("PLAIT_BLOCK_AT") == str(n):
        Path(f"{log}.blocked").write_text(str(n))
        time.sleep(120)  # killed here
    with log.open("a") as f:
        f.write(f"{n}\n")
    return f"item {n} is {n * n}"


def build(storage: str, base_url: str) -> Workflow:
    from plait_openai import OpenAIModel

    model = OpenAIModel("gpt-4o-mini", base_url=base_url, api_key="sk-test-secret-key")
    agent = Agent(name="Looker", model=model, tools=[lookup], instructions="Look items up one at a time.")
    return Workflow(name="tool-loop", steps=[Step(name="look", agent=agent)], storage=storage_for(storage))


if __name__ == "__main__":
    storage, base_url, mode, run_id = sys.argv[1:5]
    workflow = build(storage, base_url)
    if mode == "run":
        output = workflow.run("look up items 1 to 5", run_id=run_id)
    else:
        output = workflow.continue_run(run_id)
    print(json.dumps({"status": str(output.status), "content": output.content}))
