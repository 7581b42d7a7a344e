"""PostgreSQL storage on psycopg 3 and an async connection pool.

Every table lives in one PostgreSQL schema (``plait`` unless told otherwise), so
several deployments or test runs can share a database. ``setup()`` creates and
migrates that schema on a connection of its own, holding an advisory lock so
processes starting together do not race, and then opens the pool. An operation
that meets a dead pooled connection has the pool checked and runs once more, so
a storage recovers by itself after the server restarts or kills its connections
(a restart shorter than ``timeout`` is not even seen by the caller).

Records are stored as JSON text, not JSONB: text round-trips exactly what
pydantic wrote (object key order, NaN, ``\\u0000``), the same as the SQLite
backend, while JSONB would reorder keys and reject NaN and NUL. Nothing queries
inside a record: the columns that are filtered or sorted on have their own.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, LiteralString, TypeVar
from urllib.parse import quote

import psycopg
from psycopg import AsyncConnection, sql
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from plait.errors import DefinitionError
from plait.storage import (
    LEASE_PREFIX,
    LIMITED_STATUSES,
    SCHEMA_VERSION,
    CacheEntry,
    CallRecord,
    HistoryRecord,
    RunRecord,
    SessionRecord,
    StepCheckpoint,
    Storage,
    StorageError,
    check_claim,
    check_limits,
    claimable_statuses,
    lease_live,
    lease_record,
    own_event_loop,
    redact_url,
    scrub_secrets,
    status_spellings,
    url_secrets,
)
from plait_postgres import _retention

__all__ = ["PostgresStorage"]

T = TypeVar("T")

_SCHEMES = ("postgresql", "postgres")

# Statements of each schema version; ``{schema}`` is the quoted schema name.
_MIGRATIONS: dict[int, list[LiteralString]] = {
    1: [
        "CREATE TABLE IF NOT EXISTS {schema}.plait_runs (run_id TEXT PRIMARY KEY, workflow_id TEXT NOT NULL,"
        " status TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, data TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS plait_runs_created ON {schema}.plait_runs (created_at DESC)",
        "CREATE INDEX IF NOT EXISTS plait_runs_status ON {schema}.plait_runs (status, created_at DESC)",
        "CREATE INDEX IF NOT EXISTS plait_runs_workflow ON {schema}.plait_runs (workflow_id, created_at DESC)",
        # seq is redrawn when a checkpoint is replaced: ordering by it is write order
        "CREATE TABLE IF NOT EXISTS {schema}.plait_checkpoints (run_id TEXT NOT NULL, step_id TEXT NOT NULL,"
        " seq BIGSERIAL NOT NULL, data TEXT NOT NULL, PRIMARY KEY (run_id, step_id))",
        "CREATE INDEX IF NOT EXISTS plait_checkpoints_order ON {schema}.plait_checkpoints (run_id, seq)",
        "CREATE TABLE IF NOT EXISTS {schema}.plait_sessions (session_id TEXT PRIMARY KEY, data TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS {schema}.plait_events (seq BIGSERIAL PRIMARY KEY, run_id TEXT NOT NULL,"
        " data TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS plait_events_run ON {schema}.plait_events (run_id, seq)",
        "CREATE TABLE IF NOT EXISTS {schema}.plait_cache (key TEXT PRIMARY KEY, expires_at DOUBLE PRECISION,"
        " data TEXT NOT NULL)",
    ],
    # runs get a user_id column (NULL for runs stored before: they had none)
    2: [
        "ALTER TABLE {schema}.plait_runs ADD COLUMN IF NOT EXISTS user_id TEXT",
        "CREATE INDEX IF NOT EXISTS plait_runs_user ON {schema}.plait_runs (user_id, created_at DESC)",
    ],
    # recorded model and tool calls, and their payloads stored once by hash
    3: [
        "CREATE TABLE IF NOT EXISTS {schema}.plait_calls (seq BIGSERIAL PRIMARY KEY, run_id TEXT NOT NULL,"
        " data TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS plait_calls_run ON {schema}.plait_calls (run_id, seq)",
        "CREATE TABLE IF NOT EXISTS {schema}.plait_payloads (hash TEXT PRIMARY KEY, data TEXT NOT NULL)",
    ],
    # agents' conversation history: one row per agent run, appended
    4: [
        "CREATE TABLE IF NOT EXISTS {schema}.plait_history (seq BIGSERIAL PRIMARY KEY, session_id TEXT NOT NULL,"
        " agent_id TEXT NOT NULL, data TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS plait_history_session ON {schema}.plait_history (session_id, agent_id, seq)",
    ],
    # runs get a priority column, the order of the work queue (claim_next)
    5: [
        "ALTER TABLE {schema}.plait_runs ADD COLUMN IF NOT EXISTS priority INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX IF NOT EXISTS plait_runs_claim ON {schema}.plait_runs"
        " (status, workflow_id, priority DESC, created_at)",
    ],
}
#: candidate runs one claim locks and looks at per round trip
_CLAIM_BATCH = 20
_TABLES = (
    "plait_runs",
    "plait_checkpoints",
    "plait_sessions",
    "plait_events",
    "plait_cache",
    "plait_calls",
    "plait_payloads",
    "plait_history",
    "plait_meta",
)


@own_event_loop  # its client binds to an event loop: give it one of its own
class PostgresStorage(Storage):
    """Storage in a PostgreSQL database (``postgresql://user:password@host:5432/dbname``).

    ``schema`` is the PostgreSQL schema that holds plait's tables (created by
    :meth:`setup`). ``min_size``/``max_size`` bound the connection pool;
    ``connect_timeout`` bounds each connection attempt and ``timeout`` how long an
    operation waits for a free (or reconnected) connection.

    Example::

        storage = PostgresStorage("postgresql://plait@db.internal/plait", schema="prod")
        await storage.setup()
    """

    def __init__(
        self,
        url: str,
        *,
        schema: str = "plait",
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 5.0,
        timeout: float = 30.0,
    ) -> None:
        scheme, sep, rest = url.partition("://")
        if not sep or scheme.split("+", 1)[0] not in _SCHEMES:
            raise DefinitionError(f"PostgresStorage: expected a postgresql:// URL, got {redact_url(url)!r}")
        if not schema or len(schema.encode()) > 63:
            raise DefinitionError(f"PostgresStorage: schema must be 1 to 63 bytes long, got {schema!r}")
        if not 0 <= min_size <= max_size or max_size < 1:
            raise DefinitionError(
                f"PostgresStorage: expected 0 <= min_size <= max_size and max_size >= 1, got {min_size}, {max_size}"
            )
        self.url = url
        self.schema = schema
        self.min_size = min_size
        self.max_size = max_size
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        # libpq knows postgresql:// and postgres://, not SQLAlchemy-style postgresql+psycopg://
        self._conninfo = f"{scheme.split('+', 1)[0]}://{rest}"
        self._secrets = url_secrets(url)
        self._pool: AsyncConnectionPool[AsyncConnection[Any]] | None = None
        self._setup_lock = asyncio.Lock()
        self._q = sql.Identifier(schema)

    def __repr__(self) -> str:
        return f"PostgresStorage({self._display_url()!r}, schema={self.schema!r})"

    # -- plumbing ----------------------------------------------------------------------

    def _display_url(self) -> str:
        return scrub_secrets(redact_url(self.url), self._secrets)

    def _error(self, exc: BaseException, doing: str) -> StorageError:
        message = scrub_secrets(str(exc).strip() or type(exc).__name__, self._secrets)
        return StorageError(
            f"PostgreSQL storage {self._display_url()} (schema {self.schema!r}): {doing} failed: {message}"
        )

    def _sql(self, template: LiteralString) -> sql.Composed:
        return sql.SQL(template).format(schema=self._q)

    async def _connect(self) -> AsyncConnection[Any]:
        return await AsyncConnection.connect(
            self._conninfo, autocommit=True, connect_timeout=self._timeout_arg()
        )

    def _timeout_arg(self) -> int:
        # libpq takes whole seconds and treats anything below 2 as 2
        return max(2, round(self.connect_timeout))

    async def _run(
        self,
        doing: str,
        operation: Callable[[AsyncConnection[Any]], Awaitable[T]],
        *,
        may_retry: Callable[[], bool] = lambda: True,
    ) -> T:
        """Run ``operation`` on a pooled connection, once more on a fresh one if the first
        turned out dead (killed by the server, or the server restarted) and ``may_retry()``.

        Pooled connections are not pinged before each use (that would double the round
        trips); a dead one shows itself as ``broken``, and then every idle connection is
        checked so the retry, and the operations after it, get live ones.
        """
        if self._pool is None:
            raise StorageError(f"{self!r}: {doing} before setup() (or after close())")
        pool = self._pool
        for attempt in (1, 2):
            connection: AsyncConnection[Any] | None = None
            try:
                async with pool.connection() as connection:
                    return await operation(connection)
            except PoolTimeout as exc:
                # No connection came within the timeout. After an outage the pool may sit in
                # its reconnect backoff for many seconds; if the server answers now, start over
                # with a fresh pool rather than wait.
                if attempt == 1 and may_retry() and await self._reachable():
                    pool = await self._renew_pool(pool)
                    continue
                raise self._error(exc, doing) from None
            except psycopg.OperationalError as exc:
                if attempt == 1 and connection is not None and connection.broken and may_retry():
                    await pool.check()
                    continue
                raise self._error(exc, doing) from None
            except psycopg.Error as exc:
                raise self._error(exc, doing) from None
        raise AssertionError("unreachable")

    async def setup(self) -> None:
        async with self._setup_lock:
            if self._pool is not None:
                return
            try:
                connection = await self._connect()
            except psycopg.Error as exc:
                raise self._error(exc, "connecting") from None
            try:
                async with connection:
                    await self._migrate(connection)
            except psycopg.Error as exc:
                raise self._error(exc, "migrating the schema") from None
            pool = self._new_pool()
            await pool.open()
            self._pool = pool

    def _new_pool(self) -> AsyncConnectionPool[AsyncConnection[Any]]:
        return AsyncConnectionPool(
            self._conninfo,
            kwargs={"autocommit": True, "connect_timeout": self._timeout_arg()},
            min_size=self.min_size,
            max_size=self.max_size,
            open=False,
            timeout=self.timeout,
            name=f"plait-postgres-{self.schema}",
        )

    async def _reachable(self) -> bool:
        try:
            connection = await self._connect()
        except psycopg.Error:
            return False
        await connection.close()
        return True

    async def _renew_pool(
        self, old: AsyncConnectionPool[AsyncConnection[Any]]
    ) -> AsyncConnectionPool[AsyncConnection[Any]]:
        if self._pool is old:
            fresh = self._new_pool()
            await fresh.open()
            self._pool = fresh
            await old.close(timeout=0)
        assert self._pool is not None
        return self._pool

    async def _migrate(self, connection: AsyncConnection[Any]) -> None:
        async with connection.transaction():
            # one migrator per schema at a time, across processes; released at commit
            await connection.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(self.schema),))
            await connection.execute(self._sql("CREATE SCHEMA IF NOT EXISTS {schema}"))
            await connection.execute(
                self._sql(
                    "CREATE TABLE IF NOT EXISTS {schema}.plait_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
                )
            )
            cursor = await connection.execute(
                self._sql("SELECT value FROM {schema}.plait_meta WHERE key = 'schema_version'")
            )
            row = await cursor.fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise StorageError(
                    f"PostgreSQL storage {self._display_url()} (schema {self.schema!r}) has schema version "
                    f"{version}, newer than this plait-postgres understands ({SCHEMA_VERSION}); upgrade it"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[target]:
                    await connection.execute(self._sql(statement))
                await connection.execute(
                    self._sql(
                        "INSERT INTO {schema}.plait_meta (key, value) VALUES ('schema_version', %s) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                    ),
                    (str(target),),
                )

    async def close(self) -> None:
        async with self._setup_lock:
            pool, self._pool = self._pool, None
            if pool is not None:
                await pool.close()

    async def drop(self) -> None:
        """Drop every table this storage created, and its schema when that is left empty (for tests)."""
        try:
            connection = await self._connect()
        except psycopg.Error as exc:
            raise self._error(exc, "connecting") from None
        async with connection:
            try:
                async with connection.transaction():
                    for table in _TABLES:
                        await connection.execute(
                            sql.SQL("DROP TABLE IF EXISTS {}.{}").format(self._q, sql.Identifier(table))
                        )
                if self.schema != "public":
                    await connection.execute(self._sql("DROP SCHEMA IF EXISTS {schema} RESTRICT"))
            except psycopg.errors.DependentObjectsStillExist:
                pass  # the schema holds someone else's objects too: leave it
            except psycopg.Error as exc:
                raise self._error(exc, "dropping the schema") from None

    async def _fetch(self, doing: str, query: sql.Composed, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        async def fetch(connection: AsyncConnection[Any]) -> list[tuple[Any, ...]]:
            cursor = await connection.execute(query, params)
            rows: list[tuple[Any, ...]] = await cursor.fetchall()
            return rows

        return await self._run(doing, fetch)

    async def _execute(self, doing: str, query: sql.Composed, params: tuple[Any, ...]) -> None:
        """One idempotent statement (an upsert), in autocommit."""

        async def execute(connection: AsyncConnection[Any]) -> None:
            await connection.execute(query, params)

        await self._run(doing, execute)

    # -- runs --------------------------------------------------------------------------

    async def save_run(self, run: RunRecord) -> None:
        query = self._sql(
            "INSERT INTO {schema}.plait_runs (run_id, workflow_id, status, created_at, user_id, priority, data) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (run_id) DO UPDATE SET "
            "workflow_id = excluded.workflow_id, status = excluded.status, created_at = excluded.created_at, "
            "user_id = excluded.user_id, priority = excluded.priority, data = excluded.data"
        )
        user_id = None if run.user_id is None else _column(run.user_id)
        params = (
            run.run_id,
            run.workflow_id,
            run.status,
            run.created_at,
            user_id,
            run.priority,
            run.model_dump_json(),
        )
        await self._execute(f"saving run {run.run_id!r}", query, params)

    async def get_run(self, run_id: str) -> RunRecord | None:
        query = self._sql("SELECT data FROM {schema}.plait_runs WHERE run_id = %s")
        rows = await self._fetch(f"loading run {run_id!r}", query, (run_id,))
        return RunRecord.model_validate_json(rows[0][0]) if rows else None

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
        clauses: list[sql.Composable] = []
        params: list[Any] = []
        if status is not None:
            clauses.append(sql.SQL("status = ANY(%s)"))  # runs stored by older versions too
            params.append(list(status_spellings(status)))
        if workflow_id is not None:
            clauses.append(sql.SQL("workflow_id = %s"))
            params.append(workflow_id)
        if user_id is not None:
            clauses.append(sql.SQL("user_id = %s"))
            params.append(_column(user_id))
        if session_id is not None:
            clauses.append(sql.SQL("(data::jsonb ->> 'session_id') = %s"))
            params.append(session_id)
        where = sql.SQL("WHERE ") + sql.SQL(" AND ").join(clauses) if clauses else sql.SQL("")
        query = sql.SQL(
            "SELECT data FROM {}.plait_runs {} ORDER BY created_at DESC LIMIT %s OFFSET %s"
        ).format(self._q, where)
        rows = await self._fetch("listing runs", query, (*params, limit, max(offset, 0)))
        return [RunRecord.model_validate_json(row[0]) for row in rows]

    # -- checkpoints -------------------------------------------------------------------

    async def save_checkpoints(self, checkpoints: list[StepCheckpoint]) -> None:
        if not checkpoints:
            return
        # excluded.seq is a freshly drawn sequence value, so a replaced checkpoint moves to the end
        query = self._sql(
            "INSERT INTO {schema}.plait_checkpoints (run_id, step_id, data) VALUES (%s, %s, %s) "
            "ON CONFLICT (run_id, step_id) DO UPDATE SET seq = excluded.seq, data = excluded.data"
        )
        rows = [(c.run_id, _column(c.step_id), c.model_dump_json()) for c in checkpoints]

        async def save(connection: AsyncConnection[Any]) -> None:
            async with connection.transaction(), connection.cursor() as cursor:
                await cursor.executemany(query, rows)

        # upserts: running the batch twice leaves what running it once does
        await self._run(f"saving checkpoints of run {checkpoints[0].run_id!r}", save)

    async def load_checkpoints(self, run_id: str) -> list[StepCheckpoint]:
        query = self._sql("SELECT data FROM {schema}.plait_checkpoints WHERE run_id = %s ORDER BY seq")
        rows = await self._fetch(f"loading checkpoints of run {run_id!r}", query, (run_id,))
        return [StepCheckpoint.model_validate_json(row[0]) for row in rows]

    # -- sessions, events, cache -------------------------------------------------------

    async def save_session(self, session: SessionRecord) -> None:
        query = self._sql(
            "INSERT INTO {schema}.plait_sessions (session_id, data) VALUES (%s, %s) "
            "ON CONFLICT (session_id) DO UPDATE SET data = excluded.data"
        )
        await self._execute(
            f"saving session {session.session_id!r}",
            query,
            (_column(session.session_id), session.model_dump_json()),
        )

    async def load_session(self, session_id: str) -> SessionRecord | None:
        query = self._sql("SELECT data FROM {schema}.plait_sessions WHERE session_id = %s")
        rows = await self._fetch(f"loading session {session_id!r}", query, (_column(session_id),))
        return SessionRecord.model_validate_json(rows[0][0]) if rows else None

    async def save_session_if(self, session: SessionRecord, expected_version: int) -> bool:
        # Compared in Python, not with data::json: PostgreSQL's json type rejects the \u0000
        # that a record may hold. The row lock (FOR UPDATE) keeps writers out until COMMIT.
        key = _column(session.session_id)
        data = session.model_dump_json()
        select = self._sql("SELECT data FROM {schema}.plait_sessions WHERE session_id = %s FOR UPDATE")
        insert = self._sql(
            "INSERT INTO {schema}.plait_sessions (session_id, data) VALUES (%s, %s) ON CONFLICT DO NOTHING"
        )
        update = self._sql("UPDATE {schema}.plait_sessions SET data = %s WHERE session_id = %s")

        async def save(connection: AsyncConnection[Any]) -> bool:
            async with connection.transaction():
                cursor = await connection.execute(select, (key,))
                row = await cursor.fetchone()
                if row is None:
                    if expected_version != 0:
                        return False
                    cursor = await connection.execute(insert, (key, data))  # unless a racer inserted
                    return cursor.rowcount == 1
                if SessionRecord.model_validate_json(row[0]).version != expected_version:
                    return False
                await connection.execute(update, (data, key))
                return True

        # Not retried on a dead connection: the write may have landed; the caller finds
        # out from the stored record's writer token.
        return await self._run(f"saving session {session.session_id!r}", save, may_retry=lambda: False)

    async def append_events(self, run_id: str, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        query = self._sql("INSERT INTO {schema}.plait_events (run_id, data) VALUES (%s, %s)")
        rows = [(run_id, json.dumps(event)) for event in events]
        committing = False

        async def append(connection: AsyncConnection[Any]) -> None:
            nonlocal committing
            committing = False
            async with connection.transaction():
                async with connection.cursor() as cursor:
                    await cursor.executemany(query, rows)
                committing = True

        # Appending twice would duplicate the events: retry only when the connection died
        # before COMMIT was sent (the server then rolled the batch back), never during it.
        await self._run(f"appending events of run {run_id!r}", append, may_retry=lambda: not committing)

    async def load_events(self, run_id: str, *, after: int = 0) -> list[dict[str, Any]]:
        query = self._sql("SELECT data FROM {schema}.plait_events WHERE run_id = %s ORDER BY seq OFFSET %s")
        rows = await self._fetch(f"loading events of run {run_id!r}", query, (run_id, max(after, 0)))
        return [json.loads(row[0]) for row in rows]

    def reopen(self) -> Callable[[], Storage] | None:
        return functools.partial(
            PostgresStorage,
            self.url,
            schema=self.schema,
            min_size=min(self.min_size, 1),
            max_size=self.max_size,
            connect_timeout=self.connect_timeout,
            timeout=self.timeout,
        )

    async def save_calls(self, calls: list[CallRecord], payloads: dict[str, str]) -> None:
        if not calls and not payloads:
            return
        store = self._sql(
            "INSERT INTO {schema}.plait_payloads (hash, data) VALUES (%s, %s) ON CONFLICT (hash) DO NOTHING"
        )
        append = self._sql("INSERT INTO {schema}.plait_calls (run_id, data) VALUES (%s, %s)")
        payload_rows = list(payloads.items())
        call_rows = [(_column(c.run_id), c.model_dump_json()) for c in calls]
        committing = False

        async def save(connection: AsyncConnection[Any]) -> None:
            nonlocal committing
            committing = False
            async with connection.transaction():
                async with connection.cursor() as cursor:
                    if payload_rows:
                        await cursor.executemany(store, payload_rows)
                    if call_rows:
                        await cursor.executemany(append, call_rows)
                committing = True

        # appending twice would record the calls twice: retry only before COMMIT was sent
        run_id = calls[0].run_id if calls else "?"
        await self._run(f"saving recorded calls of run {run_id!r}", save, may_retry=lambda: not committing)

    async def load_calls(self, run_id: str) -> list[CallRecord]:
        query = self._sql("SELECT data FROM {schema}.plait_calls WHERE run_id = %s ORDER BY seq")
        rows = await self._fetch(f"loading recorded calls of run {run_id!r}", query, (_column(run_id),))
        return [CallRecord.model_validate_json(row[0]) for row in rows]

    async def load_payloads(self, hashes: list[str]) -> dict[str, str]:
        if not hashes:
            return {}
        query = self._sql("SELECT hash, data FROM {schema}.plait_payloads WHERE hash = ANY(%s)")
        rows = await self._fetch("loading recorded payloads", query, (list(hashes),))
        return {row[0]: row[1] for row in rows}

    async def append_history(self, record: HistoryRecord) -> None:
        query = self._sql(
            "INSERT INTO {schema}.plait_history (session_id, agent_id, data) VALUES (%s, %s, %s)"
        )
        params = (_column(record.session_id), _column(record.agent_id), record.model_dump_json())

        async def append(connection: AsyncConnection[Any]) -> None:
            await connection.execute(query, params)

        # appending twice would repeat the turn: not retried on a dead connection
        await self._run(
            f"appending to the history of session {record.session_id!r}", append, may_retry=lambda: False
        )

    async def load_history(
        self, session_id: str, agent_id: str, *, limit: int | None = None
    ) -> list[HistoryRecord]:
        query = self._sql(
            "SELECT data FROM {schema}.plait_history WHERE session_id = %s AND agent_id = %s "
            "ORDER BY seq DESC LIMIT %s"
        )
        params = (_column(session_id), _column(agent_id), None if limit is None else max(limit, 0))
        rows = await self._fetch(f"loading the history of session {session_id!r}", query, params)
        return [HistoryRecord.model_validate_json(row[0]) for row in reversed(rows)]

    async def clear_history(self, session_id: str, agent_id: str) -> None:
        query = self._sql("DELETE FROM {schema}.plait_history WHERE session_id = %s AND agent_id = %s")
        await self._execute(
            f"clearing the history of session {session_id!r}", query, (_column(session_id), _column(agent_id))
        )

    async def get_cache(self, key: str) -> CacheEntry | None:
        query = self._sql("SELECT data FROM {schema}.plait_cache WHERE key = %s")
        rows = await self._fetch(f"loading cache entry {key!r}", query, (key,))
        if not rows:
            return None
        # expiry is judged on this process's clock, the one that wrote expires_at
        entry = CacheEntry.model_validate_json(rows[0][0])
        return None if entry.expired else entry

    async def put_cache(self, entry: CacheEntry) -> None:
        query = self._sql(
            "INSERT INTO {schema}.plait_cache (key, expires_at, data) VALUES (%s, %s, %s) "
            "ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at, data = excluded.data"
        )
        await self._execute(
            f"saving cache entry {entry.key!r}", query, (entry.key, entry.expires_at, entry.model_dump_json())
        )

    # -- retention (plait_postgres._retention) -------------------------------------------

    async def delete_run(self, run_id: str, *, force: bool = False) -> bool:
        # not retried on a dead connection: the COMMIT may have landed (then nothing is left)
        return await self._run(
            f"deleting run {run_id!r}",
            lambda c: _retention.delete_run(c, self._q, run_id, force, _column),
            may_retry=lambda: False,
        )

    async def prune_leases(self) -> int:
        return await self._run(
            "deleting stale leases", lambda c: _retention.prune_leases(c, self._q, _column)
        )

    async def list_sessions(
        self, *, limit: int = 50, offset: int = 0, workflow_id: str | None = None
    ) -> list[SessionRecord]:
        return await self._run(
            "listing sessions", lambda c: _retention.list_sessions(c, self._q, limit, offset, workflow_id)
        )

    async def delete_session(self, session_id: str) -> bool:
        return await self._run(
            f"deleting session {session_id!r}",
            lambda c: _retention.delete_session(c, self._q, _column(session_id)),
            may_retry=lambda: False,
        )

    # -- the work queue (plait.storage.claim_next) ------------------------------------------

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
        caps = {w: cap for w, cap in check_limits(limits).items() if w in ids}
        if not ids:
            return None
        statuses = list(claimable_statuses(queued))
        # SKIP LOCKED: the rows another claimer is looking at are passed over, not waited for,
        # so N workers look at N different batches; the lease row is locked as save_session_if
        # locks it, so a claim and a lease renewal or resume elsewhere never interleave.
        candidates = self._sql(
            "SELECT run_id, workflow_id FROM {schema}.plait_runs WHERE workflow_id = ANY(%s) AND status = ANY(%s) "
            "ORDER BY priority DESC, created_at, run_id LIMIT %s OFFSET %s FOR UPDATE SKIP LOCKED"
        )
        counted = self._sql(
            "SELECT run_id FROM {schema}.plait_runs WHERE workflow_id = %s AND status = ANY(%s)"
        )
        leases = self._sql("SELECT data FROM {schema}.plait_sessions WHERE session_id = ANY(%s)")

        async def room(connection: AsyncConnection[Any]) -> dict[str, int]:
            """Each limited workflow's free places. Its advisory lock, held to COMMIT, makes the
            claimers of one limited workflow count and claim one at a time (SKIP LOCKED alone
            would let two count the same free place)."""
            free = {}
            for workflow_id in sorted(caps):  # one order: two claimers never wait on each other
                await connection.execute(
                    "SELECT pg_advisory_xact_lock(%s)", (_limit_key(self.schema, workflow_id),)
                )
                runs = await (
                    await connection.execute(counted, (workflow_id, list(LIMITED_STATUSES)))
                ).fetchall()
                keys = [_column(LEASE_PREFIX + run_id) for (run_id,) in runs]
                rows = await (await connection.execute(leases, (keys,))).fetchall()
                now = time.time()
                live = sum(lease_live(SessionRecord.model_validate_json(data), now) for (data,) in rows)
                free[workflow_id] = caps[workflow_id] - live
            return free

        select = self._sql("SELECT data FROM {schema}.plait_sessions WHERE session_id = %s FOR UPDATE")
        upsert = self._sql(
            "INSERT INTO {schema}.plait_sessions (session_id, data) VALUES (%s, %s) "
            "ON CONFLICT (session_id) DO UPDATE SET data = excluded.data"
        )

        async def claim(connection: AsyncConnection[Any]) -> str | None:
            async with connection.transaction():
                free = await room(connection) if caps else {}
                offset = 0
                while True:
                    cursor = await connection.execute(candidates, (ids, statuses, _CLAIM_BATCH, offset))
                    rows = await cursor.fetchall()
                    now = time.time()
                    for run_id, workflow_id in rows:
                        if free.get(workflow_id, 1) <= 0:
                            continue  # its workflow has max_concurrent_runs running
                        key = _column(LEASE_PREFIX + run_id)
                        found = await (await connection.execute(select, (key,))).fetchone()
                        held = None if found is None else SessionRecord.model_validate_json(found[0])
                        if lease_live(held, now):
                            continue
                        record = lease_record(run_id, owner, ttl, now, 0 if held is None else held.version)
                        await connection.execute(upsert, (key, record.model_dump_json()))
                        return str(run_id)
                    if len(rows) < _CLAIM_BATCH:
                        return None
                    offset += len(rows)

        # not retried on a dead connection: the claim may have committed
        return await self._run("claiming the next run", claim, may_retry=lambda: False)


_ENCODED = "\x01plait-encoded:"


def _column(text: str) -> str:
    """``text`` as a key column value. PostgreSQL's TEXT cannot hold NUL, which a step name or
    session id may contain (SQLite and Redis store it): such a value is percent-encoded behind a
    marker. The mapping is one-to-one, and every other value is stored as it is; the record's
    JSON, which is what is read back, keeps the original."""
    if "\x00" in text or text.startswith(_ENCODED):
        return _ENCODED + quote(text, safe="")
    return text


def _lock_key(schema: str) -> int:
    """A stable signed 64-bit advisory-lock key for migrating ``schema``."""
    digest = hashlib.blake2b(f"plait-postgres migrate {schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _limit_key(schema: str, workflow_id: str) -> int:
    """The advisory-lock key under which claims count a limited workflow's runs in ``schema``."""
    digest = hashlib.blake2b(f"plait-postgres limit {schema} {workflow_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


# Reported under its public home, as httpx does.
PostgresStorage.__module__ = "plait_postgres"
