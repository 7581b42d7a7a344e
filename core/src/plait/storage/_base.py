"""The storage protocol and its records."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field

from plait.errors import DefinitionError, PlaitError

__all__ = [
    "CacheEntry",
    "RunRecord",
    "SessionRecord",
    "StepCheckpoint",
    "Storage",
    "StorageError",
    "redact_url",
    "resolve_storage",
    "scrub_secrets",
    "url_secrets",
]

SCHEMA_VERSION = 1


class StorageError(PlaitError):
    """A storage backend failed (unreachable, corrupt, or the value cannot be stored)."""


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", ser_json_inf_nan="constants")


class RunRecord(_Record):
    """One workflow run. ``pause`` says what a paused run waits for; ``target`` is
    ``module:name`` of the workflow when known, so a CLI can resume it."""

    run_id: str
    workflow_id: str
    workflow_name: str
    session_id: str
    status: str
    parent_run_id: str | None = None
    input: Any = None
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
    created_at: float = Field(default_factory=time.time)
    expires_at: float | None = None

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= time.time()


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

    # runs
    async def save_run(self, run: RunRecord) -> None:
        raise NotImplementedError

    async def get_run(self, run_id: str) -> RunRecord | None:
        raise NotImplementedError

    async def list_runs(
        self, *, limit: int = 50, status: str | None = None, workflow_id: str | None = None
    ) -> list[RunRecord]:
        """Newest first."""
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

    # events
    async def append_events(self, run_id: str, events: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    async def load_events(self, run_id: str) -> list[dict[str, Any]]:
        """A run's stored events in the order they were appended."""
        raise NotImplementedError

    # cache
    async def get_cache(self, key: str) -> CacheEntry | None:
        """The entry, or None when missing or expired."""
        raise NotImplementedError

    async def put_cache(self, entry: CacheEntry) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({redact_url(self.url)!r})"


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


def scrub_secrets(text: str, secrets: list[str]) -> str:
    """``text`` with each of ``secrets`` (from :func:`url_secrets`) replaced by ``***``."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


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
    from plait.plugins import get_registry

    scheme = spec.split("://", 1)[0].split("+", 1)[0]
    factory = get_registry().get("storage", scheme)
    storage: Storage = factory(spec)
    return storage
