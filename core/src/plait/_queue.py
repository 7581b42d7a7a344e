"""Queued runs and recovery: :meth:`Workflow.start(..., queue=True) <plait.Workflow.start>`
stores a run as QUEUED for a worker (:mod:`plait._worker`, ``plait worker``) to claim and
execute, and :meth:`Workflow.recover <plait.Workflow.recover>` resumes, once each, the runs
whose process died, for users without workers.

A queued run is a run with no checkpoints yet: a worker executes it the way
``continue_run`` resumes one (:func:`plait._runs.resume`), under the lease its claim took
(:meth:`plait.storage.Storage.claim_next`).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from typing import TYPE_CHECKING, Any

from plait._durable import dump_input, dump_media, dump_state
from plait._ids import new_id
from plait._io import MEDIA_FIELDS, RunStatus
from plait._public import publish as _publish
from plait.errors import DefinitionError
from plait.storage import RunLease, RunRecord, Storage

if TYPE_CHECKING:
    from plait.workflow import Workflow

__all__ = ["QueuedRun", "check_priority", "enqueue", "recover", "worker_owner"]

#: the options of ``start`` a queued run keeps (stored with its record); the others live
#: in the caller's process only, which a worker is not
QUEUE_OPTIONS = ("session_id", "user_id", "metadata", *MEDIA_FIELDS)
#: the priorities a run may have (a 32-bit column in SQL backends)
PRIORITY_RANGE = (-(2**31), 2**31 - 1)


def check_priority(priority: Any, where: str) -> int:
    low, high = PRIORITY_RANGE
    if isinstance(priority, bool) or not isinstance(priority, int) or not low <= priority <= high:
        raise DefinitionError(f"{where}: priority must be an int from {low} to {high}, got {priority!r}")
    return priority


def worker_owner(worker: str | None = None) -> dict[str, Any]:
    """A fresh lease owner of this process (one per claim: a lease is released by its owner id)."""
    owner: dict[str, Any] = {"owner": uuid.uuid4().hex, "host": socket.gethostname(), "pid": os.getpid()}
    if worker is not None:
        owner["worker"] = worker
    return owner


class QueuedRun:
    """A run stored as QUEUED by :meth:`Workflow.start(..., queue=True) <plait.Workflow.start>`,
    waiting for a worker (``plait worker``) to claim it.

    >>> queued = workflow.start("topic", queue=True, priority=5)
    >>> queued.run_id, queued.status()     # RunStatus.QUEUED until a worker takes it
    >>> record = queued.wait(timeout=60)   # its RunRecord once it completed, paused or failed
    """

    def __init__(self, workflow: Workflow, run_id: str) -> None:
        self.workflow = workflow
        #: the run's id, chosen before it was stored
        self.run_id = run_id

    async def _record(self) -> RunRecord:
        storage = await self.workflow._ready_storage()
        assert storage is not None
        record = await storage.get_run(self.run_id)
        if record is None:
            raise DefinitionError(f"queued run {self.run_id!r} is no longer in {storage!r}")
        return record

    async def astatus(self) -> RunStatus:
        """The stored status: QUEUED, RUNNING while a worker executes it, then how it ended."""
        return RunStatus((await self._record()).status)

    def status(self) -> RunStatus:
        """:meth:`astatus` from sync code."""
        from plait._sync import run_sync

        return run_sync(self.astatus())

    async def await_end(self, timeout: float | None = None, poll: float = 0.2) -> RunRecord:
        """The stored record once the run is neither queued nor running; :class:`TimeoutError`
        when ``timeout`` seconds pass first (the run goes on)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            record = await self._record()
            if record.status not in (RunStatus.QUEUED.value, RunStatus.RUNNING.value):
                return record
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"run {self.run_id!r} still {record.status} after {timeout} seconds")
            await asyncio.sleep(poll)

    def wait(self, timeout: float | None = None, poll: float = 0.2) -> RunRecord:
        """:meth:`await_end` from sync code."""
        from plait._sync import run_sync

        return run_sync(self.await_end(timeout, poll))

    def __repr__(self) -> str:
        return f"QueuedRun({self.workflow.name!r}, run_id={self.run_id!r})"


async def enqueue(
    workflow: Workflow, input: Any, run_id: str | None, priority: int, options: dict[str, Any]
) -> QueuedRun:
    """Store a run of ``workflow`` as QUEUED (nothing executes here)."""
    where = f"Workflow {workflow.name!r}: start(queue=True)"
    check_priority(priority, where)
    kept = {key: value for key, value in options.items() if value is not None and value != ()}
    dropped = sorted(set(kept) - set(QUEUE_OPTIONS))
    if dropped:
        raise DefinitionError(
            f"{where}: a queued run keeps only {', '.join(QUEUE_OPTIONS)} (a worker executes it in "
            f"another process); got {', '.join(dropped)}"
        )
    storage = await workflow._ready_storage()
    if storage is None:
        raise DefinitionError(
            f"{where}: a queued run waits in the storage for a worker; give the workflow storage= "
            "(or set $PLAIT_STORAGE)"
        )
    from plait._definition import fingerprint
    from plait._workflow_checks import check_run_options

    user_id, metadata = kept.get("user_id"), kept.get("metadata")
    check_run_options(workflow.name, user_id, metadata, None)
    run_id = run_id or new_id()
    if await storage.get_run(run_id) is not None:
        raise DefinitionError(f"{where}: run {run_id!r} already exists in {storage!r}")
    value = workflow._validate_input(input)
    given = {k: kept[k] for k in MEDIA_FIELDS if k in kept}
    media = None
    if given:
        from plait._parts import run_media

        media = run_media(where, **given)
    record = RunRecord(
        run_id=run_id,
        workflow_id=workflow.id,
        workflow_name=workflow.name,
        session_id=kept.get("session_id") or workflow.session_id or new_id(),
        status=RunStatus.QUEUED.value,
        input=dump_input(value, f"the input of workflow {workflow.name!r}"),
        media=dump_media(media, f"the media of a queued run of workflow {workflow.name!r}"),
        target=workflow.target,
        user_id=user_id if user_id is not None else workflow.user_id,
        metadata=None if metadata is None else dump_state(metadata, "the run's metadata"),
        definition=fingerprint(workflow),
        priority=priority,
    )
    from plait._blobs import save_blobs

    await save_blobs(storage, record.input, record.media)  # their bytes once, by digest
    await storage.save_run(record)
    return QueuedRun(workflow, run_id)


async def execute_claimed(workflow: Workflow, run_id: str, lease: RunLease) -> RunRecord | None:
    """Execute (or resume) a run this process claimed, under ``lease`` (which the caller ends).
    A run the code cannot resume (its definition changed, its input no longer validates) is
    stored as ERROR saying why, so no worker claims it again; ``continue_run`` still can."""
    from plait._runs import resume

    storage = await workflow._ready_storage()
    assert storage is not None
    try:
        await resume(
            workflow,
            storage,
            run_id,
            listeners=(),
            stream_events=False,
            answers=None,
            approve=None,
            answer=None,
            wait=False,
            lease=lease,
        )
    except DefinitionError as exc:
        record = await storage.get_run(run_id)
        if record is not None and record.status in (RunStatus.QUEUED.value, RunStatus.RUNNING.value):
            record.status = RunStatus.ERROR.value
            record.error = f"{type(exc).__name__}: not run by a worker: {exc}"
            record.updated_at = time.time()
            await storage.save_run(record)
        raise
    return await storage.get_run(run_id)


async def recover(workflow: Workflow) -> dict[str, str]:
    """Resume, once each, every run of ``workflow`` whose lease expired (its process died):
    ``{run_id: status after}`` (a run that failed again says ERROR)."""
    storage: Storage | None = await workflow._ready_storage()
    if storage is None:
        raise DefinitionError(f"Workflow {workflow.name!r}: recover() needs storage= (or $PLAIT_STORAGE)")
    done: dict[str, str] = {}
    while True:
        owner = worker_owner()
        run_id = await storage.claim_next([workflow.id], owner, workflow.lease_ttl, queued=False)
        if run_id is None:
            return done
        lease = RunLease(storage, run_id, owner, workflow.lease_ttl)
        try:
            if run_id in done:  # it is back already (resumed and left running): once is enough
                return done
            try:
                record = await execute_claimed(workflow, run_id, lease)
                done[run_id] = record.status if record is not None else "UNKNOWN"
            except Exception:
                record = await storage.get_run(run_id)
                done[run_id] = record.status if record is not None else RunStatus.ERROR.value
        finally:
            await lease.release()


_publish(__name__, globals())
