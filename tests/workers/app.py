"""A workflow for worker tests, loaded by ``plait worker tests/workers/app.py:workflow``.

Its name comes from $PLAIT_TEST_WORKFLOW (one per test), its storage from $PLAIT_STORAGE, its
schedule (if any) from $PLAIT_TEST_SCHEDULE, its retention (if any) from $PLAIT_TEST_RETENTION, its ``max_concurrent_runs`` from
$PLAIT_TEST_MAX_RUNS; it stores its events when $PLAIT_TEST_STORE_EVENTS is 1. With $PLAIT_TEST_ACTIVE set, step ``b`` appends ``START run_id pid`` and
``END run_id pid`` to that file around its sleep (one short append each, so from the file's
order one reads how many runs were inside ``b`` at once, across processes).
Step ``a`` is quick, step ``b`` waits $PLAIT_TEST_SLEEP seconds (asynchronously). Each step
execution appends ``step run_id pid`` to $PLAIT_TEST_LOG; a step that finds the same step of
the same run executing in another live process appends ``OVERLAP ...`` instead.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from plait import RunContext, Step, StepInput, Workflow


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def effect(name: str, sleep_env: str | None = None):  # type: ignore[no-untyped-def]
    async def step(step_input: StepInput, run_context: RunContext) -> str:
        log = Path(os.environ["PLAIT_TEST_LOG"])
        marker = log.parent / f"{log.name}.{name}.{run_context.run_id}"
        try:
            held = int(marker.read_text() or 0)
        except (FileNotFoundError, ValueError):
            held = 0
        if held and held != os.getpid() and _alive(held):
            with log.open("a") as f:
                f.write(f"OVERLAP {name} {run_context.run_id} {os.getpid()} {held}\n")
        marker.write_text(str(os.getpid()))
        active = os.environ.get("PLAIT_TEST_ACTIVE") if sleep_env else None
        if active:
            with open(active, "a") as f:
                f.write(f"START {run_context.run_id} {os.getpid()}\n")
        if sleep_env:
            await asyncio.sleep(float(os.environ.get(sleep_env, "0")))
        if active:
            with open(active, "a") as f:
                f.write(f"END {run_context.run_id} {os.getpid()}\n")
        with log.open("a") as f:  # one short append: lines from many processes never interleave
            f.write(f"{name} {run_context.run_id} {os.getpid()}\n")
        marker.unlink(missing_ok=True)
        previous = step_input.previous_step_content
        return f"{name}({previous if previous is not None else step_input.input})"

    return Step(name=name, executor=step)


workflow = Workflow(
    name=os.environ.get("PLAIT_TEST_WORKFLOW", "queue-test"),
    steps=[effect("a"), effect("b", "PLAIT_TEST_SLEEP")],
    schedule=os.environ.get("PLAIT_TEST_SCHEDULE") or None,
    catch_up=os.environ.get("PLAIT_TEST_CATCH_UP") == "1",
    store_events=os.environ.get("PLAIT_TEST_STORE_EVENTS") == "1",
    retention=os.environ.get("PLAIT_TEST_RETENTION") or None,
    max_concurrent_runs=int(os.environ["PLAIT_TEST_MAX_RUNS"])
    if os.environ.get("PLAIT_TEST_MAX_RUNS")
    else None,
)
workflow.lease_ttl = float(os.environ.get("PLAIT_TEST_TTL", "30"))
