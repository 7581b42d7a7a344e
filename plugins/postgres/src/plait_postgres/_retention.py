"""Retention on PostgreSQL: deleting a run (one transaction), listing and deleting sessions.

What a deleted run takes with it is :mod:`plait.storage`'s rule (``Storage.delete_run``). The
records are read in Python, not with ``data::json``: PostgreSQL cannot turn a ``\\u0000`` that a
record may hold into text, and fails the whole statement when it meets one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, LiteralString

from psycopg import AsyncConnection, sql

from plait.storage import (
    CallRecord,
    HistoryRecord,
    RunRecord,
    SessionRecord,
    check_not_leased,
    history_origin,
    internal_keys,
    shared_keys,
    stale_rows,
)

__all__ = ["delete_run", "delete_session", "list_sessions", "prune_leases"]

INTERNAL = "\x00"  # plait's own session rows (leases, cancel requests) start with NUL


async def delete_run(
    connection: AsyncConnection[Any],
    q: sql.Identifier,
    run_id: str,
    force: bool,
    column: Callable[[str], str],
) -> bool:
    """Delete ``run_id`` and what belongs to it in one transaction (``column``: a key as the
    tables store it)."""

    def query(template: LiteralString) -> sql.Composed:
        return sql.SQL(template).format(schema=q)

    lease_key, cancel_key = (column(key) for key in internal_keys(run_id))
    async with connection.transaction():
        # One deleter at a time, and no recorded call saved meanwhile (save_calls takes ROW
        # EXCLUSIVE, which this waits for and blocks): the payload check below sees every call.
        await connection.execute(query("LOCK TABLE {schema}.plait_calls IN SHARE ROW EXCLUSIVE MODE"))
        cursor = await connection.execute(
            query("SELECT data FROM {schema}.plait_sessions WHERE session_id = %s FOR UPDATE"), (lease_key,)
        )
        row = await cursor.fetchone()
        check_not_leased(
            run_id, None if row is None else SessionRecord.model_validate_json(row[0]).state, force
        )
        cursor = await connection.execute(
            query("DELETE FROM {schema}.plait_runs WHERE run_id = %s RETURNING data"), (run_id,)
        )
        run = await cursor.fetchone()
        cursor = await connection.execute(
            query("DELETE FROM {schema}.plait_calls WHERE run_id = %s RETURNING data"), (column(run_id),)
        )
        calls = [CallRecord.model_validate_json(data) for (data,) in await cursor.fetchall()]
        cursor = await connection.execute(
            query("DELETE FROM {schema}.plait_checkpoints WHERE run_id = %s RETURNING data"), (run_id,)
        )
        # its session-state values stored once: only this run refers to them
        shared = sorted(shared_keys(json.loads(data)["state"] for (data,) in await cursor.fetchall()))
        if shared:
            await connection.execute(
                query("DELETE FROM {schema}.plait_payloads WHERE hash = ANY(%s)"), (shared,)
            )
        await connection.execute(query("DELETE FROM {schema}.plait_events WHERE run_id = %s"), (run_id,))
        await connection.execute(
            query("DELETE FROM {schema}.plait_sessions WHERE session_id = ANY(%s)"),
            ([lease_key, cancel_key],),
        )
        hashes = sorted({h for call in calls for h in (call.request, call.response)})
        if hashes:
            # a hash anywhere in a remaining call's record keeps its payload (never too few kept)
            await connection.execute(
                query(
                    "DELETE FROM {schema}.plait_payloads p WHERE p.hash = ANY(%s) AND NOT EXISTS "
                    "(SELECT 1 FROM {schema}.plait_calls c WHERE strpos(c.data, p.hash) > 0)"
                ),
                (hashes,),
            )
        if run is None:
            return False
        session_id = RunRecord.model_validate_json(run[0]).session_id
        cursor = await connection.execute(
            query("SELECT seq, data FROM {schema}.plait_history WHERE session_id = %s"), (column(session_id),)
        )
        origin = history_origin(run_id)
        turns = [
            seq
            for seq, data in await cursor.fetchall()
            if (HistoryRecord.model_validate_json(data).origin or "").startswith(origin)
        ]
        if turns:
            await connection.execute(
                query("DELETE FROM {schema}.plait_history WHERE seq = ANY(%s)"), (turns,)
            )
        return True


async def prune_leases(
    connection: AsyncConnection[Any], q: sql.Identifier, column: Callable[[str], str]
) -> int:
    """Delete the stale lease and cancel rows, locking the rows it reads (a claim's
    compare-and-set locks the same row, so it sees the row or its absence, never both)."""
    prefix = column(INTERNAL)  # what every encoded id that starts with NUL starts with
    async with connection.transaction():
        cursor = await connection.execute(
            sql.SQL(
                "SELECT session_id, data FROM {}.plait_sessions WHERE left(session_id, %s) = %s FOR UPDATE"
            ).format(q),
            (len(prefix), prefix),
        )
        rows = {key: SessionRecord.model_validate_json(data) for key, data in await cursor.fetchall()}
        stale = set(stale_rows({r.session_id: r.state for r in rows.values()}))
        keys = [key for key, record in rows.items() if record.session_id in stale]
        if keys:
            await connection.execute(
                sql.SQL("DELETE FROM {}.plait_sessions WHERE session_id = ANY(%s)").format(q), (keys,)
            )
        return len(keys)


async def list_sessions(
    connection: AsyncConnection[Any], q: sql.Identifier, limit: int, offset: int, workflow_id: str | None
) -> list[SessionRecord]:
    cursor = await connection.execute(sql.SQL("SELECT data FROM {}.plait_sessions").format(q))
    found = {
        record.session_id: record
        for record in (SessionRecord.model_validate_json(data) for (data,) in await cursor.fetchall())
        if not record.session_id.startswith("\x00")  # plait's own rows: leases, cancel requests
        and (workflow_id is None or record.workflow_id == workflow_id)
    }
    if workflow_id is None:  # sessions that only have conversation history: their last turn
        cursor = await connection.execute(
            sql.SQL(
                "SELECT data FROM {}.plait_history WHERE seq IN "
                "(SELECT MAX(seq) FROM {}.plait_history GROUP BY session_id)"
            ).format(q, q)
        )
        for (data,) in await cursor.fetchall():
            turn = HistoryRecord.model_validate_json(data)
            if turn.session_id not in found:
                found[turn.session_id] = SessionRecord(
                    session_id=turn.session_id, workflow_id="", updated_at=turn.created_at
                )
    ordered = sorted(found.values(), key=lambda s: s.updated_at, reverse=True)
    return ordered[max(offset, 0) : max(offset, 0) + limit]


async def delete_session(connection: AsyncConnection[Any], q: sql.Identifier, key: str) -> bool:
    """Delete the session stored under column value ``key`` and its history, in one transaction."""
    async with connection.transaction():
        cursor = await connection.execute(
            sql.SQL("DELETE FROM {}.plait_sessions WHERE session_id = %s").format(q), (key,)
        )
        existed = cursor.rowcount > 0
        cursor = await connection.execute(
            sql.SQL("DELETE FROM {}.plait_history WHERE session_id = %s").format(q), (key,)
        )
        return existed or cursor.rowcount > 0
