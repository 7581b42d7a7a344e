"""A workflow for crash tests, run in subprocesses: ``python crashy.py URL MODE [RUN_ID]``.

Every executed step appends its name to the side-effect log ($PLAIT_TEST_LOG), so a
test can count what ran. A step named in $PLAIT_BLOCK_AT writes $PLAIT_TEST_LOG.blocked
and then hangs, until the test kills the process with SIGKILL.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from plait import Loop, Parallel, Step, StepInput, Workflow


def effect(name: str):  # type: ignore[no-untyped-def]
    def step(step_input: StepInput, run_context) -> str:  # type: ignore[no-untyped-def]
        log = Path(os.environ["PLAIT_TEST_LOG"])
        if os.environ.get("PLAIT_BLOCK_AT") == name:
            Path(f"{log}.blocked").write_text(name)
            time.sleep(120)  # killed here
        with log.open("a") as f:
            f.write(name + "\n")
        run_context.session_state[name] = run_context.session_state.get(name, 0) + 1
        previous = step_input.previous_step_content
        return f"{name}({previous if isinstance(previous, str) else json.dumps(previous, sort_keys=True) if previous else step_input.input})"

    step.__name__ = name
    return Step(name=name, executor=step)


def build(storage: str) -> Workflow:
    return Workflow(
        name="crashy",
        steps=[
            effect("first"),
            Parallel(effect("b1"), effect("b2"), effect("b3"), name="fan"),
            Loop(name="loop", steps=[effect("body")], max_iterations=3, forward_iteration_output=True),
            effect("last"),
        ],
        storage=storage,
    )


if __name__ == "__main__":
    url, mode = sys.argv[1], sys.argv[2]
    workflow = build(url)
    if mode == "run":
        output = workflow.run("go", run_id=sys.argv[3] if len(sys.argv) > 3 else None)
    else:
        output = workflow.continue_run(sys.argv[3])
    print(
        json.dumps({"status": str(output.status), "content": output.content, "state": output.session_state})
    )
