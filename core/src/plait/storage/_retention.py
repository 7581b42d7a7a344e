"""Retention: what deleting a run takes with it, which runs a prune deletes, and durations.

Every backend implements :meth:`Storage.delete_run` atomically (one transaction, one
MULTI/EXEC); what it deletes is the same everywhere:

- the run's record (its pause, so the approval it waits for, is part of it), checkpoints
  (nested workflows and parallel branches are checkpointed inside their run: ``par/p1``),
  stored events and recorded calls;
- the payloads of those calls that no other run's calls reference (payloads are stored once
  by hash and shared between runs);
- the run's lease and cancel-request rows;
- the conversation-history turns that agent steps of that run added (``HistoryRecord.origin``
  is ``run_id/step_id``): retention removes a run's content wherever plait copied it. Turns of
  agents run outside a workflow belong to their session only (:meth:`Storage.delete_session`).

It keeps runs forked or replayed from the run (they are runs of their own), the session's
state (a session outlives its runs) and cache entries (keyed by content, not by run: they go
by their own ``ttl``).
"""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from plait._io import RunStatus, normalize_status
from plait.errors import DefinitionError
from plait.storage._claims import LEASE_PREFIX as _LEASE_PREFIX
from plait.storage._claims import holder_died
from plait.storage._errors import RunClaimedError

if TYPE_CHECKING:
    from plait.storage._base import RunRecord, Storage

__all__ = [
    "CANCEL_PREFIX",
    "FINISHED",
    "INTERNAL",
    "check_not_leased",
    "history_origin",
    "internal_keys",
    "parse_duration",
    "prunable",
    "prune_runs",
    "stale_rows",
]

#: the session id under which a run's cancel request is stored (plait._runs)
CANCEL_PREFIX = "\x00plait-cancel:"
#: session ids that start with this are plait's own rows (leases, cancel requests), not sessions
INTERNAL = "\x00"
#: the statuses ``prune`` takes when it is not given one: runs that will not go on by themselves
FINISHED = ("COMPLETED", "COMPLETED_WITH_ERRORS", "ERROR", "CANCELLED")

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", re.IGNORECASE)


def parse_duration(value: Any, where: str) -> float:
    """Seconds from a :class:`~datetime.timedelta`, a number of seconds, or a string such as
    ``"30d"``, ``"12h"``, ``"90m"``, ``"45s"``, ``"2w"``; a clear error for anything else."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.fullmatch(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2).lower()]
    else:
        raise DefinitionError(
            f"{where}: expected a duration such as '30d', '12h', '90m' or '45s', got {value!r}"
        )
    if not seconds > 0 or seconds == float("inf"):
        raise DefinitionError(f"{where}: expected a duration above zero, got {value!r}")
    return seconds


def internal_keys(run_id: str) -> tuple[str, str]:
    """The session ids of ``run_id``'s lease and cancel-request rows."""
    return _LEASE_PREFIX + run_id, CANCEL_PREFIX + run_id


def history_origin(run_id: str) -> str:
    """The ``HistoryRecord.origin`` prefix of the turns agent steps of ``run_id`` added."""
    return run_id + "/"


def check_not_leased(run_id: str, lease: dict[str, Any] | None, force: bool) -> None:
    """Refuse (:class:`RunClaimedError`) to delete a run a live process holds the lease of."""
    if force or lease is None or lease.get("expires_at", 0) <= time.time() or holder_died(lease):
        return
    raise RunClaimedError(
        f"run {run_id!r} is running: host {lease.get('host')!r} pid {lease.get('pid')} holds its lease "
        f"(owner {lease.get('owner')!r}, for {lease.get('expires_at', 0) - time.time():.0f}s more unless "
        "renewed); it was not deleted. Cancel it first, or delete it anyway with force=True "
        "(plait runs delete --force)"
    )


async def prunable(
    storage: Storage,
    older_than: timedelta | float | str | None,
    *,
    status: str | None = None,
    workflow_id: str | None = None,
) -> list[RunRecord]:
    """The runs ``prune`` would delete: last updated more than ``older_than`` ago (None: more
    than their own workflow's ``retention=`` ago; runs without one are kept), with ``status``
    (default: the finished ones, :data:`FINISHED`), of ``workflow_id`` when given."""
    age = None if older_than is None else parse_duration(older_than, "prune(older_than=...)")
    if status is not None:
        known = [member.value for member in RunStatus]
        if not isinstance(status, str) or normalize_status(status.upper()) not in known:
            raise DefinitionError(f"prune(status=...): expected one of {', '.join(known)}, got {status!r}")
        status = normalize_status(status.upper())
    if workflow_id is not None and not isinstance(workflow_id, str):
        raise DefinitionError(f"prune(workflow_id=...): expected a workflow id (str), got {workflow_id!r}")
    wanted = {status} if status is not None else None  # a RunRecord's status is in today's spelling
    now = time.time()
    found: list[RunRecord] = []
    page, offset = 500, 0
    while True:
        runs = await storage.list_runs(limit=page, status=status, workflow_id=workflow_id, offset=offset)
        for run in runs:
            keep_for = age if age is not None else run.retention
            if keep_for is None or run.updated_at > now - keep_for:
                continue
            if (run.status in wanted) if wanted is not None else (run.status in FINISHED):
                found.append(run)
        if len(runs) < page:
            return found
        offset += page


async def prune_runs(
    storage: Storage,
    older_than: timedelta | float | str | None,
    *,
    status: str | None = None,
    workflow_id: str | None = None,
) -> int:
    """:meth:`Storage.prune` over a backend's ``delete_run``: delete what :func:`prunable`
    finds, each run atomically; a run that a live process holds the lease of is kept (it was
    resumed since), one another pruner deleted first is not counted. Then the lease rows no
    live process holds go (:meth:`Storage.prune_leases`). Returns how many runs it deleted."""
    deleted = 0
    for run in await prunable(storage, older_than, status=status, workflow_id=workflow_id):
        try:
            deleted += await storage.delete_run(run.run_id)
        except RunClaimedError:
            continue
    await storage.prune_leases()
    return deleted


def stale_rows(rows: dict[str, dict[str, Any]]) -> list[str]:
    """Among plait's own session rows (session id -> state), the lease and cancel-request rows
    of runs no live process holds: a lease that expired or was released (to a claim, a missing
    lease is one that expired), and the cancel requests of those runs (a resume clears a
    request it finds anyway)."""
    now = time.time()
    live = {
        key[len(_LEASE_PREFIX) :]
        for key, state in rows.items()
        if key.startswith(_LEASE_PREFIX) and state.get("expires_at", 0) > now
    }
    return [
        key
        for key in rows
        if (key.startswith(_LEASE_PREFIX) and key[len(_LEASE_PREFIX) :] not in live)
        or (key.startswith(CANCEL_PREFIX) and key[len(CANCEL_PREFIX) :] not in live)
    ]
