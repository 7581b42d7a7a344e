"""Storage: runs, per-step checkpoints, sessions, events and cache entries.

A backend implements :class:`Storage` (async methods; blocking drivers run
their I/O off the event loop). Everything is stored as JSON through pydantic,
never pickled, so a stored row can never execute code. Backends are chosen by
object or URL: ``memory://``, ``sqlite:///runs.db`` (built in), and through
the ``register_storage`` hook ``postgresql://...`` (plait-postgres) and
``redis://...`` (plait-redis).

A storage plugin imports what it needs from here: :class:`Storage` (the base
class to subclass), the records it stores (:class:`RunRecord`,
:class:`StepCheckpoint`, :class:`SessionRecord`, :class:`CacheEntry`, :class:`CallRecord`, :class:`HistoryRecord`),
:class:`StorageError` and :class:`RunClaimedError`, :func:`status_spellings` (a
``list_runs`` status filter that also matches runs stored by older versions), what deleting a run
takes with it (:func:`internal_keys`, :func:`history_origin`, :func:`check_not_leased`, and
:func:`shared_keys`: the session-state values its checkpoints stored once), :func:`prune_runs`
(``prune`` over a backend's ``delete_run``), :func:`stale_rows` (what ``prune_leases`` deletes), and :data:`SCHEMA_VERSION`
(the version of the stored layout: a backend migrates up to it and refuses a newer one).
Code that reads checkpoints uses :func:`read_checkpoints` (their large state values, stored
once per run, resolved).
A backend with a native work queue overrides :meth:`Storage.claim_next` with
:func:`check_claim`, :func:`check_limits` and :data:`LIMITED_STATUSES` (``limits=``), :func:`claimable_statuses`, :data:`LEASE_PREFIX` (where a run's lease
record lives), :func:`lease_live` and :func:`lease_record` (the record a claim writes).

Agno code's ``Workflow(db=SqliteDb(db_file="tmp.db"))`` / ``db=InMemoryDb()`` work with
:class:`SqliteDb` and :class:`InMemoryDb` from here (plait's SQLite and memory storages).
"""

from __future__ import annotations

from plait._defaults import DEFAULT_STORAGE
from plait._public import report_public_home
from plait.storage._agno import InMemoryDb, SqliteDb
from plait.storage._base import (
    SCHEMA_VERSION,
    CacheEntry,
    CallRecord,
    HistoryRecord,
    RunClaimedError,
    RunLease,
    RunRecord,
    SessionRecord,
    StepCheckpoint,
    Storage,
    StorageError,
    claim_run,
    lease_record,
    redact_url,
    resolve_storage,
    scrub_secrets,
    status_spellings,
    url_secrets,
)
from plait.storage._claims import (
    CLAIMABLE,
    LEASE_PREFIX,
    LIMITED_STATUSES,
    check_claim,
    check_limits,
    claimable_statuses,
    lease_live,
)
from plait.storage._loop import own_event_loop
from plait.storage._memory import MemoryStorage
from plait.storage._retention import (
    check_not_leased,
    history_origin,
    internal_keys,
    parse_duration,
    prune_runs,
    stale_rows,
)
from plait.storage._shared import read_checkpoints, shared_keys

__all__ = [
    "CLAIMABLE",
    "DEFAULT_STORAGE",
    "LEASE_PREFIX",
    "LIMITED_STATUSES",
    "SCHEMA_VERSION",
    "CacheEntry",
    "CallRecord",
    "HistoryRecord",
    "InMemoryDb",
    "MemoryStorage",
    "RunClaimedError",
    "RunLease",
    "RunRecord",
    "SessionRecord",
    "SqliteDb",
    "StepCheckpoint",
    "Storage",
    "StorageError",
    "check_claim",
    "check_limits",
    "check_not_leased",
    "claim_run",
    "claimable_statuses",
    "history_origin",
    "internal_keys",
    "lease_live",
    "lease_record",
    "own_event_loop",
    "parse_duration",
    "prune_runs",
    "read_checkpoints",
    "redact_url",
    "resolve_storage",
    "scrub_secrets",
    "shared_keys",
    "stale_rows",
    "status_spellings",
    "url_secrets",
]


report_public_home(__name__, globals(), __all__)  # plait.storage.Storage, not plait.storage._base.Storage
