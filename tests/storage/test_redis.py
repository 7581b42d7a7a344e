"""Redis-specific behaviour of plait-redis, against the real server (tests/services.py)."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from plait.errors import DefinitionError
from plait.plugins import build_registry, get_registry, set_registry
from plait.storage import SCHEMA_VERSION, CacheEntry, RunRecord, StepCheckpoint, StorageError, resolve_storage
from tests.services import require_package, require_service

URL = "redis://127.0.0.1:6379/0"
PASSWORD = "s3cr3t-Pa55word"


@pytest.fixture(autouse=True)
def _redis() -> None:
    require_service("redis")
    require_package("plait_redis", "plait-redis")


@pytest.fixture
async def make() -> AsyncIterator[Callable[..., Any]]:
    """Build RedisStorage objects on throwaway prefixes; their keys are deleted afterwards."""
    from plait_redis import RedisStorage

    made: list[RedisStorage] = []

    def build(url: str = URL, **options: Any) -> RedisStorage:
        options.setdefault("prefix", f"plait-test-{uuid.uuid4().hex[:10]}")
        storage = RedisStorage(url, **options)
        made.append(storage)
        return storage

    yield build
    for storage in made:
        await storage.close()
        if storage.url.startswith(URL):
            await storage.drop()


@pytest.fixture
async def admin() -> AsyncIterator[Any]:
    """A client of its own (not the storage's)."""
    from redis.asyncio import Redis

    client = Redis.from_url(URL, decode_responses=True)
    yield client
    await client.aclose()


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


@pytest.mark.parametrize("scheme", ["redis", "rediss"])
def test_urls_resolve_through_the_installed_entry_point(registry: Any, scheme: str) -> None:
    from plait_redis import RedisStorage

    storage = resolve_storage(f"{scheme}://127.0.0.1:6379/0")
    assert isinstance(storage, RedisStorage) and storage.prefix == "plait"
    assert type(storage).__module__ == "plait_redis"
    assert get_registry().entries("storage")[scheme].plugin == "redis"


def test_bad_arguments_are_definition_errors() -> None:
    from plait_redis import RedisStorage

    with pytest.raises(DefinitionError, match="redis://") as caught:
        RedisStorage(f"memcached://:{PASSWORD}@127.0.0.1/0")
    assert PASSWORD not in str(caught.value)
    with pytest.raises(DefinitionError, match="prefix"):
        RedisStorage(URL, prefix="")


# -- schema and key layout -------------------------------------------------------------


async def test_a_version_1_prefix_is_migrated_and_its_runs_still_read(
    make: Callable[..., Any], admin: Any
) -> None:
    storage = make()
    p = storage.prefix
    data = run("old", status="COMPLETED", created_at=1.0).model_dump_json(exclude={"user_id"})
    # what plait-redis wrote under version 1: no user_id field, no user index
    await admin.hset(f"{p}:meta", "schema_version", "1")
    await admin.hset(f"{p}:run:old", mapping={"data": data, "status": "COMPLETED", "workflow_id": "wf"})
    await admin.zadd(f"{p}:runs", {"old": 1.0})
    await admin.zadd(f"{p}:runs:status:COMPLETED", {"old": 1.0})
    await admin.zadd(f"{p}:runs:workflow:wf", {"old": 1.0})
    await storage.setup()
    assert await admin.hget(f"{p}:meta", "schema_version") == str(SCHEMA_VERSION)
    loaded = await storage.get_run("old")
    assert loaded is not None and loaded.user_id is None
    await storage.save_run(run("new", user_id="ada"))
    assert [r.run_id for r in await storage.list_runs(user_id="ada")] == ["new"]
    assert [r.run_id for r in await storage.list_runs()] == ["new", "old"]
    await storage.save_run(run("old", status="COMPLETED", created_at=1.0, user_id="bob"))
    assert [r.run_id for r in await storage.list_runs(user_id="bob")] == ["old"]


async def test_setup_records_the_schema_version(make: Callable[..., Any], admin: Any) -> None:
    storages = [make(prefix=f"plait-test-{uuid.uuid4().hex[:10]}")]
    storages += [make(prefix=storages[0].prefix) for _ in range(5)]
    await asyncio.gather(*(s.setup() for s in storages))
    assert await admin.hgetall(f"{storages[0].prefix}:meta") == {"schema_version": str(SCHEMA_VERSION)}


async def test_a_newer_schema_is_refused(make: Callable[..., Any], admin: Any) -> None:
    storage = make()
    await admin.hset(f"{storage.prefix}:meta", "schema_version", "99")
    with pytest.raises(StorageError, match="schema version 99, newer"):
        await storage.setup()


async def test_status_and_workflow_indexes_follow_updates(make: Callable[..., Any], admin: Any) -> None:
    storage = make()
    await storage.setup()
    await storage.save_run(run("r1", created_at=1.0))
    await storage.save_run(run("r2", created_at=2.0, workflow_id="other"))
    await storage.save_run(run("r1", created_at=1.0, status="COMPLETED", workflow_id="other"))
    assert [r.run_id for r in await storage.list_runs(status="RUNNING")] == ["r2"]
    assert [r.run_id for r in await storage.list_runs(status="COMPLETED")] == ["r1"]
    assert [r.run_id for r in await storage.list_runs(workflow_id="wf")] == []
    assert [r.run_id for r in await storage.list_runs(workflow_id="other", status="COMPLETED")] == ["r1"]
    assert await admin.zrange(f"{storage.prefix}:runs:status:RUNNING", 0, -1) == ["r2"]


async def test_racing_updates_of_one_run_leave_it_in_exactly_one_status(
    make: Callable[..., Any], admin: Any
) -> None:
    storage = make()
    await storage.setup()
    statuses = ["RUNNING", "PAUSED", "COMPLETED", "ERROR"] * 10
    await asyncio.gather(*(storage.save_run(run("r1", status=s)) for s in statuses))
    final = await storage.get_run("r1")
    assert final is not None
    indexed = [
        s for s in set(statuses) if await admin.zscore(f"{storage.prefix}:runs:status:{s}", "r1") is not None
    ]
    assert indexed == [final.status]


async def test_list_runs_pages_through_a_long_index(make: Callable[..., Any]) -> None:
    storage = make()
    await storage.setup()
    await asyncio.gather(
        *(
            storage.save_run(run(f"r{i}", created_at=float(i), status="x" if i % 100 else "y"))
            for i in range(450)
        )
    )
    assert [r.run_id for r in await storage.list_runs(limit=3, workflow_id="wf", status="y")] == [
        "r400",
        "r300",
        "r200",
    ]
    assert len(await storage.list_runs(limit=1000)) == 450


async def test_cache_entries_carry_a_redis_ttl(make: Callable[..., Any], admin: Any) -> None:
    storage = make()
    await storage.setup()
    await storage.put_cache(CacheEntry(key="k", output={}, expires_at=time.time() + 60))
    await storage.put_cache(CacheEntry(key="forever", output={}))
    assert 0 < await admin.pttl(f"{storage.prefix}:cache:k") <= 60_000
    assert await admin.pttl(f"{storage.prefix}:cache:forever") == -1
    # an entry written already expired replaces a live one
    await storage.put_cache(CacheEntry(key="k", output={}, expires_at=time.time() - 1))
    assert await storage.get_cache("k") is None and await admin.exists(f"{storage.prefix}:cache:k") == 0


async def test_drop_removes_its_prefix_only(make: Callable[..., Any], admin: Any) -> None:
    storage = make(prefix=f"plait-test-{uuid.uuid4().hex[:6]}*[x]")  # glob characters are literal
    neighbour = make(prefix=storage.prefix.replace("*[x]", "-neighbour"))
    for s in (storage, neighbour):
        await s.setup()
        await s.save_run(run("r1"))
        await s.append_events("r1", [{"i": 1}])
    await storage.drop()
    assert (
        await admin.keys(storage.prefix.replace("*", "\\*").replace("[", "\\[").replace("]", "\\]") + ":*")
        == []
    )
    assert await neighbour.get_run("r1") is not None


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
    storage = make(f"redis://:{PASSWORD}@127.0.0.1:1/0", connect_timeout=2)
    started = time.monotonic()
    with pytest.raises(StorageError) as caught:
        await storage.setup()
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert "Redis storage" in message and "127.0.0.1:1" in message and "connecting failed" in message
    assert PASSWORD not in message and "***" in message


async def test_passwords_never_appear_in_errors_logs_or_repr(
    make: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # this server knows no such user, so AUTH is refused
    storage = make(f"redis://no_such_user:{PASSWORD}@127.0.0.1:6379/0")
    assert PASSWORD not in repr(storage)
    with pytest.raises(StorageError) as caught:
        await storage.setup()
    assert "127.0.0.1:6379" in str(caught.value) and "invalid username-password" in str(caught.value)
    assert PASSWORD not in str(caught.value) and PASSWORD not in repr(caught.value)
    assert PASSWORD not in caplog.text


async def test_recovers_after_the_server_kills_its_connections(make: Callable[..., Any], admin: Any) -> None:
    name = f"plait-reconnect-{uuid.uuid4().hex[:8]}"
    # only this storage's connections are killed, so tests running beside this one are left alone
    storage = make(f"{URL}?client_name={name}")
    await storage.setup()
    await storage.save_run(run("before"))
    await asyncio.gather(*(storage.get_run("before") for _ in range(5)))  # several pooled connections
    for round_ in range(2):
        clients = [c for c in await admin.client_list() if c.get("name") == name]
        assert clients
        for client in clients:
            await admin.client_kill_filter(_id=client["id"])
        await storage.append_events("before", [{"round": round_}])
        await storage.save_run(run(f"after{round_}", status="COMPLETED"))
        await asyncio.gather(*(storage.get_run("before") for _ in range(5)))
    assert sorted(r.run_id for r in await storage.list_runs()) == ["after0", "after1", "before"]
    assert await storage.load_events("before") == [{"round": 0}, {"round": 1}]


async def test_server_errors_are_storage_errors(make: Callable[..., Any], admin: Any) -> None:
    storage = make()
    await storage.setup()
    await admin.set(f"{storage.prefix}:events:r1", "not a list")
    with pytest.raises(StorageError, match=r"appending events of run 'r1' failed: WRONGTYPE"):
        await storage.append_events("r1", [{"i": 1}])


# -- concurrency -----------------------------------------------------------------------


WRITER = """
import asyncio, sys
from plait.storage import RunRecord, StepCheckpoint
from plait_redis import RedisStorage

async def main(prefix, worker, count):
    storage = RedisStorage("{url}", prefix=prefix)
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
async def test_four_processes_write_to_one_prefix(make: Callable[..., Any]) -> None:
    storage = make()
    script = WRITER.format(url=URL)
    processes = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", script, storage.prefix, str(worker), "25")
        for worker in range(4)
    ]
    assert [await p.wait() for p in processes] == [0, 0, 0, 0]
    await storage.setup()
    runs = await storage.list_runs(limit=1000)
    assert len(runs) == 100 and {r.status for r in runs} == {"COMPLETED"}
    assert len(await storage.list_runs(limit=1000, status="RUNNING")) == 0
    for worker in range(4):
        checkpoints = await storage.load_checkpoints(f"p{worker}-24")
        assert [c.step_id for c in checkpoints] == ["s0", "s1", "s2"]
        assert await storage.load_events(f"p{worker}-0") == [{"worker": worker}]


async def test_checkpoint_order_survives_interleaved_runs(make: Callable[..., Any]) -> None:
    storage = make()
    await storage.setup()

    async def steps(run_id: str) -> None:
        for j in range(20):
            await storage.save_checkpoints([StepCheckpoint(run_id=run_id, step_id=f"s{j}", output={})])

    await asyncio.gather(*(steps(f"r{i}") for i in range(10)))
    await storage.save_checkpoints([StepCheckpoint(run_id="r3", step_id="s0", output={"again": True})])
    order = [c.step_id for c in await storage.load_checkpoints("r3")]
    assert order == [f"s{j}" for j in range(1, 20)] + ["s0"]
