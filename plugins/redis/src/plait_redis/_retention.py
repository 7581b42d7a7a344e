"""Retention on Redis: deleting a run in one MULTI/EXEC, listing and deleting sessions.

``delete_run`` WATCHes what its decision rests on (the run's hash, its lease, its calls and
checkpoints, the payloads it may delete, the history lists it edits), reads, then deletes in one transaction; a concurrent
writer of any of those makes EXEC fail and the whole read is done again. A run saving a call
that references a payload rewrites that payload's key (``save_calls``), so a payload another
run starts to use while it is being deleted is kept.
"""

from __future__ import annotations

from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import WatchError

from plait.storage import (
    CallRecord,
    HistoryRecord,
    RunRecord,
    SessionRecord,
    StepCheckpoint,
    StorageError,
    check_not_leased,
    history_origin,
    internal_keys,
    shared_keys,
    stale_rows,
)

__all__ = ["delete_run", "delete_session", "history_keys", "list_sessions", "prune_leases"]

_ATTEMPTS = 50


async def history_keys(
    client: Redis, key: Callable[..., str], glob: Callable[[str], str], session_id: str
) -> list[str]:
    """The history lists of ``session_id`` (``P:history:{n}:{agent}:{sid}``, every agent)."""
    head = key("history") + ":"
    found = []
    async for name in client.scan_iter(match=glob(head) + "*" + glob(":" + session_id), count=500):
        length, _, rest = name[len(head) :].partition(":")
        if length.isdigit() and rest[int(length) :] == ":" + session_id:
            found.append(name)
    return found


async def delete_run(
    client: Redis, key: Callable[..., str], glob: Callable[[str], str], run_id: str, force: bool
) -> bool:
    run_key = key("run", run_id)
    lease_key, cancel_key = (key("session", k) for k in internal_keys(run_id))
    origin = history_origin(run_id)
    async with client.pipeline(transaction=True) as pipe:
        for _ in range(_ATTEMPTS):
            try:
                await pipe.watch(run_key, lease_key, key("calls", run_id), key("checkpoints", run_id))
                lease = await pipe.get(lease_key)
                check_not_leased(
                    run_id, None if lease is None else SessionRecord.model_validate_json(lease).state, force
                )
                # the index entries are under the fields as stored (an old lower-case status too)
                raw, status, workflow, user = await pipe.hmget(
                    run_key, ["data", "status", "workflow_id", "user_id"]
                )  # type: ignore[misc]
                run = None if raw is None else RunRecord.model_validate_json(raw)
                calls = [
                    CallRecord.model_validate_json(c) for c in await pipe.lrange(key("calls", run_id), 0, -1)
                ]  # type: ignore[misc]
                mine = {h for c in calls for h in (c.request, c.response)}
                # its session-state values stored once: only this run refers to them
                shared = shared_keys(
                    StepCheckpoint.model_validate_json(raw).state
                    for raw in await pipe.hvals(key("checkpoints", run_id))  # type: ignore[misc]
                )
                if mine:
                    await pipe.watch(*(key("payload", h) for h in mine))
                    async for name in pipe.scan_iter(match=glob(key("calls")) + ":*", count=500):
                        if name != key("calls", run_id) and mine:
                            for text in await pipe.lrange(name, 0, -1):  # type: ignore[misc]
                                other = CallRecord.model_validate_json(text)
                                mine -= {other.request, other.response}
                turns: dict[str, list[str]] = {}
                if run is not None:
                    for name in await history_keys(pipe, key, glob, run.session_id):
                        await pipe.watch(name)
                        found: list[str] = await pipe.lrange(name, 0, -1)  # type: ignore[misc,assignment]
                        drop = [
                            r
                            for r in found
                            if (HistoryRecord.model_validate_json(r).origin or "").startswith(origin)
                        ]
                        if drop:
                            turns[name] = drop
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.delete(run_key)
                if run is not None:
                    pipe.zrem(key("runs"), run_id)
                    pipe.zrem(key("runs", "status", status or run.status), run_id)
                    pipe.zrem(key("runs", "workflow", workflow or run.workflow_id), run_id)
                    if user:
                        pipe.zrem(key("runs", "user", user), run_id)
                pipe.delete(
                    key("checkpoints", run_id),
                    key("checkpoint-order", run_id),
                    key("events", run_id),
                    key("calls", run_id),
                    lease_key,
                    cancel_key,
                )
                if mine or shared:
                    pipe.delete(*(key("payload", h) for h in mine | shared))
                for name, rows in turns.items():
                    for row in rows:
                        pipe.lrem(name, 1, row)
                results = await pipe.execute()
                return bool(results[0])
            except WatchError:
                continue
    raise StorageError(f"run {run_id!r} kept changing under {_ATTEMPTS} attempts to delete it")


async def prune_leases(client: Redis, key: Callable[..., str], glob: Callable[[str], str]) -> int:
    """Delete the stale lease and cancel rows, one run at a time: WATCH its two rows, read
    them, delete them in MULTI/EXEC (a claim meanwhile makes EXEC fail: that run is skipped)."""
    head = key("session") + ":"
    runs: set[str] = set()
    for prefix in internal_keys(""):
        async for name in client.scan_iter(match=glob(head + prefix) + "*", count=500):
            runs.add(name[len(head) + len(prefix) :])
    deleted = 0
    async with client.pipeline(transaction=True) as pipe:
        for run_id in sorted(runs):
            names = [key("session", k) for k in internal_keys(run_id)]
            await pipe.watch(*names)
            raws = await pipe.mget(names)
            rows = {
                k: SessionRecord.model_validate_json(raw).state
                for k, raw in zip(internal_keys(run_id), raws, strict=True)
                if raw is not None
            }
            stale = [key("session", k) for k in stale_rows(rows)]
            if not stale:
                await pipe.unwatch()  # type: ignore[no-untyped-call]
                continue
            pipe.multi()  # type: ignore[no-untyped-call]
            pipe.delete(*stale)
            try:
                await pipe.execute()
            except WatchError:
                continue  # claimed or requested meanwhile: left for the next prune
            deleted += len(stale)
    return deleted


async def list_sessions(
    client: Redis,
    key: Callable[..., str],
    glob: Callable[[str], str],
    limit: int,
    offset: int,
    workflow_id: str | None,
) -> list[SessionRecord]:
    found: dict[str, SessionRecord] = {}
    names = [n async for n in client.scan_iter(match=glob(key("session")) + ":*", count=500)]
    names = [n for n in names if not n[len(key("session")) + 1 :].startswith("\x00")]  # leases, cancels
    for start in range(0, len(names), 500):
        for raw in await client.mget(names[start : start + 500]):
            if raw is not None:
                record = SessionRecord.model_validate_json(raw)
                if workflow_id is None or record.workflow_id == workflow_id:
                    found[record.session_id] = record
    stored = set(found)
    if workflow_id is None:  # sessions that only have conversation history: their last turn
        async for name in client.scan_iter(match=glob(key("history")) + ":*", count=500):
            last = await client.lindex(name, -1)  # type: ignore[misc]
            if last is not None:
                turn = HistoryRecord.model_validate_json(last)
                seen = found.get(turn.session_id)
                # a stored session stands; of a conversation's agents, the latest turn
                if seen is None or (turn.session_id not in stored and seen.updated_at < turn.created_at):
                    found[turn.session_id] = SessionRecord(
                        session_id=turn.session_id, workflow_id="", updated_at=turn.created_at
                    )
    ordered = sorted(found.values(), key=lambda s: s.updated_at, reverse=True)
    return ordered[max(offset, 0) : max(offset, 0) + limit]


async def delete_session(
    client: Redis, key: Callable[..., str], glob: Callable[[str], str], session_id: str
) -> bool:
    names = [key("session", session_id), *await history_keys(client, key, glob, session_id)]
    async with client.pipeline(transaction=True) as pipe:
        pipe.delete(*names)
        deleted: list[int] = await pipe.execute()
    return bool(deleted[0])
