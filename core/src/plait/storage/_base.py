"""The storage protocol and its records."""

from __future__ import annotations

import asyncio
import math
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from plait._io import normalize_status
from plait._secrets import scrub_secrets
from plait.errors import DefinitionError
from plait.storage._claims import LEASE_PREFIX, abandon, holder_died
from plait.storage._errors import RunClaimedError, StorageError
from plait.storage._retention import prune_runs

#: where a run's lease record lives (plait.storage._claims)
_LEASE_PREFIX = LEASE_PREFIX

__all__ = [
    "SCHEMA_VERSION",
    "CacheEntry",
    "CallRecord",
    "HistoryRecord",
    "RunClaimedError",
    "RunLease",
    "RunRecord",
    "SessionRecord",
    "StepCheckpoint",
    "Storage",
    "StorageError",
    "claim_run",
    "lease_record",
    "redact_url",
    "resolve_storage",
    "scrub_secrets",
    "url_secrets",
]

#: 5: runs have a ``priority`` (a column / field the work queue orders by, :meth:`Storage.claim_next`);
#: 4: agents' conversation history (:class:`HistoryRecord`), in a table / keys of its own;
#: 3: recorded model and tool calls (:class:`CallRecord`) and their content-addressed payloads;
#: 2: runs have a ``user_id`` (a column / index a backend filters on); 1: the first layout
SCHEMA_VERSION = 5


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", ser_json_inf_nan="constants", defer_build=True)


class RunRecord(_Record):
    """One workflow run. ``pause`` says what a paused run waits for; ``target`` is
    ``module:name`` of the workflow when known, so a CLI can resume it."""

    run_id: str
    workflow_id: str
    workflow_name: str
    session_id: str
    status: str
    parent_run_id: str | None = None
    #: who the run was for (``run(..., user_id=...)``); ``list_runs(user_id=...)`` filters on it
    user_id: str | None = None
    #: the run's ``metadata=`` (the workflow's and the run's, merged), as JSON
    metadata: dict[str, Any] | None = None
    #: where the run comes from when it is not a plain run: ``{"replay_of": run_id}``,
    #: ``{"forked_from": run_id, "fork_step": step_id}``
    lineage: dict[str, str] | None = None
    input: Any = None
    #: the run's ``images=``, ``audio=``, ``videos=``, ``files=`` (parts in the codec's tagged
    #: form, their bytes stored once by digest, plait._blobs); None: the run was given none
    media: dict[str, Any] | None = None
    content: Any = None
    error: str | None = None
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)
    metrics: dict[str, Any] = Field(default_factory=dict)
    target: str | None = None
    pause: dict[str, Any] | None = None
    #: the session state this run's changes are relative to: what it started from, or
    #: what it last committed (at a pause); a resumed run merges its changes against it
    session_base: dict[str, Any] | None = None
    #: the workflow's definition when the run started or last resumed (plait._definition):
    #: what a resume checks the code against (None: stored by an older plait, not checked)
    definition: dict[str, Any] | None = None
    #: seconds the workflow's ``retention=`` keeps a finished run: what ``prune()`` without
    #: ``older_than`` (``plait runs prune``) applies to it (None: kept until pruned by age)
    retention: float | None = None
    #: which queued run a worker takes first: the highest (``start(..., queue=True, priority=)``)
    priority: int = 0

    @field_validator("status")
    @classmethod
    def _current_spelling(cls, status: str) -> str:
        # a run stored by an older plait spelled its status in lower case ("completed")
        return normalize_status(status)


def status_spellings(status: str) -> tuple[str, ...]:
    """Every spelling a backend may hold for ``status``: today's (``"COMPLETED"``) and
    the lower case older versions stored (``"completed"``), for ``list_runs`` filters."""
    current = normalize_status(status)
    return (current, current.lower()) if current != current.lower() else (current,)


class StepCheckpoint(_Record):
    """A completed step: its output (a StepOutput as JSON) and the session state after it."""

    run_id: str
    step_id: str
    output: dict[str, Any]
    state: dict[str, Any] = Field(default_factory=dict)
    created_at: float = Field(default_factory=time.time)


class SessionRecord(_Record):
    """A session's state. ``version`` counts its writes (0: never written), so concurrent
    runs of one session can save with :meth:`Storage.save_session_if` and merge instead of
    overwriting each other; ``writer`` is the token of the write that produced it."""

    session_id: str
    workflow_id: str
    state: dict[str, Any] = Field(default_factory=dict)
    updated_at: float = Field(default_factory=time.time)
    version: int = 0
    writer: str | None = None


class CacheEntry(_Record):
    """A cached step output (StepOutput as JSON) and the session-state changes the step made
    (replayed on a hit); ``expires_at`` None means never."""

    key: str
    output: dict[str, Any]
    state_delta: dict[str, Any] = Field(default_factory=dict)
    #: the conversation turn an agent or team step's run added to its session's history (its
    #: messages as stored, plait._history): a hit adds it to the session it is reused in
    history: list[Any] | None = None
    created_at: float = Field(default_factory=time.time)
    expires_at: float | None = None

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= time.time()


class CallRecord(_Record):
    """One model or tool call a run made (plait._record), in the order the calls completed.

    ``step_id`` is where it was made (``""``: an agent run outside a workflow), ``attempt``
    which execution of that step made it: 1 for the step's first; a step executed again when the
    run is resumed (it crashed or failed inside) records one more than the highest attempt
    recorded for it, a step first executed after a resume records 1 (retries within one
    execution are the step's ``metrics.attempts``, not counted here), ``index`` its place among
    the step's calls of that ``kind`` (``"model"`` or ``"tool"``), ``name`` the model
    (``provider:model``) or tool. ``request`` and ``response`` are the SHA-256 hashes of the
    payloads (canonical JSON, secrets scrubbed) stored by :meth:`Storage.save_calls`;
    ``fingerprint`` is the key a replay matches on: the request's hash, for a model request with
    its provider-assigned tool-call ids replaced by their order of appearance.
    ``inline``: by hash, the payloads short enough to be kept in the record instead (no stored
    payload has their hash).
    """

    run_id: str
    step_id: str
    attempt: int = 1
    index: int = 0
    kind: str
    name: str = ""
    fingerprint: str
    request: str
    response: str
    created_at: float = Field(default_factory=time.time)
    inline: dict[str, str] = Field(default_factory=dict)


class HistoryRecord(_Record):
    """One agent run of a conversation (plait._history): the messages it added to session
    ``session_id`` of agent ``agent_id`` (the user's, the assistant's and tool results, in the
    codec's tagged JSON), appended once when the run ends (schema version 4)."""

    session_id: str
    agent_id: str
    run_id: str
    messages: list[Any] = Field(default_factory=list)
    created_at: float = Field(default_factory=time.time)
    #: the workflow run and step the agent run was part of (``run_id/step_id``), if any
    origin: str | None = None


def lease_record(run_id: str, owner: dict[str, Any], ttl: float, now: float, version: int) -> SessionRecord:
    """The lease record a claim writes: ``owner``'s for ``ttl`` seconds, the stored ``version`` + 1."""
    state = {**owner, "since": now, "expires_at": now + ttl}
    return SessionRecord(session_id=_LEASE_PREFIX + run_id, workflow_id="", state=state, version=version + 1)


class Storage:
    """Base class of storage backends; every method is async and safe to call concurrently.

    ``setup()`` creates or migrates the schema and is idempotent; the engine calls
    it before first use. Saving a checkpoint for a ``(run_id, step_id)`` that
    exists replaces it.
    """

    url: str = ""

    async def setup(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        """Release connections."""

    def reopen(self) -> Callable[[], Storage] | None:
        """A picklable factory that opens this same storage in another process (a Ray worker
        writes the calls of the branch it runs through it), or None when no other process
        reaches it (memory). Default: None. A backend returns, say,
        ``functools.partial(MyStorage, self.url, schema=self.schema)``."""
        return None

    # runs
    async def save_run(self, run: RunRecord) -> None:
        raise NotImplementedError

    async def get_run(self, run_id: str) -> RunRecord | None:
        raise NotImplementedError

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
        """Newest first; each filter given narrows the list (``user_id`` since schema version 2);
        ``offset`` skips that many of the matching runs first (paging)."""
        raise NotImplementedError

    # checkpoints
    async def save_checkpoints(self, checkpoints: list[StepCheckpoint]) -> None:
        raise NotImplementedError

    async def load_checkpoints(self, run_id: str) -> list[StepCheckpoint]:
        """Every checkpoint of a run, oldest first."""
        raise NotImplementedError

    # sessions
    async def save_session(self, session: SessionRecord) -> None:
        raise NotImplementedError

    async def load_session(self, session_id: str) -> SessionRecord | None:
        raise NotImplementedError

    async def save_session_if(self, session: SessionRecord, expected_version: int) -> bool:
        """Save ``session`` only if the stored session's version is ``expected_version``
        (0 when none is stored), atomically; False when another writer came first.

        The caller sets ``session.version`` to ``expected_version + 1``. Every built-in
        backend does this in one atomic operation; this default, for third-party backends
        that predate it, compares and then saves, which two writers can interleave.
        """
        current = await self.load_session(session.session_id)
        if (current.version if current else 0) != expected_version:
            return False
        await self.save_session(session)
        return True

    # leases: who executes a run. Built on the sessions' compare-and-set, under a session id
    # no caller uses (it starts with NUL); a backend may override them with native ones.
    async def claim_lease(
        self, run_id: str, owner: dict[str, Any], ttl: float, *, take_over: str | None = None
    ) -> dict[str, Any] | None:
        """Take or renew ``run_id``'s lease for ``owner`` (``{"owner": id, "host", "pid"}``) for
        ``ttl`` seconds: None when taken, else the live lease someone else holds. A lease held
        by ``take_over`` (an owner id known to be dead) is taken as if it had expired."""
        key = _LEASE_PREFIX + run_id
        for _ in range(_LEASE_ATTEMPTS):
            record = await self.load_session(key)
            held = None if record is None else record.state
            now = time.time()
            mine = held is not None and held.get("owner") == owner["owner"]
            live = held is not None and held.get("expires_at", 0) > now and held.get("owner") != take_over
            if held is not None and not mine and live:
                return held
            state = {**owner, "since": held["since"] if mine and held else now, "expires_at": now + ttl}
            version = 1 if record is None else record.version + 1
            if await self.save_session_if(
                SessionRecord(session_id=key, workflow_id="", state=state, version=version), version - 1
            ):
                return None
        raise StorageError(
            f"{self!r}: the lease of run {run_id!r} kept changing under {_LEASE_ATTEMPTS} attempts"
        )

    async def release_lease(self, run_id: str, owner_id: str) -> None:
        """End ``owner_id``'s lease of ``run_id`` (nothing when someone else holds it)."""
        key = _LEASE_PREFIX + run_id
        for _ in range(_LEASE_ATTEMPTS):
            record = await self.load_session(key)
            if record is None or record.state.get("owner") != owner_id:
                return
            state = {**record.state, "expires_at": 0.0}
            if await self.save_session_if(
                record.model_copy(update={"state": state, "version": record.version + 1}), record.version
            ):
                return

    # events
    async def append_events(self, run_id: str, events: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    async def load_events(self, run_id: str, *, after: int = 0) -> list[dict[str, Any]]:
        """A run's stored events in the order they were appended; ``after=N`` leaves out the
        first N. An event's sequence number is its place in that order, counting from 1, so
        ``after`` is the sequence of the last event a reader has (SSE's ``Last-Event-ID``)."""
        raise NotImplementedError

    # recorded calls (schema version 3): what replay and resuming inside a step answer from
    async def save_calls(self, calls: list[CallRecord], payloads: dict[str, str]) -> None:
        """Append ``calls`` to their runs' records and store ``payloads`` (JSON text by its
        SHA-256 hash; a session-state value stored once for its run by ``state:<run id>:<hash>``,
        :mod:`plait.storage._shared`), each key once: a payload already stored is kept as it is.

        A backend that does not override this (and :meth:`load_calls`, :meth:`load_payloads`)
        records nothing: runs on it work as before, without replay or resume inside a step."""
        raise NotImplementedError

    async def load_calls(self, run_id: str) -> list[CallRecord]:
        """A run's recorded calls in the order they were saved."""
        return []

    async def load_payloads(self, hashes: list[str]) -> dict[str, str]:
        """The stored payloads among ``hashes``, by hash (a missing one is left out)."""
        return {}

    # conversation history (schema version 4): what Agent(history=...) sends again
    async def append_history(self, record: HistoryRecord) -> None:
        """Append one run's messages to its conversation: an atomic append, never a
        read-modify-write, so two processes adding to one session both land."""
        raise StorageError(f"{self!r} does not store conversation history (it predates schema version 4)")

    async def load_history(
        self, session_id: str, agent_id: str, *, limit: int | None = None
    ) -> list[HistoryRecord]:
        """The conversation's runs, oldest first: the last ``limit`` of them (None: all)."""
        return []

    async def clear_history(self, session_id: str, agent_id: str) -> None:
        """Forget the conversation of ``agent_id`` in ``session_id``."""
        raise StorageError(f"{self!r} does not store conversation history (it predates schema version 4)")

    # cache
    async def get_cache(self, key: str) -> CacheEntry | None:
        """The entry, or None when missing or expired."""
        raise NotImplementedError

    async def put_cache(self, entry: CacheEntry) -> None:
        raise NotImplementedError

    # -- the work queue (plait.storage._claims): what workers claim -------------------------

    async def claim_next(
        self,
        workflow_ids: Sequence[str],
        owner: dict[str, Any],
        ttl: float,
        *,
        queued: bool = True,
        limits: Mapping[str, int] | None = None,
    ) -> str | None:
        """Claim the next run of ``workflow_ids`` a worker should execute and return its id
        (None when there is none): a QUEUED run, or a RUNNING one whose lease expired (its
        process died), highest ``priority`` first, then oldest; its lease is taken for ``owner``
        for ``ttl`` seconds in the same atomic step, so two workers never claim one run.
        ``queued=False`` claims only runs to recover (RUNNING with an expired lease).
        ``limits`` (workflow id -> N) passes over the runs of a workflow that has N runs under a
        live lease already, counted in the same atomic step (``Workflow(max_concurrent_runs=)``).

        The built-in backends do it in one transaction; this default, for third-party backends,
        lists the candidates and takes each one's lease by compare-and-set."""
        from plait.storage._claims import check_claim, check_limits, next_by_listing

        ids = check_claim(workflow_ids, owner, ttl)
        caps = check_limits(limits)
        return await next_by_listing(self, ids, owner, ttl, queued, caps) if ids else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({redact_url(self.url)!r})"

    # retention (plait.storage._retention says what a deleted run takes with it)
    async def delete_run(self, run_id: str, *, force: bool = False) -> bool:
        """Delete run ``run_id`` and everything that belongs to it, atomically: False when there
        was no such run. Refuses (:class:`RunClaimedError`) a run a live process holds the
        lease of, unless ``force``."""
        raise StorageError(f"{self!r} cannot delete runs (it predates retention)")

    async def prune(
        self,
        older_than: timedelta | float | str | None = None,
        *,
        status: str | None = None,
        workflow_id: str | None = None,
    ) -> int:
        """Delete the runs last updated more than ``older_than`` ago (``timedelta``, seconds,
        ``"30d"``; None: each run's own workflow ``retention=``, runs without one are kept) with
        ``status`` (default: the finished ones: completed, with errors, failed, cancelled), of
        ``workflow_id`` if given; returns how many were deleted. Runs under a live lease stay.
        Done with :func:`plait.storage.prune_runs` over the backend's ``delete_run``."""
        if type(self).delete_run is Storage.delete_run:
            raise StorageError(f"{self!r} cannot prune runs (it predates retention)")
        return await prune_runs(self, older_than, status=status, workflow_id=workflow_id)

    async def prune_leases(self) -> int:
        """Delete the lease and cancel-request rows of runs no live process holds (``prune``
        does, after the runs), atomically against a claim; returns how many went. A backend
        without it keeps them (they are small)."""
        return 0

    async def list_sessions(
        self, *, limit: int = 50, offset: int = 0, workflow_id: str | None = None
    ) -> list[SessionRecord]:
        """Stored sessions, most recently updated first (``workflow_id``: only that workflow's).
        A session that only has conversation history (agents run outside a workflow) is listed
        too, with ``version`` 0, no state and the time of its last turn."""
        raise StorageError(f"{self!r} cannot list sessions (it predates retention)")

    async def delete_session(self, session_id: str) -> bool:
        """Delete a session's state and its conversation history (every agent's), atomically:
        False when there was neither. Its runs stay (``delete_run``, ``prune``)."""
        raise StorageError(f"{self!r} cannot delete sessions (it predates retention)")


_LEASE_ATTEMPTS = 100


class RunLease:
    """A held run lease, renewed in the background every third of its ``ttl`` until released."""

    def __init__(self, storage: Storage, run_id: str, owner: dict[str, Any], ttl: float) -> None:
        self.storage, self.run_id, self.owner, self.ttl = storage, run_id, owner, ttl
        self._beat = asyncio.get_running_loop().create_task(self._renew())

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                await self.storage.claim_lease(self.run_id, self.owner, self.ttl)
            except StorageError:
                continue  # an outage: try again at the next beat, the lease lasts ttl

    async def release(self) -> None:
        self._beat.cancel()
        await asyncio.gather(self._beat, return_exceptions=True)
        try:
            await self.storage.release_lease(self.run_id, self.owner["owner"])
        except BaseException:
            # nothing renews it now: a claim in this process takes it over at once (elsewhere
            # it waits until the lease expires, as for a process that died)
            abandon(self.owner["owner"])
            raise


async def claim_run(storage: Storage, run_id: str, *, ttl: float, wait: float | bool = False) -> RunLease:
    """Claim ``run_id`` for this process, waiting up to ``wait`` seconds (True: until the
    holder ends or its lease expires) or raising :class:`RunClaimedError` naming the holder."""
    owner = {"owner": uuid.uuid4().hex, "host": socket.gethostname(), "pid": os.getpid()}
    limit = math.inf if wait is True else float(wait)
    deadline = time.monotonic() + limit
    while True:
        held = await storage.claim_lease(run_id, owner, ttl)
        if held is not None and holder_died(held):  # its process died on this host: no need to wait
            held = await storage.claim_lease(run_id, owner, ttl, take_over=held.get("owner"))
        if held is None:
            return RunLease(storage, run_id, owner, ttl)
        left = deadline - time.monotonic()
        if left <= 0:
            since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(held.get("since", 0)))
            raise RunClaimedError(
                f"run {run_id!r} is being executed by host {held.get('host')!r} pid {held.get('pid')} "
                f"since {since} (its lease runs {held.get('expires_at', 0) - time.time():.0f}s more unless "
                "renewed); wait for it with continue_run(..., wait=True) or `plait runs resume --wait`"
            )
        await asyncio.sleep(min(left, ttl / 3, 0.5))


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (for logs, events, spans and errors)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    netloc = parts.netloc
    if parts.password is not None:
        # keep the host part exactly as written (an IPv6 host keeps its brackets)
        netloc = f"{parts.username or ''}:***@{netloc.rpartition('@')[2]}"
    query = "&".join(
        f"{key}=***" if key.lower() in _SECRET_PARAMETERS else f"{key}={value}" if sep else key
        for key, sep, value in (item.partition("=") for item in parts.query.split("&") if item)
    )
    if netloc == parts.netloc and query == parts.query:
        return url  # nothing secret (and urlunsplit would drop sqlite:///'s empty host)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def url_secrets(url: str) -> list[str]:
    """The credentials in a URL (password, secret query parameters), raw and percent-decoded,
    longest first: what :func:`scrub_secrets` removes from a driver's error messages."""
    try:
        parts = urlsplit(url)
        found = [parts.password or ""]
        found += [
            value
            for key, values in parse_qs(parts.query).items()
            if key.lower() in _SECRET_PARAMETERS
            for value in values
        ]
    except ValueError:
        return []
    return sorted({s for p in found if p for s in (p, unquote(p))}, key=len, reverse=True)


#: query parameters that carry credentials (libpq's ``password``, tokens of other drivers)
_SECRET_PARAMETERS = {"password", "pass", "passwd", "secret", "token", "access_token", "api_key", "apikey"}


def resolve_storage(spec: Storage | str | None) -> Storage | None:
    """A backend from an object or a URL (``sqlite:///runs.db``, ``postgresql://...``)."""
    if spec is None or isinstance(spec, Storage):
        return spec
    if not isinstance(spec, str) or "://" not in spec:
        # without '//' nothing marks where a password ends ('postgres:PW@host'): show the scheme only
        shown = f"{str(spec).partition(':')[0]}:***" if ":" in str(spec) else str(spec)
        raise DefinitionError(
            f"storage must be a Storage object or a URL such as 'sqlite:///runs.db', got {shown!r}"
        )
    from plait._lookup import registry

    scheme = spec.split("://", 1)[0].split("+", 1)[0]
    factory = registry().get("storage", scheme)
    storage: Storage = factory(spec)
    return storage
