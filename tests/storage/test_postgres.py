"""PostgreSQL-specific behaviour of plait-postgres, against the real server (tests/services.py)."""

from __future__ import annotations

import asyncio
import logging
import math
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from plait.errors import DefinitionError
from plait.plugins import build_registry, set_registry
from plait.storage import SCHEMA_VERSION, RunRecord, StepCheckpoint, Storage, StorageError, resolve_storage
from tests.services import require_package, require_service

URL = "postgresql://127.0.0.1:5432/test"
PASSWORD = "s3cr3t-Pa55word"


@pytest.fixture(autouse=True)
def _postgres() -> None:
    require_service("postgresql")
    require_package("plait_postgres", "plait-postgres")


@pytest.fixture
async def make() -> AsyncIterator[Callable[..., Any]]:
    """Build PostgresStorage objects on throwaway schemas; all are dropped and closed afterwards."""
    from plait_postgres import PostgresStorage

    made: list[PostgresStorage] = []

    def build(url: str = URL, **options: Any) -> PostgresStorage:
        options.setdefault("schema", f"plait_test_{uuid.uuid4().hex[:10]}")
        storage = PostgresStorage(url, **options)
        made.append(storage)
        return storage

    yield build
    for storage in made:
        await storage.close()
    dropped: set[str] = set()
    for storage in made:
        if storage.schema not in dropped and storage.url.startswith(URL):
            dropped.add(storage.schema)
            await storage.drop()


async def admin(query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement on a connection of its own (not the storage's)."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(URL, autocommit=True) as connection:
        cursor = await connection.execute(query, params)
        return await cursor.fetchall() if cursor.description else []


def run(run_id: str, **fields: Any) -> RunRecord:
    values: dict[str, Any] = {
        "run_id": run_id,
        "workflow_id": "wf",
        "workflow_name": "Workflow",
        "session_id": "s1",
        "status": "RUNNING",
    }
    values.update(fields)
    return RunRecord.model_validate(values)


# -- URLs and the plugin ---------------------------------------------------------------


@pytest.fixture
def registry() -> Any:
    old = set_registry(build_registry())
    yield
    set_registry(old)


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
async def test_urls_resolve_through_the_installed_entry_point(registry: Any, scheme: str) -> None:
    from plait_postgres import PostgresStorage

    storage = resolve_storage(f"{scheme}://127.0.0.1:5432/test")
    assert isinstance(storage, PostgresStorage) and storage.schema == "plait"
    assert type(storage).__module__ == "plait_postgres"


def test_entry_point_registers_both_schemes(registry: Any) -> None:
    from plait.plugins import get_registry

    entries = get_registry().entries("storage")
    assert entries["postgresql"].plugin == entries["postgres"].plugin == "postgres"


def test_bad_arguments_are_definition_errors() -> None:
    from plait_postgres import PostgresStorage

    with pytest.raises(DefinitionError, match="postgresql://"):
        PostgresStorage(f"mysql://root:{PASSWORD}@127.0.0.1/test")
    with pytest.raises(DefinitionError, match="schema"):
        PostgresStorage(URL, schema="x" * 64)
    with pytest.raises(DefinitionError, match="min_size"):
        PostgresStorage(URL, min_size=5, max_size=2)


# -- schema ----------------------------------------------------------------------------


async def test_setup_records_the_schema_version(make: Callable[..., Any]) -> None:
    storage = make()
    await storage.setup()
    rows = await admin(f'SELECT key, value FROM "{storage.schema}".plait_meta')
    assert rows == [("schema_version", str(SCHEMA_VERSION))]
    tables = await admin(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY 1",
        (storage.schema,),
    )
    assert [t for (t,) in tables] == [
        "plait_cache",
        "plait_calls",
        "plait_checkpoints",
        "plait_events",
        "plait_history",
        "plait_meta",
        "plait_payloads",
        "plait_runs",
        "plait_sessions",
    ]


async def test_concurrent_setup_from_many_instances_migrates_once(make: Callable[..., Any]) -> None:
    schema = f"plait_test_{uuid.uuid4().hex[:10]}"
    storages = [make(schema=schema, min_size=0) for _ in range(6)]
    await asyncio.gather(*(s.setup() for s in storages))  # without the advisory lock, CREATE races
    assert await admin(f'SELECT value FROM "{schema}".plait_meta') == [(str(SCHEMA_VERSION),)]
    await storages[0].save_run(run("r1"))
    assert (await storages[-1].get_run("r1")) is not None


async def test_a_version_1_schema_is_migrated_and_its_runs_still_read(make: Callable[..., Any]) -> None:
    from plait_postgres._storage import _MIGRATIONS

    storage = make()
    quoted = '"' + storage.schema + '"'
    await admin(f"CREATE SCHEMA {quoted}")
    await admin(f"CREATE TABLE {quoted}.plait_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    for statement in _MIGRATIONS[1]:  # the layout plait-postgres wrote before user_id
        await admin(statement.format(schema=quoted))
    await admin(f"INSERT INTO {quoted}.plait_meta VALUES ('schema_version', '1')")
    data = run("old", status="COMPLETED").model_dump_json(exclude={"user_id"})
    await admin(
        f"INSERT INTO {quoted}.plait_runs (run_id, workflow_id, status, created_at, data) VALUES (%s, %s, %s, %s, %s)",
        ("old", "wf", "COMPLETED", 1.0, data),
    )
    await storage.setup()
    loaded = await storage.get_run("old")
    assert loaded is not None and loaded.user_id is None
    await storage.save_run(run("new", user_id="ada"))
    assert [r.run_id for r in await storage.list_runs(user_id="ada")] == ["new"]
    assert [r.run_id for r in await storage.list_runs()] == ["new", "old"]
    assert await admin(f"SELECT value FROM {quoted}.plait_meta") == [(str(SCHEMA_VERSION),)]


async def test_a_newer_schema_is_refused(make: Callable[..., Any]) -> None:
    storage = make()
    await storage.setup()
    await storage.close()
    await admin(f"UPDATE \"{storage.schema}\".plait_meta SET value = '99' WHERE key = 'schema_version'")
    newer = make(schema=storage.schema)
    with pytest.raises(StorageError, match="schema version 99, newer"):
        await newer.setup()


async def test_schema_names_are_quoted_not_interpolated(make: Callable[..., Any]) -> None:
    storage = make(schema=f'odd "name"; DROP TABLE x; {uuid.uuid4().hex[:6]}')
    await storage.setup()
    await storage.save_run(run("r1"))
    assert [r.run_id for r in await storage.list_runs()] == ["r1"]


async def test_text_columns_round_trip_exactly(make: Callable[..., Any]) -> None:
    storage = make()
    await storage.setup()
    content = {"zeta": 1, "alpha": "nul\u0000byte", "mid": 1.0}
    await storage.save_run(run("r1", content=content, metrics={"score": math.inf}))
    loaded = await storage.get_run("r1")
    assert loaded is not None
    assert list(loaded.content) == ["zeta", "alpha", "mid"]  # JSONB would reorder the keys
    assert loaded.content == content and loaded.metrics == {"score": math.inf}


# -- lifecycle, failures and redaction -------------------------------------------------


async def test_use_before_setup_and_after_close_is_a_storage_error(make: Callable[..., Any]) -> None:
    storage = make()
    with pytest.raises(StorageError, match="before setup"):
        await storage.get_run("r1")
    await storage.setup()
    await storage.close()
    await storage.close()  # idempotent
    with pytest.raises(StorageError, match="before setup"):
        await storage.get_run("r1")


async def test_unreachable_server_fails_fast_with_a_clear_error(make: Callable[..., Any]) -> None:
    storage = make(f"postgresql://root:{PASSWORD}@127.0.0.1:1/test", connect_timeout=2)
    started = time.monotonic()
    with pytest.raises(StorageError) as caught:
        await storage.setup()
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert "PostgreSQL storage" in message and "127.0.0.1:1" in message and "connecting failed" in message
    assert PASSWORD not in message and "***" in message


async def test_passwords_never_appear_in_errors_logs_or_repr(
    make: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # trust auth ignores the password, so make the server refuse the role instead
    url = f"postgresql://no_such_role:{PASSWORD}@127.0.0.1:5432/test?password={PASSWORD}x"
    storage = make(url)
    assert PASSWORD not in repr(storage) and PASSWORD not in str(storage)
    with pytest.raises(StorageError) as caught:
        await storage.setup()
    assert "no_such_role" in str(caught.value) and "127.0.0.1:5432" in str(caught.value)
    assert PASSWORD not in str(caught.value) and PASSWORD not in repr(caught.value)
    assert PASSWORD not in caplog.text


async def test_recovers_after_the_server_kills_its_connections(make: Callable[..., Any]) -> None:
    app = f"plait-reconnect-{uuid.uuid4().hex[:8]}"
    # only this storage's connections are killed, so tests running beside this one are left alone
    storage = make(f"{URL}?application_name={app}", min_size=3)
    await storage.setup()
    await storage.save_run(run("before"))
    for round_ in range(2):
        killed = await admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = 'test' AND application_name = %s AND pid <> pg_backend_pid()",
            (app,),
        )
        assert killed and all(ok for (ok,) in killed)
        await storage.append_events("before", [{"round": round_}])  # retried once, never duplicated
        await storage.save_run(run(f"after{round_}"))
        await asyncio.gather(*(storage.get_run("before") for _ in range(5)))
    assert sorted(r.run_id for r in await storage.list_runs()) == ["after0", "after1", "before"]
    assert await storage.load_events("before") == [{"round": 0}, {"round": 1}]


async def test_server_errors_are_storage_errors(make: Callable[..., Any]) -> None:
    storage = make()
    await storage.setup()
    await admin(f'DROP TABLE "{storage.schema}".plait_runs')
    with pytest.raises(StorageError, match=r"saving run 'r1' failed: .*plait_runs.* does not exist"):
        await storage.save_run(run("r1"))


# -- concurrency -----------------------------------------------------------------------


async def test_hundred_concurrent_runs_through_a_small_pool(make: Callable[..., Any]) -> None:
    storage = make(max_size=3)
    await storage.setup()

    async def one(i: int) -> None:
        await storage.save_run(run(f"c{i}", created_at=1000.0 + i))
        await storage.save_checkpoints([StepCheckpoint(run_id=f"c{i}", step_id="s", output={"i": i})])
        await storage.append_events(f"c{i}", [{"i": i}, {"i": -i}])
        await storage.save_run(run(f"c{i}", created_at=1000.0 + i, status="COMPLETED"))

    await asyncio.gather(*(one(i) for i in range(100)))
    assert len(await storage.list_runs(limit=1000, status="COMPLETED")) == 100
    assert await storage.load_events("c7") == [{"i": 7}, {"i": -7}]


WRITER = """
import asyncio, sys
from plait.storage import RunRecord, StepCheckpoint
from plait_postgres import PostgresStorage

async def main(schema, worker, count):
    storage = PostgresStorage("{url}", schema=schema, max_size=4)
    await storage.setup()
    async def one(i):
        run_id = f"p{{worker}}-{{i}}"
        record = RunRecord(run_id=run_id, workflow_id="wf", workflow_name="W", session_id="s", status="RUNNING")
        await storage.save_run(record)
        await storage.save_checkpoints([StepCheckpoint(run_id=run_id, step_id=f"s{{j}}", output={{"j": j}}) for j in range(3)])
        await storage.append_events(run_id, [{{"worker": worker}}])
        await storage.save_run(record.model_copy(update={{"status": "COMPLETED"}}))
    await asyncio.gather(*(one(i) for i in range(count)))
    await storage.close()

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
"""


@pytest.mark.slow
async def test_four_processes_write_to_one_schema(make: Callable[..., Any]) -> None:
    storage: Storage = make()
    schema = storage.schema  # type: ignore[attr-defined]
    script = WRITER.format(url=URL)
    # every process runs setup() on the fresh schema at once: the migration lock is exercised too
    processes = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", script, schema, str(worker), "25")
        for worker in range(4)
    ]
    assert [await p.wait() for p in processes] == [0, 0, 0, 0]
    await storage.setup()
    runs = await storage.list_runs(limit=1000)
    assert len(runs) == 100 and {r.status for r in runs} == {"COMPLETED"}
    counts = await admin(
        f'SELECT (SELECT count(*) FROM "{schema}".plait_checkpoints), (SELECT count(*) FROM "{schema}".plait_events)'
    )
    assert counts == [(300, 100)]
    assert [c.step_id for c in await storage.load_checkpoints("p3-24")] == ["s0", "s1", "s2"]
