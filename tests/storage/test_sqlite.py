"""SQLite specifics: writes on the loop's own connection, and another writer holding the lock."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

from plait import Step, StepInput, Workflow


async def test_a_locked_database_waits_off_the_event_loop(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    workflow = Workflow(
        name="w",
        steps=[Step(name="a", executor=lambda si: "a"), Step(name="b", executor=lambda si: "b")],
        storage=url,
    )
    await workflow.arun("warm up")  # creates the schema

    other = sqlite3.connect(tmp_path / "runs.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock for a while
    threading.Timer(0.3, lambda: other.execute("COMMIT")).start()

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    clock = asyncio.ensure_future(ticker())
    started = time.monotonic()
    output = await workflow.arun("x")
    waited = time.monotonic() - started
    clock.cancel()
    other.close()
    assert output.content == "b"
    assert waited >= 0.25  # the run waited for the lock ...
    assert ticks >= 10  # ... without blocking the event loop meanwhile
    await workflow.aclose()


async def test_checkpoints_and_runs_are_readable_by_another_process_connection(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"

    def step(step_input: StepInput) -> str:
        return "done"

    workflow = Workflow(name="w", steps=[step], storage=url)
    output = await workflow.arun("x")
    await workflow.aclose()
    reader = sqlite3.connect(tmp_path / "runs.db")
    rows = reader.execute(
        "SELECT step_id FROM plait_checkpoints WHERE run_id = ?", (output.run_id,)
    ).fetchall()
    status = reader.execute("SELECT status FROM plait_runs WHERE run_id = ?", (output.run_id,)).fetchone()
    reader.close()
    assert rows == [("step",)] and status == ("COMPLETED",)
