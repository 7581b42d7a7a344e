"""The work queue workers take runs from (:meth:`Storage.claim_next`): which runs may be
claimed, in what order, and the lease record a claim writes.

A run may be claimed when it is QUEUED (``start(..., queue=True)``) or RUNNING with no live
lease (the process that executed it died, or a worker shutting down released it); a claim
takes the run's lease (the same record :func:`plait.storage.claim_run` and
:class:`~plait.storage.RunLease` use) in the same atomic step that finds the run. Runs are
taken highest ``priority`` first, then oldest first.

``limits`` (workflow id -> N, from ``Workflow(max_concurrent_runs=N)``) caps the runs of a
workflow that hold a live lease at once, across every worker on the storage: the claim counts
them in the same atomic step (SQLite's write lock, a PostgreSQL advisory lock per limited
workflow inside the ``FOR UPDATE SKIP LOCKED`` transaction, the Redis claim script) and passes
over the runs of a workflow at its limit. The listing default for third-party backends counts
too, but not atomically: two claimers may both take the last place.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from plait.errors import DefinitionError

if TYPE_CHECKING:
    from plait.storage._base import SessionRecord, Storage

__all__ = [
    "CLAIMABLE",
    "LEASE_PREFIX",
    "LIMITED_STATUSES",
    "abandon",
    "check_claim",
    "check_limits",
    "claimable_statuses",
    "holder_died",
    "lease_live",
    "next_by_listing",
]

#: where a run's lease is kept: a session record under an id no caller uses (it starts with NUL)
LEASE_PREFIX = "\x00plait-lease:"
#: the statuses a worker claims: queued runs, and running ones whose lease expired
CLAIMABLE = ("QUEUED", "RUNNING")
#: the statuses of the runs a concurrency limit counts (those with a live lease among them)
LIMITED_STATUSES = ("QUEUED", "RUNNING")


def claimable_statuses(queued: bool) -> tuple[str, ...]:
    """The statuses a claim looks at: with ``queued=False`` only runs to recover."""
    return CLAIMABLE if queued else ("RUNNING",)


def check_claim(workflow_ids: Sequence[str], owner: dict[str, Any], ttl: float) -> list[str]:
    """The workflow ids of a ``claim_next`` call, checked."""
    if isinstance(workflow_ids, str) or not all(isinstance(w, str) for w in workflow_ids):
        raise DefinitionError(f"claim_next: workflow_ids must be a list of str, got {workflow_ids!r}")
    if not isinstance(owner, dict) or not isinstance(owner.get("owner"), str):
        raise DefinitionError(f"claim_next: owner must be a dict with an 'owner' id, got {owner!r}")
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl <= 0:
        raise DefinitionError(f"claim_next: ttl must be a positive number of seconds, got {ttl!r}")
    return list(dict.fromkeys(workflow_ids))


def check_limits(limits: Mapping[str, int] | None) -> dict[str, int]:
    """The ``limits`` of a ``claim_next`` call (workflow id -> runs at once), checked."""
    if limits is None:
        return {}
    if not isinstance(limits, Mapping) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 1
        for k, v in limits.items()
    ):
        raise DefinitionError(f"claim_next: limits must map workflow ids to ints >= 1, got {limits!r}")
    return dict(limits)


def lease_live(lease: SessionRecord | None, now: float) -> bool:
    """Whether a stored lease record is held by someone (not expired, not released)."""
    return lease is not None and float(lease.state.get("expires_at", 0) or 0) > now


async def next_by_listing(
    storage: Storage,
    workflow_ids: list[str],
    owner: dict[str, Any],
    ttl: float,
    queued: bool,
    limits: dict[str, int] | None = None,
) -> str | None:
    """``claim_next`` for a backend without a native one: list the candidates, then take each
    one's lease by compare-and-set and check its status again under it. ``limits`` are counted
    from a listing, not atomically (see the module)."""
    statuses = claimable_statuses(queued)
    limits = limits or {}
    now = time.time()
    for workflow_id, limit in limits.items():
        if workflow_id in workflow_ids:
            live = 0
            for status in LIMITED_STATUSES:
                for run in await storage.list_runs(status=status, workflow_id=workflow_id, limit=10_000):
                    live += lease_live(await storage.load_session(LEASE_PREFIX + run.run_id), now)
            if live >= limit:
                workflow_ids = [w for w in workflow_ids if w != workflow_id]
    candidates = [
        run
        for workflow_id in workflow_ids
        for status in statuses
        for run in await storage.list_runs(status=status, workflow_id=workflow_id, limit=10_000)
    ]
    candidates.sort(key=lambda r: (-r.priority, r.created_at, r.run_id))
    for run in candidates:
        held = await storage.load_session(LEASE_PREFIX + run.run_id)
        if lease_live(held, time.time()):
            continue
        if await storage.claim_lease(run.run_id, owner, ttl) is not None:
            continue
        current = await storage.get_run(run.run_id)
        if current is not None and current.status in statuses:
            return run.run_id
        await storage.release_lease(run.run_id, owner["owner"])  # it ended meanwhile
    return None


#: owner ids of leases this process let go of without being able to delete them (the storage
#: was down when their run ended): nothing here holds them, so a claim here may take them over
#: instead of waiting for them to expire
_abandoned: set[str] = set()


def abandon(owner_id: str) -> None:
    """Note that this process no longer holds the lease of ``owner_id`` (its release failed)."""
    _abandoned.add(owner_id)


def holder_died(held: dict[str, Any]) -> bool:
    """Whether the lease's holder is gone: a process of this host that no longer exists, or
    this process, which let go of it (:func:`abandon`)."""
    pid = held.get("pid")
    if held.get("host") != socket.gethostname() or not isinstance(pid, int):
        return False
    if pid == os.getpid():
        return held.get("owner") in _abandoned
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except OSError:
        return False  # exists, owned by someone else
    return False
