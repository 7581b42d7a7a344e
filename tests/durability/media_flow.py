"""A workflow whose first step makes a 2 MB image that an agent then looks at, for storage tests
run in subprocesses: ``python media_flow.py STORAGE BASE_URL run|resume|replay RUN_ID``.

``load`` (cached) returns the text and the image as parts; ``look`` is an agent that sends them
to the OpenAI-protocol server at BASE_URL; ``check`` prints the SHA-256 of the image it is given
and fails while $PLAIT_FAIL_CHECK is set (so the run can be resumed). Each run of ``load``
appends a line to $PLAIT_TEST_LOG. STORAGE as in tool_loop.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
from pathlib import Path

from plait import Agent, ImagePart, Step, StepInput, TextPart, Workflow
from tests.durability.tool_loop import storage_for

#: a PNG header and 2 MB of bytes no compression would shrink (every value, NUL included)
IMAGE = b"\x89PNG\r\n\x1a\n" + random.Random(7).randbytes(2 * 1024 * 1024)


def load(step_input: StepInput) -> list[object]:
    with Path(os.environ["PLAIT_TEST_LOG"]).open("a") as f:
        f.write("load\n")
    return [TextPart(f"Describe this image of {step_input.input}."), ImagePart(data=IMAGE)]


def check(step_input: StepInput) -> str:
    if os.environ.get("PLAIT_FAIL_CHECK"):
        raise RuntimeError("check failed on purpose")
    parts = step_input.get_step_content("load")
    image = next(p for p in parts if isinstance(p, ImagePart))
    return hashlib.sha256(image.data or b"").hexdigest()


def build(storage: str, base_url: str) -> Workflow:
    from plait_openai import OpenAIModel

    model = OpenAIModel("gpt-4o-mini", base_url=base_url, api_key="sk-test-secret-key")
    return Workflow(
        name="media-flow",
        steps=[
            Step(name="load", executor=load, cache=True),
            Step(name="look", agent=Agent(name="Looker", model=model)),
            Step(name="check", executor=check),
        ],
        storage=storage_for(storage),
    )


if __name__ == "__main__":
    storage, base_url, mode, run_id = sys.argv[1:5]
    workflow = build(storage, base_url)
    if mode == "run":
        try:
            output = workflow.run("a cat", run_id=run_id)
        except Exception as exc:  # check failed: the run is stored, to be resumed
            print(json.dumps({"status": "error", "error": f"{type(exc).__name__}: {exc}"}))
            sys.exit(0)
    elif mode == "resume":
        output = workflow.continue_run(run_id)
    else:
        output = workflow.replay(run_id)
    print(json.dumps({"status": str(output.status), "content": output.content, "run": output.run_id}))
