"""A workflow for the crash test of a fork, run in subprocesses:
``python forky.py URL run RUN_ID`` | ``fork RUN_ID CHANGE`` | ``resume RUN_ID``.

Steps ``a``, ``b``, ``c``, ``d``. With $PLAIT_FAIL_B set, ``b`` fails (the original run
stops there, so a fork at ``c`` runs ``b`` live before reaching ``c``). With
$PLAIT_BLOCK_B set, ``b`` writes the run's id to $PLAIT_TEST_LOG.blocked and hangs until the
test kills the process with SIGKILL. ``fork RUN_ID state+input`` forks at ``c`` with a new
session-state value and input; ``fork RUN_ID output`` gives ``c`` an output instead. Every
step appends its name to $PLAIT_TEST_LOG.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from plait import RunContext, Step, StepInput, Workflow
from plait.errors import StepError
from tests.durability.onceful import storage_for


def _log(name: str) -> Path:
    log = Path(os.environ["PLAIT_TEST_LOG"])
    with log.open("a") as f:
        f.write(f"{name}\n")
    return log


def a(step_input: StepInput, session_state: dict[str, Any]) -> str:
    _log("a")
    session_state["mood"] = ""
    return f"a({step_input.input})"


def b(step_input: StepInput, run_context: RunContext) -> str:
    log = _log("b")
    if os.environ.get("PLAIT_FAIL_B"):
        raise RuntimeError("b failed")
    if os.environ.get("PLAIT_BLOCK_B"):
        Path(f"{log}.blocked").write_text(run_context.run_id)
        time.sleep(120)  # killed here: the fork has not reached c
    return f"b({step_input.previous_step_content})"


def c(step_input: StepInput, session_state: dict[str, Any]) -> str:
    _log("c")
    return f"c{session_state.get('mood', '')}({step_input.input})"


def d(step_input: StepInput, session_state: dict[str, Any]) -> str:
    _log("d")
    return f"d{session_state.get('mood', '')}({step_input.previous_step_content})"


def build(url: str) -> Workflow:
    return Workflow(
        name="forky",
        steps=[Step(name=n, executor=f) for n, f in (("a", a), ("b", b), ("c", c), ("d", d))],
        storage=storage_for(url),
    )


def main(url: str, mode: str, run_id: str, change: str = "") -> dict[str, Any]:
    workflow = build(url)
    if mode == "run":
        try:
            output = workflow.run("go", run_id=run_id)
        except StepError as exc:  # b failed: the run stops there, a is checkpointed
            return {"status": "ERROR", "error": str(exc)}
    elif mode == "fork":
        if change == "output":
            output = workflow.fork(run_id, at="c", output="given")
        else:
            output = workflow.fork(run_id, at="c", state={"mood": "!"}, input="changed")
    else:
        output = workflow.continue_run(run_id)
    return {
        "status": str(output.status),
        "content": output.content,
        "run_id": output.run_id,
        "lineage": output.lineage,
        "mood": (output.session_state or {}).get("mood"),
    }


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:])))
