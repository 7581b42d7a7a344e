"""Redis storage on redis-py's asyncio client.

Every key starts with ``{prefix}:`` (``plait`` unless told otherwise), so several
deployments can share one Redis database. The layout (schema version 4):

==================================  =========  ==============================================
key                                 type       holds
==================================  =========  ==============================================
``P:meta``                          hash       ``schema_version``
``P:run:{run_id}``                  hash       ``data`` (RunRecord JSON), ``status``, ``workflow_id``,
                                               ``user_id`` (``""`` when none), ``priority``
                                               (version 5; missing: 0)
``P:runs``                          zset       every run id, scored by ``created_at``
``P:runs:status:{status}``          zset       run ids with that status, same scores
``P:runs:workflow:{workflow_id}``   zset       run ids of that workflow, same scores
``P:runs:user:{user_id}``           zset       run ids of that user (version 2), same scores
``P:checkpoints:{run_id}``          hash       step id -> StepCheckpoint JSON
``P:checkpoint-order:{run_id}``     zset       step id scored by a write sequence number
``P:checkpoint-seq``                string     that sequence (INCRBY)
``P:session:{session_id}``          string     SessionRecord JSON
``P:events:{run_id}``               list       event JSON, in append order
``P:cache:{key}``                   string     CacheEntry JSON, with a Redis TTL when it expires
``P:calls:{run_id}``                list       CallRecord JSON (recorded model and tool calls), in order
``P:payload:{hash}``                string     a recorded call's request or response JSON, by SHA-256
``P:history:{n}:{agent}:{sid}``     list       HistoryRecord JSON (version 4), one per agent run
                                               of session ``sid``; ``n``: the agent id's length
``P:ratelimit:{key}``               zset       a shared rate limit's calls, scored by their start
``P:ratelimit-tokens:{key}``        hash       ticket -> tokens of each of those calls
``P:ratelimit-slots:{key}``         zset       tickets holding a ``max_concurrent`` slot, by lease end
==================================  =========  ==============================================

Writes that belong together go in one MULTI/EXEC; a run update first WATCHes the
run's hash so its status index moves atomically even when two writers race.
The client retries a command on a connection error (with backoff) and pings
connections that sat idle, so a storage recovers by itself after Redis restarts
or kills its clients.

The ``ratelimit`` keys count ``RateLimit(shared=True)`` for every process using this Redis
(:meth:`RedisStorage.take_rate_limit`, one Lua script per turn, :mod:`plait_redis._limits`);
they expire by themselves.

Version 2 added ``user_id`` and its index; runs stored under version 1 had no
user, so opening a version-1 prefix only records the new version. Version 3 added
the recorded calls and payloads, version 4 the conversation history: new keys only,
so opening an older prefix again only records the new version. Version 5 added a run's
``priority`` field (read as 0 where missing); :meth:`RedisStorage.claim_next` takes the
next queued or expired run with one Lua script (:mod:`plait_redis._queue`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, RedisError, TimeoutError, WatchError

from plait import RateLimit
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
    lease_record,
    own_event_loop,
    redact_url,
    scrub_secrets,
    status_spellings,
    url_secrets,
)
from plait_redis import _retention
from plait_redis._limits import RETURN_SCRIPT, SLOT_LEASE, TAKE_SCRIPT
from plait_redis._queue import CLAIM_SCRIPT

__all__ = ["RedisStorage"]

_SCHEMES = ("redis", "rediss")
_PAGE = 200  # run ids read per round trip while listing runs
_WATCH_ATTEMPTS = 50
_CLAIM_BATCH = 50  # candidates one claim script looks at  # optimistic retries of one run update racing other writers of that run


@own_event_loop  # its client binds to an event loop: give it one of its own
class RedisStorage(Storage):
    """Storage in a Redis database (``redis://:password@host:6379/0``, ``rediss://`` for TLS).

    ``prefix`` starts every key. At most ``max_connections`` are open at once;
    ``connect_timeout`` bounds each connection attempt, ``timeout`` each command
    and each wait for a free connection; a command that meets a dropped
    connection is retried ``retries`` times with backoff before it fails.

    Example::

        storage = RedisStorage("redis://cache.internal:6379/2", prefix="prod")
        await storage.setup()
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "plait",
        connect_timeout: float = 5.0,
        timeout: float = 30.0,
        retries: int = 3,
        max_connections: int = 50,
    ) -> None:
        scheme, sep, _ = url.partition("://")
        if not sep or scheme not in _SCHEMES:
            raise DefinitionError(
                f"RedisStorage: expected a redis:// or rediss:// URL, got {redact_url(url)!r}"
            )
        if not prefix:
            raise DefinitionError("RedisStorage: prefix must not be empty")
        database = urlsplit(url).path.strip("/")
        if database and not database.isdigit():  # redis-py would silently use database 0
            raise DefinitionError(
                f"RedisStorage: the URL's path must be a database number such as /0, got "
                f"{database!r} in {redact_url(url)!r}"
            )
        self.url = url
        self.prefix = prefix
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.retries = retries
        self.max_connections = max_connections
        self._secrets = url_secrets(url)
        self._client: Redis | None = None
        self._scripts: dict[str, Any] = {}  # registered with the client, by name
        self._setup_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"RedisStorage({self._display_url()!r}, prefix={self.prefix!r})"

    # -- plumbing ----------------------------------------------------------------------

    def _display_url(self) -> str:
        return scrub_secrets(redact_url(self.url), self._secrets)

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def _new_client(self) -> Redis:
        try:
            # a blocking pool waits up to `timeout` for a free connection instead of failing
            pool = BlockingConnectionPool.from_url(
                self.url,
                max_connections=self.max_connections,
                timeout=self.timeout,
                decode_responses=True,
                socket_connect_timeout=self.connect_timeout,
                socket_timeout=self.timeout,
                retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), self.retries),
                retry_on_error=[ConnectionError, TimeoutError],
                # ping a connection that sat idle this long before using it again
                health_check_interval=15,
            )
        except ValueError as exc:
            reason = scrub_secrets(str(exc), self._secrets)
            raise DefinitionError(f"RedisStorage: invalid URL {self._display_url()!r}: {reason}") from None
        return Redis(connection_pool=pool)

    async def _call(self, doing: str, operation: Callable[[Redis], Any]) -> Any:
        """Await ``operation(client)``, turning Redis errors into StorageErrors.

        (Typed ``Any``: redis-py annotates its commands as ``Awaitable[T] | T``.)
        """
        if self._client is None:
            raise StorageError(f"{self!r}: {doing} before setup() (or after close())")
        try:
            return await operation(self._client)
        except RedisError as exc:
            raise self._error(exc, doing) from None

    def _error(self, exc: BaseException, doing: str) -> StorageError:
        message = scrub_secrets(str(exc).strip() or type(exc).__name__, self._secrets)
        return StorageError(
            f"Redis storage {self._display_url()} (prefix {self.prefix!r}): {doing} failed: {message}"
        )

    async def _transaction(self, doing: str, fill: Callable[[Pipeline], None]) -> list[Any]:
        async def run(client: Redis) -> list[Any]:
            async with client.pipeline(transaction=True) as pipe:
                fill(pipe)
                result: list[Any] = await pipe.execute()
                return result

        results: list[Any] = await self._call(doing, run)
        return results

    async def setup(self) -> None:
        async with self._setup_lock:
            if self._client is not None:
                return
            self._client = self._new_client()
            try:
                await self._check_schema()
            except BaseException:
                client, self._client = self._client, None
                await client.aclose(close_connection_pool=True)
                raise

    async def _check_schema(self) -> None:
        await self._call("connecting", lambda c: c.ping())
        meta = self._key("meta")
        # Claiming an empty prefix needs no lock. Version 1 to 2 moves no data (runs stored
        # under 1 had no user_id, so no user index misses them), nor 2 to 3 (new keys only):
        # it only records the version.
        # A later layout that moves data migrates here, under a SET NX lock key.

        def claim(pipe: Pipeline) -> None:
            pipe.hsetnx(meta, "schema_version", str(SCHEMA_VERSION))
            pipe.hget(meta, "schema_version")

        _, version = await self._transaction("checking the schema version", claim)
        if int(version) > SCHEMA_VERSION:
            raise StorageError(
                f"Redis storage {self._display_url()} (prefix {self.prefix!r}) has schema version {version}, "
                f"newer than this plait-redis understands ({SCHEMA_VERSION}); upgrade it"
            )
        if int(version) < SCHEMA_VERSION:
            await self._call(
                f"migrating the schema to version {SCHEMA_VERSION}",
                lambda c: c.hset(meta, "schema_version", str(SCHEMA_VERSION)),
            )

    async def close(self) -> None:
        async with self._setup_lock:
            client, self._client = self._client, None
            self._scripts.clear()
            if client is not None:
                await client.aclose(close_connection_pool=True)

    async def drop(self) -> None:
        """Delete every key under this storage's prefix (for tests; works without setup())."""
        pattern = _glob_escape(self.prefix) + ":*"
        client = self._client or self._new_client()
        try:
            batch: list[str] = []
            async for key in client.scan_iter(match=pattern, count=500):
                batch.append(key)
                if len(batch) >= 500:
                    await client.delete(*batch)
                    batch.clear()
            if batch:
                await client.delete(*batch)
        except RedisError as exc:
            raise self._error(exc, "dropping the keys") from None
        finally:
            if client is not self._client:
                await client.aclose(close_connection_pool=True)

    # -- shared rate limits (plait._limits.SharedRateLimits) ------------------------------

    def _script(self, client: Redis, name: str, text: str) -> Any:
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = client.register_script(text)
        return script

    def _limit_keys(self, key: str) -> list[str]:
        return [
            self._key("ratelimit", key),
            self._key("ratelimit-tokens", key),
            self._key("ratelimit-slots", key),
        ]

    async def take_rate_limit(
        self, key: str, limit: RateLimit, ticket: str, tokens: float, window: float
    ) -> tuple[float, str] | None:
        """One call's turn under a shared :class:`~plait.RateLimit`, for every process using
        this Redis: None when every ``max_concurrent`` slot is taken, else (seconds until the
        start reserved for it, the limit that set it or "")."""

        def option(value: float | None) -> str:
            return "" if value is None else repr(value)

        args = [
            ticket,
            repr(float(tokens)),
            repr(float(window)),
            option(limit.requests_per_minute),
            option(limit.tokens_per_minute),
            option(limit.max_concurrent),
            repr(SLOT_LEASE),
        ]
        result = await self._call(
            f"taking a turn under rate limit {key!r}",
            lambda c: self._script(c, "take", TAKE_SCRIPT)(keys=self._limit_keys(key), args=args),
        )
        if result is None:
            return None
        delay, holding = result
        return float(delay), str(holding)

    async def return_rate_limit(
        self, key: str, limit: RateLimit, ticket: str, tokens: float | None, sent: bool
    ) -> None:
        """A call under a shared limit ended: its slot freed, its tokens corrected (or, when it
        never went, its reservation dropped)."""
        args = [ticket, "" if tokens is None else repr(float(tokens)), "1" if sent else "0"]
        await self._call(
            f"ending a turn under rate limit {key!r}",
            lambda c: self._script(c, "return", RETURN_SCRIPT)(keys=self._limit_keys(key), args=args),
        )

    # -- runs --------------------------------------------------------------------------

    async def save_run(self, run: RunRecord) -> None:
        key = self._key("run", run.run_id)
        data = run.model_dump_json()

        async def save(client: Redis) -> None:
            async with client.pipeline(transaction=True) as pipe:
                for _ in range(_WATCH_ATTEMPTS):
                    try:
                        # WATCH the run so the old index entries read here are still the
                        # ones replaced at EXEC; a concurrent writer makes EXEC fail and we retry
                        await pipe.watch(key)
                        old: list[str | None] = await pipe.hmget(key, ["status", "workflow_id", "user_id"])  # type: ignore[misc,assignment]
                        old_status, old_workflow, old_user = old
                        user = run.user_id or ""
                        pipe.multi()  # type: ignore[no-untyped-call]
                        if old_status is not None and old_status != run.status:
                            pipe.zrem(self._key("runs", "status", old_status), run.run_id)
                        if old_workflow is not None and old_workflow != run.workflow_id:
                            pipe.zrem(self._key("runs", "workflow", old_workflow), run.run_id)
                        if old_user and old_user != user:
                            pipe.zrem(self._key("runs", "user", old_user), run.run_id)
                        pipe.hset(
                            key,
                            mapping={
                                "data": data,
                                "status": run.status,
                                "workflow_id": run.workflow_id,
                                "user_id": user,
                                "priority": str(run.priority),
                            },
                        )
                        score = {run.run_id: run.created_at}
                        pipe.zadd(self._key("runs"), score)
                        pipe.zadd(self._key("runs", "status", run.status), score)
                        pipe.zadd(self._key("runs", "workflow", run.workflow_id), score)
                        if user:
                            pipe.zadd(self._key("runs", "user", user), score)
                        await pipe.execute()
                        return
                    except WatchError:
                        continue
                raise StorageError(
                    f"Redis storage {self._display_url()} (prefix {self.prefix!r}): run {run.run_id!r} kept "
                    f"changing under {_WATCH_ATTEMPTS} attempts to save it"
                )

        await self._call(f"saving run {run.run_id!r}", save)

    async def get_run(self, run_id: str) -> RunRecord | None:
        data = await self._call(f"loading run {run_id!r}", lambda c: c.hget(self._key("run", run_id), "data"))
        return None if data is None else RunRecord.model_validate_json(data)

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
        # Walk the narrowest index newest first and check the other filter on the record.
        # (A run stored by a plait older than Agno's status spelling sits in the index of
        # its lower-case status until it is saved again: get_run finds it, this may not.)
        if status is not None:
            status = status_spellings(status)[0]
        if workflow_id is not None:
            index = self._key("runs", "workflow", workflow_id)
        elif user_id is not None:
            index = self._key("runs", "user", user_id)
        elif status is not None:
            index = self._key("runs", "status", status)
        else:
            index = self._key("runs")

        async def collect(client: Redis) -> list[RunRecord]:
            found: list[RunRecord] = []
            start = 0
            while len(found) < offset + limit:
                ids: list[str] = await client.zrevrange(index, start, start + _PAGE - 1)  # type: ignore[assignment]
                if not ids:
                    break
                start += len(ids)
                async with client.pipeline(transaction=False) as pipe:
                    for run_id in ids:
                        pipe.hget(self._key("run", run_id), "data")
                    rows: list[str | None] = await pipe.execute()
                for data in rows:
                    if data is None:
                        continue  # deleted between the two reads
                    record = RunRecord.model_validate_json(data)
                    if (
                        (status is None or record.status == status)
                        and (workflow_id is None or record.workflow_id == workflow_id)
                        and (user_id is None or record.user_id == user_id)
                        and (session_id is None or record.session_id == session_id)
                    ):
                        found.append(record)
            return found[offset : offset + limit]

        runs: list[RunRecord] = await self._call("listing runs", collect)
        return runs

    # -- checkpoints -------------------------------------------------------------------

    async def save_checkpoints(self, checkpoints: list[StepCheckpoint]) -> None:
        if not checkpoints:
            return
        doing = f"saving checkpoints of run {checkpoints[0].run_id!r}"
        # Draw the sequence numbers first: a replaced checkpoint gets a new, higher one
        # and so moves to the end of its run's order.
        last: int = await self._call(doing, lambda c: c.incrby(self._key("checkpoint-seq"), len(checkpoints)))
        first = last - len(checkpoints) + 1

        def fill(pipe: Pipeline) -> None:
            for seq, checkpoint in enumerate(checkpoints, start=first):
                pipe.hset(
                    self._key("checkpoints", checkpoint.run_id),
                    checkpoint.step_id,
                    checkpoint.model_dump_json(),
                )
                pipe.zadd(self._key("checkpoint-order", checkpoint.run_id), {checkpoint.step_id: seq})

        await self._transaction(doing, fill)

    async def load_checkpoints(self, run_id: str) -> list[StepCheckpoint]:

        def read(pipe: Pipeline) -> None:
            pipe.zrange(self._key("checkpoint-order", run_id), 0, -1)
            pipe.hgetall(self._key("checkpoints", run_id))

        order, data = await self._transaction(f"loading checkpoints of run {run_id!r}", read)
        return [StepCheckpoint.model_validate_json(data[step]) for step in order if step in data]

    # -- sessions, events, cache -------------------------------------------------------

    async def save_session(self, session: SessionRecord) -> None:
        key = self._key("session", session.session_id)
        await self._call(
            f"saving session {session.session_id!r}", lambda c: c.set(key, session.model_dump_json())
        )

    async def load_session(self, session_id: str) -> SessionRecord | None:
        data = await self._call(
            f"loading session {session_id!r}", lambda c: c.get(self._key("session", session_id))
        )
        return None if data is None else SessionRecord.model_validate_json(data)

    async def save_session_if(self, session: SessionRecord, expected_version: int) -> bool:
        key = self._key("session", session.session_id)
        data = session.model_dump_json()

        async def save(client: Redis) -> bool:
            async with client.pipeline(transaction=True) as pipe:
                await pipe.watch(key)  # EXEC fails if another writer touched the key since
                raw = await pipe.get(key)
                stored = 0 if raw is None else SessionRecord.model_validate_json(raw).version
                if stored != expected_version:
                    await pipe.unwatch()  # type: ignore[no-untyped-call]
                    return False
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.set(key, data)
                try:
                    await pipe.execute()
                except WatchError:
                    return False
                return True

        saved: bool = await self._call(f"saving session {session.session_id!r}", save)
        return saved

    async def append_events(self, run_id: str, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        rows = [json.dumps(event) for event in events]
        # one RPUSH of many values is atomic: a batch is never interleaved with another
        await self._call(
            f"appending events of run {run_id!r}", lambda c: c.rpush(self._key("events", run_id), *rows)
        )

    async def load_events(self, run_id: str, *, after: int = 0) -> list[dict[str, Any]]:
        start = max(after, 0)
        rows = await self._call(
            f"loading events of run {run_id!r}", lambda c: c.lrange(self._key("events", run_id), start, -1)
        )
        return [json.loads(row) for row in rows]

    def reopen(self) -> Callable[[], Storage] | None:
        return functools.partial(
            RedisStorage,
            self.url,
            prefix=self.prefix,
            connect_timeout=self.connect_timeout,
            timeout=self.timeout,
            retries=self.retries,
            max_connections=self.max_connections,
        )

    async def save_calls(self, calls: list[CallRecord], payloads: dict[str, str]) -> None:
        if not calls and not payloads:
            return
        by_run: dict[str, list[str]] = {}
        for call in calls:
            by_run.setdefault(call.run_id, []).append(call.model_dump_json())

        def fill(pipe: Pipeline) -> None:
            for digest, text in payloads.items():
                # Set again even when stored (the same text: its key is its hash): the write is
                # what tells a delete_run WATCHing the payload that a run now uses it too
                pipe.set(self._key("payload", digest), text)
            for run_id, rows in by_run.items():
                pipe.rpush(self._key("calls", run_id), *rows)

        await self._transaction(f"saving recorded calls of run(s) {', '.join(map(repr, by_run))}", fill)

    async def load_calls(self, run_id: str) -> list[CallRecord]:
        rows = await self._call(
            f"loading recorded calls of run {run_id!r}", lambda c: c.lrange(self._key("calls", run_id), 0, -1)
        )
        return [CallRecord.model_validate_json(row) for row in rows]

    async def load_payloads(self, hashes: list[str]) -> dict[str, str]:
        if not hashes:
            return {}
        keys = [self._key("payload", h) for h in hashes]
        values = await self._call("loading recorded payloads", lambda c: c.mget(keys))
        return {h: v for h, v in zip(hashes, values, strict=True) if v is not None}

    def _history_key(self, session_id: str, agent_id: str) -> str:
        return self._key("history", str(len(agent_id)), agent_id, session_id)

    async def append_history(self, record: HistoryRecord) -> None:
        key = self._history_key(record.session_id, record.agent_id)
        data = record.model_dump_json()
        # RPUSH is atomic: two processes appending to one conversation both land
        await self._call(
            f"appending to the history of session {record.session_id!r}", lambda c: c.rpush(key, data)
        )

    async def load_history(
        self, session_id: str, agent_id: str, *, limit: int | None = None
    ) -> list[HistoryRecord]:
        if limit is not None and limit <= 0:
            return []
        key = self._history_key(session_id, agent_id)
        start = 0 if limit is None else -limit
        rows = await self._call(
            f"loading the history of session {session_id!r}", lambda c: c.lrange(key, start, -1)
        )
        return [HistoryRecord.model_validate_json(row) for row in rows]

    async def clear_history(self, session_id: str, agent_id: str) -> None:
        key = self._history_key(session_id, agent_id)
        await self._call(f"clearing the history of session {session_id!r}", lambda c: c.delete(key))

    async def get_cache(self, key: str) -> CacheEntry | None:
        data = await self._call(f"loading cache entry {key!r}", lambda c: c.get(self._key("cache", key)))
        if data is None:
            return None
        # Redis expires the key on its own clock; check ours too, the one that wrote expires_at
        entry = CacheEntry.model_validate_json(data)
        return None if entry.expired else entry

    async def put_cache(self, entry: CacheEntry) -> None:
        key = self._key("cache", entry.key)
        doing = f"saving cache entry {entry.key!r}"
        if entry.expires_at is None:
            await self._call(doing, lambda c: c.set(key, entry.model_dump_json()))
            return
        ttl_ms = int((entry.expires_at - time.time()) * 1000)
        if ttl_ms <= 0:
            await self._call(doing, lambda c: c.delete(key))  # already expired: replaces any live entry
        else:
            await self._call(doing, lambda c: c.set(key, entry.model_dump_json(), px=ttl_ms))

    # -- retention (plait_redis._retention) ------------------------------------------------

    async def delete_run(self, run_id: str, *, force: bool = False) -> bool:
        deleted: bool = await self._call(
            f"deleting run {run_id!r}",
            lambda c: _retention.delete_run(c, self._key, _glob_escape, run_id, force),
        )
        return deleted

    async def prune_leases(self) -> int:
        deleted: int = await self._call(
            "deleting stale leases", lambda c: _retention.prune_leases(c, self._key, _glob_escape)
        )
        return deleted

    async def list_sessions(
        self, *, limit: int = 50, offset: int = 0, workflow_id: str | None = None
    ) -> list[SessionRecord]:
        found: list[SessionRecord] = await self._call(
            "listing sessions",
            lambda c: _retention.list_sessions(c, self._key, _glob_escape, limit, offset, workflow_id),
        )
        return found

    async def delete_session(self, session_id: str) -> bool:
        deleted: bool = await self._call(
            f"deleting session {session_id!r}",
            lambda c: _retention.delete_session(c, self._key, _glob_escape, session_id),
        )
        return deleted

    # -- the work queue (plait.storage.claim_next) -------------------------------------

    async def claim_next(
        self,
        workflow_ids: Sequence[str],
        owner: dict[str, Any],
        ttl: float,
        *,
        queued: bool = True,
        limits: Mapping[str, int] | None = None,
    ) -> str | None:
        ids = set(check_claim(workflow_ids, owner, ttl))
        caps = {w: cap for w, cap in check_limits(limits).items() if w in ids}
        config = json.dumps(
            {"limits": caps, "indexes": [self._key("runs", "status", s) for s in LIMITED_STATUSES]}
        )
        if not ids:
            return None
        statuses = claimable_statuses(queued)

        async def candidates(client: Redis) -> list[str]:
            # the status indexes hold only the runs now queued or running; their order is read
            # here, and the script checks each one's status and lease again, atomically
            found: list[tuple[int, float, str]] = []
            for status in statuses:
                scored: list[tuple[str, float]] = await client.zrange(  # type: ignore[assignment]
                    self._key("runs", "status", status), 0, -1, withscores=True
                )
                async with client.pipeline(transaction=False) as pipe:
                    for run_id, _ in scored:
                        pipe.hmget(self._key("run", run_id), ["workflow_id", "priority"])
                    fields: list[list[str | None]] = await pipe.execute()
                for (run_id, created), (workflow_id, priority) in zip(scored, fields, strict=True):
                    if workflow_id in ids:
                        found.append((-int(priority or 0), created, run_id))
            return [run_id for _, _, run_id in sorted(found)]

        ordered: list[str] = await self._call("listing the runs to claim", candidates)
        for start in range(0, len(ordered), _CLAIM_BATCH):
            batch = ordered[start : start + _CLAIM_BATCH]
            now = time.time()
            keys = [self._key("session", LEASE_PREFIX + run_id) for run_id in batch]
            keys += [self._key("run", run_id) for run_id in batch]
            args = [repr(now), " ".join(statuses), config]
            args += [self._key("session", LEASE_PREFIX), self._key("run", "")]
            for run_id in batch:  # each one's lease record, cut around its version (1 here)
                head, _, tail = (
                    lease_record(run_id, owner, ttl, now, 0).model_dump_json().rpartition('"version":1')
                )
                args += [head + '"version":', tail]

            def claim(client: Redis, keys: list[str] = keys, args: list[str] = args) -> Any:
                return self._script(client, "claim", CLAIM_SCRIPT)(keys=keys, args=args)

            index = await self._call("claiming the next run", claim)
            if index:
                return batch[int(index) - 1]
        return None


def _glob_escape(text: str) -> str:
    """``text`` as a literal inside a Redis MATCH pattern."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


# Reported under its public home, as httpx does.
RedisStorage.__module__ = "plait_redis"
