"""A workflow for the exactly-once crash test, run in subprocesses:
``python onceful.py URL run|resume RUN_ID``.

Step ``pay`` charges through ``run_context.once``; the charge appends to the side-effect
log ($PLAIT_TEST_LOG) and returns a receipt (a dataclass with a datetime and a tuple).
With $PLAIT_BLOCK_AFTER_CHARGE set, ``pay`` writes $PLAIT_TEST_LOG.blocked after the
charge was recorded and hangs there until the test kills the process with SIGKILL.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from plait import RunContext, Step, StepInput, Workflow


@dataclasses.dataclass
class Receipt:
    charge_id: str
    at: dt.datetime
    lines: tuple[str, ...]


def pay(step_input: StepInput, run_context: RunContext) -> str:
    log = Path(os.environ["PLAIT_TEST_LOG"])
    key = run_context.idempotency_key

    def charge() -> Receipt:
        with log.open("a") as f:
            f.write(f"charge {key}\n")
        return Receipt(charge_id=f"ch-{key[-6:]}", at=dt.datetime(2026, 1, 2, 3, 4), lines=("tea", "cake"))

    receipt = run_context.once("charge", charge)
    if os.environ.get("PLAIT_BLOCK_AFTER_CHARGE"):
        Path(f"{log}.blocked").write_text("pay")
        time.sleep(120)  # killed here: the charge is recorded, the step is not
    assert isinstance(receipt, Receipt) and isinstance(receipt.at, dt.datetime), receipt
    return f"{receipt.charge_id} {receipt.at.isoformat()} {'+'.join(receipt.lines)} {key}"


def ship(step_input: StepInput) -> str:
    return f"shipped after {step_input.previous_step_content}"


def storage_for(url: str) -> Any:
    """The backend for ``url`` in a schema (PostgreSQL) or key prefix (Redis) of these tests' own:
    the shared test services may hold a newer schema written by another branch's tests."""
    if url.startswith("postgresql"):
        from plait_postgres import PostgresStorage

        return PostgresStorage(url, schema="plait_time_travel")
    if url.startswith("redis"):
        from plait_redis import RedisStorage

        return RedisStorage(url, prefix="plait_time_travel")
    return url


def build(storage: str) -> Workflow:
    storage = storage_for(storage)
    return Workflow(
        name="onceful",
        steps=[Step(name="pay", executor=pay), Step(name="ship", executor=ship)],
        storage=storage,
    )


if __name__ == "__main__":
    url, mode, run_id = sys.argv[1], sys.argv[2], sys.argv[3]
    workflow = build(url)
    output = workflow.run("order", run_id=run_id) if mode == "run" else workflow.continue_run(run_id)
    print(json.dumps({"status": str(output.status), "content": output.content}))
