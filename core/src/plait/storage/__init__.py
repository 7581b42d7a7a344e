"""Storage: runs, per-step checkpoints, sessions, events and cache entries.

A backend implements :class:`Storage` (async methods; blocking drivers run
their I/O off the event loop). Everything is stored as JSON through pydantic,
never pickled, so a stored row can never execute code. Backends are chosen by
object or URL: ``memory://``, ``sqlite:///runs.db`` (built in), and through
the ``register_storage`` hook ``postgresql://...`` (plait-postgres) and
``redis://...`` (plait-redis).
"""

from __future__ import annotations

from plait._public import report_public_home
from plait.storage._base import (
    CacheEntry,
    RunClaimedError,
    RunLease,
    RunRecord,
    SessionRecord,
    StepCheckpoint,
    Storage,
    StorageError,
    claim_run,
    redact_url,
    resolve_storage,
    scrub_secrets,
    url_secrets,
)
from plait.storage._loop import own_event_loop
from plait.storage._memory import MemoryStorage

__all__ = [
    "CacheEntry",
    "MemoryStorage",
    "RunClaimedError",
    "RunLease",
    "RunRecord",
    "SessionRecord",
    "StepCheckpoint",
    "Storage",
    "StorageError",
    "claim_run",
    "own_event_loop",
    "redact_url",
    "resolve_storage",
    "scrub_secrets",
    "url_secrets",
]

report_public_home(__name__, globals(), __all__)  # plait.storage.Storage, not plait.storage._base.Storage
