"""SQLite specifics: writes on the loop's own connection, and another writer holding the lock."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from plait import Step, StepInput, Workflow
from plait.storage._sqlite import SQLiteStorage
from plait.storage._sqlite_file import _INLINE_CHECKPOINT_PAGES, SQLiteFile


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


async def test_a_version_1_database_is_migrated_and_its_runs_still_read(tmp_path: Path) -> None:
    from plait.storage import SCHEMA_VERSION, RunRecord
    from plait.storage._sqlite import _MIGRATIONS, SQLiteStorage

    path = tmp_path / "old.db"
    old = sqlite3.connect(path, isolation_level=None)
    old.execute("CREATE TABLE plait_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    for sql in _MIGRATIONS[1]:  # the layout plait wrote before user_id
        old.execute(sql)
    old.execute("INSERT INTO plait_meta VALUES ('schema_version', '1')")
    record = {
        "run_id": "old",
        "workflow_id": "w",
        "workflow_name": "w",
        "session_id": "s",
        "status": "COMPLETED",
    }
    old.execute(
        "INSERT INTO plait_runs (run_id, workflow_id, status, created_at, data) VALUES (?, ?, ?, ?, ?)",
        ("old", "w", "COMPLETED", 1.0, RunRecord.model_validate(record).model_dump_json(exclude={"user_id"})),
    )
    old.close()

    storages = [SQLiteStorage(f"sqlite:///{path}") for _ in range(4)]
    await asyncio.gather(*(s.setup() for s in storages))  # concurrent openers migrate once
    storage = storages[0]
    loaded = await storage.get_run("old")
    assert loaded is not None and loaded.user_id is None and loaded.status == "COMPLETED"
    await storage.save_run(RunRecord.model_validate({**record, "run_id": "new", "user_id": "ada"}))
    assert [r.run_id for r in await storage.list_runs(user_id="ada")] == ["new"]
    assert [r.run_id for r in await storage.list_runs()] == ["new", "old"]
    for s in storages:
        await s.close()
    check = sqlite3.connect(path)
    assert check.execute("SELECT value FROM plait_meta").fetchall() == [(str(SCHEMA_VERSION),)]
    check.close()


async def test_the_wal_is_checkpointed_in_the_worker_thread_not_on_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite checkpoints the WAL in the commit that takes it past 1000 pages: on the event
    loop (the loop's own connection), for tens of milliseconds on a slow disk. Here the worker
    thread does; the loop's connection only past 4000 pages, when writes come too close together
    for the worker to catch up (these do, some of the time), and the WAL stays bounded."""
    checkpoints: list[str] = []
    opened: list[sqlite3.Connection] = []
    original = SQLiteFile.open

    def traced(self: SQLiteFile, timeout: float) -> sqlite3.Connection:
        connection = original(self, timeout)
        connection.set_trace_callback(
            lambda sql: (
                checkpoints.append(threading.current_thread().name) if "wal_checkpoint" in sql else None
            )
        )
        opened.append(connection)
        return connection

    monkeypatch.setattr(SQLiteFile, "open", traced)
    storage = SQLiteStorage(f"sqlite:///{tmp_path / 'runs.db'}")
    await storage.setup()
    for i in range(4000):  # about 80 MB through the WAL
        await storage.save_calls([], {f"payload-{i}": "x" * 20_000})
        await asyncio.sleep(0)
    inline = storage._file.inline
    assert inline is not None
    assert inline.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == _INLINE_CHECKPOINT_PAGES
    assert len(checkpoints) > 10 and all(name.startswith("plait-sqlite") for name in checkpoints)
    wal = (tmp_path / "runs.db-wal").stat().st_size  # the most it ever held: it is not truncated
    assert wal < 2 * _INLINE_CHECKPOINT_PAGES * 4120, f"the WAL grew to {wal} bytes: it is not checkpointed"
    assert len(await storage.load_payloads([f"payload-{i}" for i in range(4000)])) == 4000
    await storage.close()
