"""Retention on every backend: delete_run, prune, list_sessions and delete_session remove
exactly what they say, atomically, across processes, and refuse a run a live process executes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from typing import Any

import pytest

from plait import Parallel, Step, Workflow
from plait.errors import DefinitionError
from plait.storage import (
    CallRecord,
    HistoryRecord,
    MemoryStorage,
    RunClaimedError,
    RunRecord,
    SessionRecord,
    StepCheckpoint,
    Storage,
    claim_run,
    internal_keys,
    parse_duration,
)

DAY = 86400.0


def _run(run_id: str, *, age: float = 0.0, status: str = "COMPLETED", **fields: Any) -> RunRecord:
    at = time.time() - age
    values: dict[str, Any] = {
        "run_id": run_id,
        "workflow_id": "wf",
        "workflow_name": "Workflow",
        "session_id": "s1",
        "status": status,
        "created_at": at,
        "updated_at": at,
    }
    values.update(fields)
    return RunRecord.model_validate(values)


async def _store_run(storage: Storage, record: RunRecord, payloads: dict[str, str]) -> None:
    """A run with two checkpoints, two events, a recorded call whose request and response are
    ``payloads``' hashes (in order), a history turn of one of its steps, and a lease it released."""
    run_id = record.run_id
    await storage.save_run(record)
    await storage.save_checkpoints(
        [
            StepCheckpoint(run_id=run_id, step_id="a", output={"content": f"a of {run_id}"}),
            StepCheckpoint(run_id=run_id, step_id="par/b\x00ü", output={"content": "b"}),
        ]
    )
    await storage.append_events(run_id, [{"event": "started", "n": 1}, {"event": "done", "n": 2}])
    request, response = list(payloads)
    call = CallRecord(
        run_id=run_id,
        step_id="a",
        kind="model",
        name="m",
        fingerprint=request,
        request=request,
        response=response,
    )
    await storage.save_calls([call], payloads)
    await storage.append_history(
        HistoryRecord(
            session_id=record.session_id,
            agent_id="A",
            run_id=f"agent-{run_id}",
            origin=f"{run_id}/a",
            messages=[1],
        )
    )
    lease = await claim_run(storage, run_id, ttl=30)
    await lease.release()


async def _everything_of(storage: Storage, run_id: str, hashes: list[str]) -> dict[str, Any]:
    lease_key, _ = internal_keys(run_id)
    return {
        "run": await storage.get_run(run_id) is not None,
        "checkpoints": len(await storage.load_checkpoints(run_id)),
        "events": len(await storage.load_events(run_id)),
        "calls": len(await storage.load_calls(run_id)),
        "payloads": sorted(await storage.load_payloads(hashes)),
        "lease": await storage.load_session(lease_key) is not None,
    }


GONE = {"run": False, "checkpoints": 0, "events": 0, "calls": 0, "payloads": [], "lease": False}


def _kept(hashes: list[str], *, pruned: bool = False) -> dict[str, Any]:
    # a prune also deletes the lease rows no process holds: a kept run's released one too
    return {
        "run": True,
        "checkpoints": 2,
        "events": 2,
        "calls": 1,
        "payloads": sorted(hashes),
        "lease": not pruned,
    }


async def test_delete_run_takes_what_belongs_to_it_and_nothing_else(storage: Storage) -> None:
    shared = {"h-shared": '{"shared": true}'}
    await _store_run(storage, _run("r1"), {**shared, "h-own-1": '"one ✓"'})
    await _store_run(storage, _run("r2"), {**shared, "h-own-2": '"two"'})
    await storage.append_history(HistoryRecord(session_id="s1", agent_id="A", run_id="outside", messages=[2]))
    await storage.save_session(SessionRecord(session_id="s1", workflow_id="wf", state={"kept": True}))

    assert await storage.delete_run("r1") is True
    assert await _everything_of(storage, "r1", ["h-own-1"]) == GONE
    # r2 keeps everything, the payload both used included
    assert await _everything_of(storage, "r2", ["h-shared", "h-own-2"]) == _kept(["h-shared", "h-own-2"])
    # r1's step turn went with it; r2's and the agent's own turn (no workflow run) stay
    assert [t.run_id for t in await storage.load_history("s1", "A")] == ["agent-r2", "outside"]
    session = await storage.load_session("s1")
    assert session is not None and session.state == {"kept": True}  # a session outlives its runs
    assert [r.run_id for r in await storage.list_runs()] == ["r2"]
    assert await storage.delete_run("r1") is False  # already gone: nothing to say it was deleted

    assert await storage.delete_run("r2") is True
    assert (
        await _everything_of(storage, "r2", ["h-shared", "h-own-2"]) == GONE
    )  # the last user: the shared one goes


async def _mentions(storage: Storage, needle: str) -> list[str]:
    """Every stored key or value that contains ``needle``, read from the backend's raw store."""
    found: list[str] = []
    if isinstance(storage, MemoryStorage):
        for name, value in vars(storage).items():
            if needle in repr(value):
                found.append(name)
    elif hasattr(storage, "prefix"):  # Redis: every key under the prefix, and its content
        from redis.asyncio import Redis

        client = Redis.from_url(storage.url, decode_responses=True)  # the storage's own is on its loop
        async for name in client.scan_iter(match=storage.prefix + ":*"):
            kind = await client.type(name)
            readers = {
                "string": client.get,
                "hash": client.hgetall,
                "list": client.lrange,
                "zset": client.zrange,
            }
            args = (name, 0, -1) if kind in ("list", "zset") else (name,)
            content = await readers[kind](*args)
            if needle in name or needle in repr(content):
                found.append(name)
        await client.aclose()
    elif hasattr(storage, "schema"):  # PostgreSQL: every table's rows as text
        for table in (
            "plait_runs",
            "plait_checkpoints",
            "plait_sessions",
            "plait_events",
            "plait_calls",
            "plait_history",
        ):
            rows = await storage._fetch(  # type: ignore[attr-defined]
                table,
                storage._sql("SELECT t::text FROM {schema}." + table + " t"),
                (),  # type: ignore[attr-defined]
            )
            found += [f"{table}: {row[0]}" for row in rows if needle in row[0]]
    else:  # SQLite: the whole file's dump
        import sqlite3

        with sqlite3.connect(storage.path) as connection:  # type: ignore[attr-defined]
            found += [line for line in connection.iterdump() if needle in line]
        connection.close()
    return found


async def test_nothing_of_a_deleted_run_is_left_anywhere(storage: Storage) -> None:
    gone, kept = "rün-\u2713-gone", "rün-kept"
    await _store_run(storage, _run(gone, user_id="ada", status="ERROR"), {"h-a": '"a"', "h-b": '"b"'})
    await _store_run(storage, _run(kept, user_id="ada"), {"h-c": '"c"', "h-d": '"d"'})
    await storage.save_session(SessionRecord(session_id=internal_keys(gone)[1], workflow_id="wf", state={}))
    assert await _mentions(storage, gone)  # the probe sees the run while it is there
    assert await storage.delete_run(gone) is True
    assert await _mentions(storage, gone) == []
    assert await _mentions(storage, kept)
    for filters in ({"user_id": "ada"}, {"status": "ERROR"}, {"workflow_id": "wf"}, {"session_id": "s1"}):
        assert [r.run_id for r in await storage.list_runs(**filters)] in ([kept], []), filters


async def test_delete_run_refuses_a_live_lease_unless_forced(storage: Storage) -> None:
    await storage.save_run(_run("busy", status="RUNNING"))
    await storage.save_checkpoints([StepCheckpoint(run_id="busy", step_id="a", output={})])
    owner = {"owner": "worker-7", "host": "elsewhere.example", "pid": 4242}
    assert await storage.claim_lease("busy", owner, 30) is None
    with pytest.raises(RunClaimedError) as refused:
        await storage.delete_run("busy")
    message = str(refused.value)
    assert (
        "'busy'" in message and "elsewhere.example" in message and "4242" in message and "worker-7" in message
    )
    assert "force=True" in message
    assert await storage.get_run("busy") is not None and len(await storage.load_checkpoints("busy")) == 1
    # prune leaves it too, even when asked for running runs
    assert await storage.prune(timedelta(seconds=0.001), status="RUNNING") == 0
    assert await storage.delete_run("busy", force=True) is True
    assert await storage.get_run("busy") is None and await storage.load_checkpoints("busy") == []
    assert await storage.load_session(internal_keys("busy")[0]) is None


async def test_an_expired_lease_does_not_protect_a_run(storage: Storage) -> None:
    await storage.save_run(_run("crashed", status="RUNNING"))
    assert await storage.claim_lease("crashed", {"owner": "o", "host": "h", "pid": 1}, 0.05) is None
    await asyncio.sleep(0.1)
    assert await storage.delete_run("crashed") is True


async def test_prune_removes_exactly_what_it_says(storage: Storage) -> None:
    shared = {"h-shared": '"s"'}
    old, new = 40 * DAY, 1 * DAY
    runs = {
        "old-done": _run("old-done", age=old),
        "old-failed": _run("old-failed", age=old, status="ERROR"),
        "old-other-wf": _run("old-other-wf", age=old, workflow_id="other"),
        "old-paused": _run("old-paused", age=old, status="PAUSED"),
        "new-done": _run("new-done", age=new),
    }
    for n, record in enumerate(runs.values()):
        await _store_run(storage, record, {**shared, f"h-{n}": f'"{n}"'})
    hashes = {run_id: ["h-shared", f"h-{n}"] for n, run_id in enumerate(runs)}

    # status and workflow narrow it; an age in any accepted spelling
    assert await storage.prune("30d", status="error") == 1
    assert await storage.get_run("old-failed") is None
    assert await storage.prune(timedelta(days=30), workflow_id="other") == 1
    assert await storage.get_run("old-other-wf") is None
    # without a status: finished runs only; a paused run waits for a person, it stays
    assert await storage.prune(30 * DAY) == 1
    assert [r.run_id for r in await storage.list_runs()] == ["new-done", "old-paused"]
    for run_id in ("old-done", "old-failed", "old-other-wf"):
        assert await _everything_of(storage, run_id, hashes[run_id][1:]) == GONE
    for run_id in ("new-done", "old-paused"):
        assert await _everything_of(storage, run_id, hashes[run_id]) == _kept(hashes[run_id], pruned=True)
    assert await storage.prune("30d") == 0  # nothing left to do
    assert await storage.prune("30d", status="PAUSED") == 1  # asked for by name


async def test_prune_refuses_what_it_cannot_mean(storage: Storage) -> None:
    await storage.save_run(_run("r", age=100 * DAY))
    with pytest.raises(
        DefinitionError, match=r"prune\(status=\.\.\.\): expected one of PENDING, .* got 'done'"
    ):
        await storage.prune("1d", status="done")
    with pytest.raises(
        DefinitionError, match=r"prune\(older_than=\.\.\.\): expected a duration .* got '1 month'"
    ):
        await storage.prune("1 month")
    with pytest.raises(
        DefinitionError, match=r"prune\(workflow_id=\.\.\.\): expected a workflow id \(str\), got 7"
    ):
        await storage.prune("1d", workflow_id=7)  # type: ignore[arg-type]
    assert await storage.get_run("r") is not None  # nothing was deleted on the way
    assert await storage.prune("1d", status="completed") == 1  # any case of a status name


async def test_prune_without_an_age_applies_each_runs_retention(storage: Storage) -> None:
    payloads = {"h-a": '"a"', "h-b": '"b"'}
    await _store_run(storage, _run("kept-a-week", age=3 * DAY, retention=7 * DAY), payloads)
    await _store_run(storage, _run("past-a-day", age=3 * DAY, retention=DAY), payloads)
    await _store_run(storage, _run("no-retention", age=300 * DAY), payloads)
    assert await storage.prune() == 1
    assert sorted(r.run_id for r in await storage.list_runs()) == ["kept-a-week", "no-retention"]
    assert (await storage.get_run("kept-a-week")).retention == 7 * DAY  # type: ignore[union-attr]


async def test_prune_removes_lease_rows_no_live_process_holds(storage: Storage) -> None:
    await _store_run(storage, _run("finished"), {"h-1": '"1"', "h-2": '"2"'})  # released its lease
    await storage.save_run(_run("running", status="RUNNING"))
    assert await storage.claim_lease("running", {"owner": "o", "host": "h", "pid": 1}, 30) is None
    assert await storage.claim_lease("orphan", {"owner": "o", "host": "h", "pid": 1}, 0.01) is None  # no run
    for run_id in ("finished", "running", "orphan"):
        cancel = SessionRecord(session_id=internal_keys(run_id)[1], workflow_id="wf", state={"cancel": True})
        await storage.save_session(cancel)
    await asyncio.sleep(0.05)
    assert await storage.prune("30d") == 0  # no run is old enough; the stale rows still go
    rows = {
        (run_id, kind): await storage.load_session(key) is not None
        for run_id in ("finished", "running", "orphan")
        for kind, key in zip(("lease", "cancel"), internal_keys(run_id), strict=True)
    }
    assert rows == {
        ("finished", "lease"): False,
        ("finished", "cancel"): False,
        ("running", "lease"): True,  # a live process holds it: it and its cancel request stay
        ("running", "cancel"): True,
        ("orphan", "lease"): False,
        ("orphan", "cancel"): False,
    }
    assert await storage.get_run("finished") is not None  # the run itself is kept
    assert await storage.prune_leases() == 0
    # a claim after its row went works as on an expired one
    assert await storage.claim_lease("finished", {"owner": "o2", "host": "h", "pid": 2}, 30) is None
    with pytest.raises(RunClaimedError, match="owner 'o2'"):
        await storage.delete_run("finished")


async def test_concurrent_prunes_in_one_process_delete_each_run_once(storage: Storage) -> None:
    for n in range(12):
        await _store_run(storage, _run(f"r{n}", age=2 * DAY), {"h-shared": '"s"', f"h-{n}": f'"{n}"'})
    await _store_run(storage, _run("young"), {"h-shared": '"s"', "h-young": '"y"'})
    counts = await asyncio.gather(*(storage.prune("1d") for _ in range(3)))
    assert sum(counts) == 12
    assert [r.run_id for r in await storage.list_runs()] == ["young"]
    assert sorted(await storage.load_payloads(["h-shared", "h-young", "h-3"])) == ["h-shared", "h-young"]


async def test_sessions_list_and_delete(storage: Storage) -> None:
    now = time.time()
    await storage.save_session(
        SessionRecord(session_id="s-old", workflow_id="wf", state={"n": 1}, updated_at=now - 50)
    )
    await storage.save_session(SessionRecord(session_id="s-new", workflow_id="wf2", updated_at=now - 10))
    await storage.append_history(HistoryRecord(session_id="s-new", agent_id="A", run_id="x", messages=[1]))
    await storage.append_history(HistoryRecord(session_id="s-new", agent_id="B:2", run_id="y", messages=[2]))
    await storage.append_history(HistoryRecord(session_id="chat", agent_id="A", run_id="z", messages=[3]))
    await storage.append_history(HistoryRecord(session_id="s-new:B", agent_id="A", run_id="w", messages=[4]))
    await storage.save_run(_run("r", status="RUNNING", session_id="s-new"))
    await storage.claim_lease("r", {"owner": "o", "host": "h", "pid": 1}, 30)  # plait's own row

    listed = await storage.list_sessions()
    assert {s.session_id for s in listed} == {"s-old", "s-new", "chat", "s-new:B"}
    chat = next(s for s in listed if s.session_id == "chat")
    assert (chat.workflow_id, chat.version, chat.state) == ("", 0, {})  # a conversation only
    assert [s.session_id for s in listed].index("s-new") < [s.session_id for s in listed].index("s-old")
    assert [s.session_id for s in await storage.list_sessions(workflow_id="wf")] == ["s-old"]
    assert len(await storage.list_sessions(limit=2)) == 2
    assert len(await storage.list_sessions(limit=10, offset=3)) == 1

    assert await storage.delete_session("s-new") is True
    assert await storage.load_session("s-new") is None
    assert await storage.load_history("s-new", "A") == [] and await storage.load_history("s-new", "B:2") == []
    assert len(await storage.load_history("s-new:B", "A")) == 1  # a look-alike id is another session
    assert await storage.get_run("r") is not None  # its runs stay
    assert await storage.delete_session("s-new") is False
    assert await storage.delete_session("chat") is True  # history only
    assert {s.session_id for s in await storage.list_sessions()} == {"s-old", "s-new:B"}


async def test_a_real_workflow_run_leaves_nothing_behind(storage: Storage) -> None:
    def a(step_input: Any) -> str:
        return f"a({step_input.input})"

    inner = Workflow(name="inner", steps=[Step(name="i", executor=a)])
    workflow = Workflow(
        name="kept",
        storage=storage,
        store_events=True,
        retention="12h",
        steps=[a, Parallel(Step(name="p1", executor=a), Step(name="p2", executor=a), name="par"), inner],
    )
    first = await workflow.arun("x")
    second = await workflow.arun("y")
    record = await storage.get_run(first.run_id)
    assert record is not None and record.retention == 12 * 3600
    assert len(await storage.load_checkpoints(first.run_id)) >= 5 and await storage.load_events(first.run_id)
    assert await storage.delete_run(first.run_id) is True
    assert (
        await storage.load_checkpoints(first.run_id) == [] and await storage.load_events(first.run_id) == []
    )
    assert await storage.load_session(internal_keys(first.run_id)[0]) is None
    assert len(await storage.load_checkpoints(second.run_id)) >= 5


def test_durations() -> None:
    assert parse_duration("30d", "x") == 30 * DAY
    assert parse_duration("12h", "x") == 12 * 3600 and parse_duration("90m", "x") == 5400
    assert parse_duration(" 1.5H ", "x") == 5400 and parse_duration("2w", "x") == 14 * DAY
    assert parse_duration(timedelta(minutes=2), "x") == 120 and parse_duration(45, "x") == 45
    for bad in ("30", "d", "30 days", "-1d", "0s", True, None, b"1d", float("inf")):
        with pytest.raises(DefinitionError, match="duration"):
            parse_duration(bad, "--older-than")
    with pytest.raises(DefinitionError, match=r"Workflow 'w': retention: expected a duration .* got 'soon'"):
        Workflow(name="w", steps=[lambda step_input: 1], retention="soon")
    assert Workflow(name="w", steps=[lambda step_input: 1], retention=timedelta(hours=1)).retention == 3600


# -- across processes -----------------------------------------------------------------------


def _open(storage: Storage) -> str:
    """Python that rebuilds ``storage`` in another process as ``storage``."""
    schema = getattr(storage, "schema", None)
    prefix = getattr(storage, "prefix", None)
    if schema is not None:
        return f"from plait_postgres import PostgresStorage\nstorage = PostgresStorage({storage.url!r}, schema={schema!r})"
    if prefix is not None:
        return f"from plait_redis import RedisStorage\nstorage = RedisStorage({storage.url!r}, prefix={prefix!r})"
    return f"from plait.storage import resolve_storage\nstorage = resolve_storage({storage.url!r})"


def _shared(storage: Storage) -> None:
    if isinstance(storage, MemoryStorage):
        pytest.skip("memory storage lives in one process")


PRUNER = """
import asyncio, json, sys, time
{open}

async def main():
    await storage.setup()
    while time.time() < float(sys.argv[1]):  # start together
        await asyncio.sleep(0.005)
    print(json.dumps(await storage.prune("1d")))
    await storage.close()

asyncio.run(main())
"""


@pytest.mark.slow  # up to 8 s on PostgreSQL: two interpreters, 31 runs written first
async def test_concurrent_prune_from_two_processes(storage: Storage) -> None:
    _shared(storage)
    for n in range(30):
        await _store_run(storage, _run(f"old{n}", age=2 * DAY), {"h-shared": '"s"', f"h-{n}": f'"{n}"'})
    await _store_run(storage, _run("young"), {"h-shared": '"s"', "h-young": '"y"'})
    start = str(time.time() + 1.5)
    script = PRUNER.format(open=_open(storage))
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, start, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    outputs = [await p.communicate() for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()
    counts = [json.loads(out) for out, _ in outputs]
    assert sum(counts) == 30  # each run deleted once, by one of them
    assert [r.run_id for r in await storage.list_runs()] == ["young"]
    assert await _everything_of(storage, "young", ["h-shared", "h-young"]) == _kept(
        ["h-shared", "h-young"], pruned=True
    )
    assert await storage.load_payloads([f"h-{n}" for n in range(30)]) == {}


HOLDER = """
import asyncio, sys
from plait.storage import claim_run
{open}

async def main():
    await storage.setup()
    lease = await claim_run(storage, sys.argv[1], ttl=30)
    print("held", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_delete_while_another_process_holds_the_lease(storage: Storage) -> None:
    _shared(storage)
    await _store_run(storage, _run("held", status="RUNNING"), {"h-1": '"1"', "h-2": '"2"'})
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER.format(open=_open(storage)), "held"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(
            RunClaimedError, match=rf"run 'held' is running: host '{socket.gethostname()}' pid {holder.pid}"
        ):
            await storage.delete_run("held")
        assert (await _everything_of(storage, "held", ["h-1", "h-2"]))["checkpoints"] == 2
        os.kill(holder.pid, signal.SIGKILL)  # its lease has 30 s left, but its process is gone
        holder.wait(10)
        assert await storage.delete_run("held") is True
        assert await _everything_of(storage, "held", ["h-1", "h-2"]) == GONE
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
        assert holder.stdout is not None
        holder.stdout.close()


def test_threads_with_loops_of_their_own_delete_each_run_once(storage: Storage) -> None:
    import threading

    async def seed() -> None:
        for n in range(6):
            await storage.save_run(_run(f"t{n}"))
            await storage.save_checkpoints([StepCheckpoint(run_id=f"t{n}", step_id="a", output={})])

    asyncio.run(seed())  # a loop of its own, as a sync caller's run() has
    results: list[tuple[str, bool]] = []
    lock = threading.Lock()

    def worker() -> None:
        async def delete_all() -> list[tuple[str, bool]]:
            return [(f"t{n}", await storage.delete_run(f"t{n}")) for n in range(6)]

        done = asyncio.run(delete_all())
        with lock:
            results.extend(done)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(run_id for run_id, deleted in results if deleted) == [f"t{n}" for n in range(6)]
    assert len(results) == 24
    assert asyncio.run(storage.list_runs()) == []


async def test_odd_session_ids_list_and_delete(storage: Storage) -> None:
    odd = "s\x00ü ✓ 🎉"
    await storage.save_session(
        SessionRecord(session_id=odd, workflow_id="wf", state={"at": "2026-01-01T00:00:00"})
    )
    await storage.append_history(HistoryRecord(session_id=odd, agent_id="A\x00", run_id="r", messages=["ü"]))
    listed = await storage.list_sessions()
    assert [(s.session_id, s.state) for s in listed] == [(odd, {"at": "2026-01-01T00:00:00"})]
    assert await storage.delete_session(odd) is True
    assert await storage.list_sessions() == [] and await storage.load_history(odd, "A\x00") == []
    assert await storage.delete_run("never-stored") is False  # nothing to delete: no error either
