"""SQLite storage, the embedded default (``sqlite:///runs.db``).

Statements run on the event loop's own connection, or in a worker thread when they
would wait for a lock (plait.storage._sqlite_file); WAL journal and a generous busy
timeout make many concurrent runs, threads and processes safe on one file. The schema is
versioned in ``plait_meta`` and migrated by :meth:`SQLiteStorage.setup`.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from plait.errors import DefinitionError
from plait.storage import _sqlite_retention as _retention
from plait.storage._base import (
    SCHEMA_VERSION,
    CacheEntry,
    CallRecord,
    HistoryRecord,
    RunRecord,
    SessionRecord,
    StepCheckpoint,
    Storage,
    StorageError,
    lease_record,
    status_spellings,
)
from plait.storage._claims import (
    LEASE_PREFIX,
    LIMITED_STATUSES,
    check_claim,
    check_limits,
    claimable_statuses,
    lease_live,
)
from plait.storage._sqlite_file import SQLiteFile, transaction

__all__ = ["SQLiteStorage"]


_MIGRATIONS: dict[int, list[str]] = {
    1: [
        "CREATE TABLE IF NOT EXISTS plait_runs (run_id TEXT PRIMARY KEY, workflow_id TEXT NOT NULL,"
        " status TEXT NOT NULL, created_at REAL NOT NULL, data TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS plait_runs_created ON plait_runs (created_at DESC)",
        "CREATE TABLE IF NOT EXISTS plait_checkpoints (run_id TEXT NOT NULL, step_id TEXT NOT NULL,"
        " data TEXT NOT NULL, PRIMARY KEY (run_id, step_id))",
        "CREATE TABLE IF NOT EXISTS plait_sessions (session_id TEXT PRIMARY KEY, data TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS plait_events (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        " run_id TEXT NOT NULL, data TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS plait_events_run ON plait_events (run_id, seq)",
        "CREATE TABLE IF NOT EXISTS plait_cache (key TEXT PRIMARY KEY, expires_at REAL, data TEXT NOT NULL)",
    ],
    # runs get a user_id column (NULL for runs stored before: they had none)
    2: [
        "ALTER TABLE plait_runs ADD COLUMN user_id TEXT",
        "CREATE INDEX IF NOT EXISTS plait_runs_user ON plait_runs (user_id, created_at DESC)",
    ],
    # recorded model and tool calls, and their payloads stored once by hash
    3: [
        "CREATE TABLE IF NOT EXISTS plait_calls (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        " run_id TEXT NOT NULL, data TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS plait_calls_run ON plait_calls (run_id, seq)",
        "CREATE TABLE IF NOT EXISTS plait_payloads (hash TEXT PRIMARY KEY, data TEXT NOT NULL)",
    ],
    # agents' conversation history: one row per agent run, appended
    4: [
        "CREATE TABLE IF NOT EXISTS plait_history (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        " session_id TEXT NOT NULL, agent_id TEXT NOT NULL, data TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS plait_history_session ON plait_history (session_id, agent_id, seq)",
    ],
    # runs get a priority column, the order of the work queue (claim_next)
    5: [
        "ALTER TABLE plait_runs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX IF NOT EXISTS plait_runs_claim ON plait_runs (status, workflow_id, priority DESC, created_at)",
    ],
}


class SQLiteStorage(Storage):
    """Storage in one SQLite file (``sqlite:///relative.db``, ``sqlite:////absolute.db``)."""

    def __init__(self, url: str = "sqlite:///.plait/plait.db", *, timeout: float = 30.0) -> None:
        if not url.startswith("sqlite://"):
            raise DefinitionError(f"SQLiteStorage: expected a sqlite:/// URL, got {url!r}")
        self.url = url
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else url[len("sqlite://") :]
        self.path = path or ":memory:"
        self.timeout = timeout
        self._file = SQLiteFile(self.path, timeout)
        self._call = self._file.call

    # the file's connections (plait.storage._sqlite_file)
    _transaction = staticmethod(transaction)

    async def setup(self) -> None:
        if self._file.ready:
            return

        def migrate(connection: sqlite3.Connection) -> None:
            connection.execute(
                "CREATE TABLE IF NOT EXISTS plait_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            # The version is read under the write lock: two processes opening an old file at
            # once migrate it once (ALTER TABLE is not idempotent).
            connection.execute("BEGIN IMMEDIATE")
            try:
                row = connection.execute(
                    "SELECT value FROM plait_meta WHERE key = 'schema_version'"
                ).fetchone()
                version = int(row[0]) if row else 0
                if version > SCHEMA_VERSION:
                    raise StorageError(
                        f"{self.path!r} has schema version {version}, newer than this plait ({SCHEMA_VERSION}); upgrade plait"
                    )
                for target in range(version + 1, SCHEMA_VERSION + 1):
                    for sql in _MIGRATIONS[target]:
                        connection.execute(sql)
                    connection.execute(
                        "INSERT OR REPLACE INTO plait_meta (key, value) VALUES ('schema_version', ?)",
                        (str(target),),
                    )
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

        await self._call(migrate)
        self._file.ready = True

    async def close(self) -> None:
        await self._file.close()

    # -- runs --------------------------------------------------------------------------

    async def save_run(self, run: RunRecord) -> None:
        data = run.model_dump_json()
        sql = (
            "INSERT INTO plait_runs (run_id, workflow_id, status, created_at, user_id, priority, data) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (run_id) DO UPDATE SET workflow_id = excluded.workflow_id, status = excluded.status, "
            "created_at = excluded.created_at, user_id = excluded.user_id, priority = excluded.priority, "
            "data = excluded.data"
        )
        params = (run.run_id, run.workflow_id, run.status, run.created_at, run.user_id, run.priority, data)
        await self._call(lambda c: c.execute(sql, params))

    async def get_run(self, run_id: str) -> RunRecord | None:
        row = await self._call(
            lambda c: c.execute("SELECT data FROM plait_runs WHERE run_id = ?", (run_id,)).fetchone()
        )
        return None if row is None else RunRecord.model_validate_json(row[0])

    async def list_runs(
        self,
        *,
        limit: int = 50,
        status: str | None = None,
        workflow_id: str | None = None,
        user_id: str | None = None,
        session_id: str | None = None,
        offset: int = 0,
    ) -> list[RunRecord]:
        clauses: list[str] = []
        params: list[str] = []
        if status is not None:
            spellings = status_spellings(status)
            clauses.append(f"status IN ({', '.join('?' for _ in spellings)})")
            params.extend(spellings)
        if workflow_id is not None:
            clauses.append("workflow_id = ?")
            params.append(workflow_id)
        if user_id is not None:
            clauses.append("user_id = ?")
            params.append(user_id)
        if session_id is not None:
            clauses.append("json_extract(data, '$.session_id') = ?")
            params.append(session_id)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT data FROM plait_runs {where} ORDER BY created_at DESC LIMIT ? OFFSET ?"
        rows = await self._call(lambda c: c.execute(sql, (*params, limit, offset)).fetchall())
        return [RunRecord.model_validate_json(row[0]) for row in rows]

    # -- checkpoints -------------------------------------------------------------------

    async def save_checkpoints(self, checkpoints: list[StepCheckpoint]) -> None:
        # REPLACE deletes a checkpoint it replaces and inserts a new row with a new rowid:
        # rowid order is write order. One statement needs no explicit transaction.
        sql = "INSERT OR REPLACE INTO plait_checkpoints (run_id, step_id, data) VALUES (?, ?, ?)"
        rows = [(c.run_id, c.step_id, c.model_dump_json()) for c in checkpoints]
        if len(rows) == 1:
            await self._call(lambda c: c.execute(sql, rows[0]))
        else:
            await self._call(lambda c: self._transaction(c, [(sql, row) for row in rows]))

    async def load_checkpoints(self, run_id: str) -> list[StepCheckpoint]:
        rows = await self._call(
            lambda c: c.execute(
                "SELECT data FROM plait_checkpoints WHERE run_id = ? ORDER BY rowid", (run_id,)
            ).fetchall()
        )
        return [StepCheckpoint.model_validate_json(row[0]) for row in rows]

    # -- sessions, events, cache -------------------------------------------------------

    async def save_session(self, session: SessionRecord) -> None:
        sql = "INSERT OR REPLACE INTO plait_sessions (session_id, data) VALUES (?, ?)"
        data = session.model_dump_json()
        await self._call(lambda c: c.execute(sql, (session.session_id, data)))

    async def load_session(self, session_id: str) -> SessionRecord | None:
        row = await self._call(
            lambda c: c.execute(
                "SELECT data FROM plait_sessions WHERE session_id = ?", (session_id,)
            ).fetchone()
        )
        return None if row is None else SessionRecord.model_validate_json(row[0])

    async def save_session_if(self, session: SessionRecord, expected_version: int) -> bool:
        data = session.model_dump_json()

        def compare_and_save(connection: sqlite3.Connection) -> bool:
            connection.execute("BEGIN IMMEDIATE")  # the write lock, held until COMMIT
            try:
                row = connection.execute(
                    "SELECT data FROM plait_sessions WHERE session_id = ?", (session.session_id,)
                ).fetchone()
                stored = 0 if row is None else SessionRecord.model_validate_json(row[0]).version
                if stored == expected_version:
                    connection.execute(
                        "INSERT OR REPLACE INTO plait_sessions (session_id, data) VALUES (?, ?)",
                        (session.session_id, data),
                    )
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
            return stored == expected_version

        return await self._call(compare_and_save)

    async def append_events(self, run_id: str, events: list[dict[str, Any]]) -> None:
        rows = [(run_id, json.dumps(event)) for event in events]
        await self._call(
            lambda c: self._transaction(
                c, [("INSERT INTO plait_events (run_id, data) VALUES (?, ?)", r) for r in rows]
            )
        )

    async def load_events(self, run_id: str, *, after: int = 0) -> list[dict[str, Any]]:
        rows = await self._call(
            lambda c: c.execute(
                "SELECT data FROM plait_events WHERE run_id = ? ORDER BY seq LIMIT -1 OFFSET ?",
                (run_id, after),
            ).fetchall()
        )
        return [json.loads(row[0]) for row in rows]

    def reopen(self) -> Callable[[], Storage] | None:
        if self.path == ":memory:":
            return None
        # by its absolute path (another process's working directory is not this one's), and
        # only where the file exists (a worker on another machine must not create one)
        return functools.partial(_existing, os.path.abspath(self.path), self.timeout)

    async def save_calls(self, calls: list[CallRecord], payloads: dict[str, str]) -> None:
        statements: list[tuple[str, tuple[Any, ...]]] = [
            ("INSERT OR IGNORE INTO plait_payloads (hash, data) VALUES (?, ?)", item)
            for item in payloads.items()
        ]
        statements += [
            ("INSERT INTO plait_calls (run_id, data) VALUES (?, ?)", (c.run_id, c.model_dump_json()))
            for c in calls
        ]
        if statements:
            await self._call(lambda c: self._transaction(c, statements))

    async def load_calls(self, run_id: str) -> list[CallRecord]:
        rows = await self._call(
            lambda c: c.execute(
                "SELECT data FROM plait_calls WHERE run_id = ? ORDER BY seq", (run_id,)
            ).fetchall()
        )
        return [CallRecord.model_validate_json(row[0]) for row in rows]

    async def load_payloads(self, hashes: list[str]) -> dict[str, str]:
        def read(connection: sqlite3.Connection) -> dict[str, str]:
            found: dict[str, str] = {}
            for start in range(0, len(hashes), 500):  # SQLite caps the parameters of one statement
                chunk = hashes[start : start + 500]
                marks = ", ".join("?" for _ in chunk)
                rows = connection.execute(
                    f"SELECT hash, data FROM plait_payloads WHERE hash IN ({marks})", chunk
                ).fetchall()
                found.update({row[0]: row[1] for row in rows})
            return found

        return await self._call(read)

    async def append_history(self, record: HistoryRecord) -> None:
        sql = "INSERT INTO plait_history (session_id, agent_id, data) VALUES (?, ?, ?)"
        params = (record.session_id, record.agent_id, record.model_dump_json())
        await self._call(lambda c: c.execute(sql, params))

    async def load_history(
        self, session_id: str, agent_id: str, *, limit: int | None = None
    ) -> list[HistoryRecord]:
        sql = "SELECT data FROM plait_history WHERE session_id = ? AND agent_id = ? ORDER BY seq DESC LIMIT ?"
        params = (session_id, agent_id, -1 if limit is None else max(limit, 0))
        rows = await self._call(lambda c: c.execute(sql, params).fetchall())
        return [HistoryRecord.model_validate_json(row[0]) for row in reversed(rows)]

    async def clear_history(self, session_id: str, agent_id: str) -> None:
        sql = "DELETE FROM plait_history WHERE session_id = ? AND agent_id = ?"
        await self._call(lambda c: c.execute(sql, (session_id, agent_id)))

    async def get_cache(self, key: str) -> CacheEntry | None:
        row = await self._call(
            lambda c: c.execute(
                "SELECT data FROM plait_cache WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)",
                (key, time.time()),
            ).fetchone()
        )
        return None if row is None else CacheEntry.model_validate_json(row[0])

    async def put_cache(self, entry: CacheEntry) -> None:
        sql = "INSERT OR REPLACE INTO plait_cache (key, expires_at, data) VALUES (?, ?, ?)"
        data = entry.model_dump_json()
        await self._call(lambda c: c.execute(sql, (entry.key, entry.expires_at, data)))

    # -- retention (plait.storage._sqlite_retention) -----------------------------------

    async def delete_run(self, run_id: str, *, force: bool = False) -> bool:
        return await self._call(lambda c: _retention.delete_run(c, run_id, force))

    async def prune_leases(self) -> int:
        return await self._call(_retention.prune_leases)

    async def list_sessions(
        self, *, limit: int = 50, offset: int = 0, workflow_id: str | None = None
    ) -> list[SessionRecord]:
        return await self._call(lambda c: _retention.list_sessions(c, limit, offset, workflow_id))

    async def delete_session(self, session_id: str) -> bool:
        return await self._call(lambda c: _retention.delete_session(c, session_id))

    # -- the work queue (plait.storage._claims) ----------------------------------------

    async def claim_next(
        self,
        workflow_ids: Sequence[str],
        owner: dict[str, Any],
        ttl: float,
        *,
        queued: bool = True,
        limits: Mapping[str, int] | None = None,
    ) -> str | None:
        ids = check_claim(workflow_ids, owner, ttl)
        caps = check_limits(limits)
        if not ids:
            return None
        statuses = claimable_statuses(queued)
        # the runs of a limited workflow under a live lease (lease_live), in one statement:
        # a worker's claim holds the write lock, so it must not walk a large queue run by run
        counted = (
            "SELECT COUNT(*) FROM plait_runs r JOIN plait_sessions s ON s.session_id = ? || r.run_id "
            f"WHERE r.workflow_id = ? AND r.status IN ({', '.join('?' for _ in LIMITED_STATUSES)}) "
            "AND COALESCE(json_extract(s.data, '$.state.expires_at'), 0) > ?"
        )
        select = (
            f"SELECT run_id, workflow_id FROM plait_runs WHERE workflow_id IN ({', '.join('?' for _ in ids)}) "
            f"AND status IN ({', '.join('?' for _ in statuses)}) ORDER BY priority DESC, created_at, run_id"
        )
        lease = "SELECT data FROM plait_sessions WHERE session_id = ?"

        def live(connection: sqlite3.Connection, workflow_id: str, now: float) -> int:
            """How many runs of ``workflow_id`` hold a live lease (a limit counts them)."""
            params = (LEASE_PREFIX, workflow_id, *LIMITED_STATUSES, now)
            return int(connection.execute(counted, params).fetchone()[0])

        def claim(connection: sqlite3.Connection) -> str | None:
            # the write lock, held until COMMIT: no other claimer (process or thread) reads between
            connection.execute("BEGIN IMMEDIATE")
            try:
                now = time.time()
                room = {w: cap - live(connection, w, now) for w, cap in caps.items() if w in ids}
                for run_id, workflow_id in connection.execute(select, (*ids, *statuses)).fetchall():
                    if room.get(workflow_id, 1) <= 0:
                        continue  # its workflow has max_concurrent_runs running
                    row = connection.execute(lease, (LEASE_PREFIX + run_id,)).fetchone()
                    held = None if row is None else SessionRecord.model_validate_json(row[0])
                    if lease_live(held, now):
                        continue
                    record = lease_record(run_id, owner, ttl, now, 0 if held is None else held.version)
                    connection.execute(
                        "INSERT OR REPLACE INTO plait_sessions (session_id, data) VALUES (?, ?)",
                        (record.session_id, record.model_dump_json()),
                    )
                    connection.execute("COMMIT")
                    return str(run_id)
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
            return None

        return await self._call(claim)


def _existing(path: str, timeout: float) -> SQLiteStorage:
    """:meth:`SQLiteStorage.reopen`'s factory: the storage in the file at ``path``, which must exist."""
    if not os.path.exists(path):
        raise StorageError(f"SQLite storage {path!r}: no such file here (another machine?)")
    return SQLiteStorage(f"sqlite:///{path}", timeout=timeout)
