"""Retention on SQLite: :meth:`SQLiteStorage.delete_run`, ``list_sessions`` and
``delete_session`` as functions of a connection, each one ``BEGIN IMMEDIATE`` transaction
(the file's write lock: a claim, a save of recorded calls or another delete waits for it)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import TypeVar

from plait.storage._base import SessionRecord
from plait.storage._retention import check_not_leased, history_origin, internal_keys, stale_rows
from plait.storage._shared import shared_keys

__all__ = ["delete_run", "delete_session", "list_sessions", "prune_leases"]

T = TypeVar("T")


def _in_transaction(connection: sqlite3.Connection, work: Callable[[], T]) -> T:
    connection.execute("BEGIN IMMEDIATE")
    try:
        result = work()
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return result


def delete_run(connection: sqlite3.Connection, run_id: str, force: bool) -> bool:
    lease_key, cancel_key = internal_keys(run_id)

    def work() -> bool:
        row = connection.execute(
            "SELECT data FROM plait_sessions WHERE session_id = ?", (lease_key,)
        ).fetchone()
        check_not_leased(run_id, None if row is None else json.loads(row[0])["state"], force)
        run = connection.execute("SELECT data FROM plait_runs WHERE run_id = ?", (run_id,)).fetchone()
        hashes = {
            digest
            for (data,) in connection.execute("SELECT data FROM plait_calls WHERE run_id = ?", (run_id,))
            for digest in (json.loads(data)["request"], json.loads(data)["response"])
        }
        shared = shared_keys(
            json.loads(data)["state"]
            for (data,) in connection.execute(
                "SELECT data FROM plait_checkpoints WHERE run_id = ?", (run_id,)
            )
        )  # its session-state values stored once: only this run refers to them
        for table in ("plait_runs", "plait_checkpoints", "plait_events", "plait_calls"):
            connection.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
        connection.execute("DELETE FROM plait_sessions WHERE session_id IN (?, ?)", (lease_key, cancel_key))
        _delete_unreferenced(connection, sorted(hashes))
        for key in shared:
            connection.execute("DELETE FROM plait_payloads WHERE hash = ?", (key,))
        if run is not None:
            origin = history_origin(run_id)
            connection.execute(
                "DELETE FROM plait_history WHERE session_id = ? "
                "AND substr(json_extract(data, '$.origin'), 1, ?) = ?",
                (json.loads(run[0])["session_id"], len(origin), origin),
            )
        return run is not None

    return _in_transaction(connection, work)


def _delete_unreferenced(connection: sqlite3.Connection, hashes: list[str]) -> None:
    """Delete the payloads among ``hashes`` that no remaining recorded call references."""
    for start in range(0, len(hashes), 400):  # SQLite caps the parameters of one statement
        chunk = hashes[start : start + 400]
        marks = ", ".join("?" for _ in chunk)
        used = {
            row[0]
            for row in connection.execute(
                f"SELECT json_extract(data, '$.request') AS h FROM plait_calls WHERE h IN ({marks}) "
                f"UNION SELECT json_extract(data, '$.response') AS h FROM plait_calls WHERE h IN ({marks})",
                (*chunk, *chunk),
            )
        }
        unused = [h for h in chunk if h not in used]
        if unused:
            connection.execute(
                f"DELETE FROM plait_payloads WHERE hash IN ({', '.join('?' for _ in unused)})", unused
            )


def prune_leases(connection: sqlite3.Connection) -> int:
    def work() -> int:
        rows = {
            key: json.loads(data)["state"]
            for key, data in connection.execute(
                "SELECT session_id, data FROM plait_sessions WHERE substr(CAST(session_id AS BLOB), 1, 1) = x'00'"
            )
        }
        stale = stale_rows(rows)
        for key in stale:
            connection.execute("DELETE FROM plait_sessions WHERE session_id = ?", (key,))
        return len(stale)

    return _in_transaction(connection, work)


def list_sessions(
    connection: sqlite3.Connection, limit: int, offset: int, workflow_id: str | None
) -> list[SessionRecord]:
    # stored sessions but plait's own rows (their ids start with NUL, which SQLite's text
    # functions stop at: compared as bytes), and (without a workflow filter) those with history only
    stored = (
        "SELECT session_id, json_extract(data, '$.updated_at') AS at, data FROM plait_sessions "
        "WHERE substr(CAST(session_id AS BLOB), 1, 1) != x'00' AND (? IS NULL OR json_extract(data, '$.workflow_id') = ?)"
    )
    history_only = (
        " UNION ALL SELECT session_id, MAX(json_extract(data, '$.created_at')), NULL FROM plait_history "
        "WHERE ? IS NULL AND session_id NOT IN (SELECT session_id FROM plait_sessions) GROUP BY session_id"
    )
    rows = connection.execute(
        stored + history_only + " ORDER BY at DESC LIMIT ? OFFSET ?",
        (workflow_id, workflow_id, workflow_id, limit, max(offset, 0)),
    ).fetchall()
    return [
        SessionRecord.model_validate_json(data)
        if data is not None
        else SessionRecord(session_id=session_id, workflow_id="", updated_at=at)
        for session_id, at, data in rows
    ]


def delete_session(connection: sqlite3.Connection, session_id: str) -> bool:
    def work() -> bool:
        state = connection.execute("DELETE FROM plait_sessions WHERE session_id = ?", (session_id,))
        history = connection.execute("DELETE FROM plait_history WHERE session_id = ?", (session_id,))
        return bool(state.rowcount > 0 or history.rowcount > 0)

    return _in_transaction(connection, work)
