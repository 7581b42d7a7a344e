"""A workflow for the whole-run tests on Ray (tests/runners/test_ray_runs.py): imported by the
Ray workers by its target, ``tests.runners.whole_run:workflow``. Its storage and the files its
steps write come from the task's environment, set by ``plait_ray.submit(..., env=...)``."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from plait import Step, StepInput, StepOutput, Workflow

WORK = Path(os.environ.get("PLAIT_WHOLE_RUN_DIR", "."))


def prepare(step_input: StepInput) -> StepOutput:
    with open(WORK / "prepared", "a") as file:  # a side effect: how many times it ran
        file.write(f"{os.getpid()}\n")
    return StepOutput(content=f"prepared {step_input.input}")


def risky(step_input: StepInput) -> StepOutput:
    marker = WORK / "died"
    if os.environ.get("PLAIT_WHOLE_RUN_DIE") and not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)  # the Ray worker dies mid-run
    return StepOutput(content=f"{step_input.previous_step_content}, survived")


def finish(step_input: StepInput) -> StepOutput:
    return StepOutput(content=f"{step_input.previous_step_content}, finished in {os.getpid()}")


def _storage() -> object:
    url = os.environ.get("PLAIT_WHOLE_RUN_STORAGE")
    schema = os.environ.get("PLAIT_WHOLE_RUN_SCHEMA")  # PostgreSQL: a schema of the test's own
    if url and schema:
        from plait_postgres import PostgresStorage

        return PostgresStorage(url, schema=schema)
    prefix = os.environ.get("PLAIT_WHOLE_RUN_PREFIX")  # Redis: keys of the test's own
    if url and prefix:
        from plait_redis import RedisStorage

        return RedisStorage(url, prefix=prefix)
    return url


workflow = Workflow(
    name="whole run",
    steps=[
        Step(name="prepare", executor=prepare),
        Step(name="risky", executor=risky),
        Step(name="finish", executor=finish),
    ],
    storage=_storage(),
)
