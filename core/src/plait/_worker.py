"""Workers: processes that take runs from the storage and execute them (``plait worker``).

A :class:`Worker` serves some workflows on one storage. It claims the next run
(:meth:`plait.storage.Storage.claim_next`: a queued run, or a running one whose process died,
highest priority first) whenever it holds fewer than ``concurrency`` runs, and polls every
``poll`` seconds when there is none. Each run it holds is heartbeaten from the worker's event
loop (:class:`~plait.storage.RunLease`, every third of ``lease_ttl``) and executes on a thread
with an event loop of its own, so a step's blocking code cannot hold up the heartbeats of
the others. ``Workflow(max_concurrent_runs=N)`` caps how many runs of that workflow execute
at once across every worker on the storage (``claim_next(limits=...)`` counts the runs under a
live lease in the claim's atomic step). Every ``poll`` seconds it also queues the due ticks of the workflows
with a ``schedule`` (:mod:`plait._schedule`, each tick once across all workers). At start
and every ``prune_every`` seconds (default 300) it prunes the finished runs of the workflows
it serves that have a ``retention=`` (only theirs, each by its workflow's retention), in the
background; several workers pruning at once is safe (``delete_run`` is atomic per run, a run
another worker deleted first is not counted) and a failed prune is logged, not fatal.

:meth:`Worker.stop` (SIGTERM or SIGINT under ``plait worker``) ends it gracefully: it stops
claiming, lets the runs in hand finish for up to ``grace`` seconds, then cancels the rest and
gives them back (stored as RUNNING again, their lease released) so another worker resumes
them from their checkpoints at once.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plait._checks import check_seconds
from plait._ids import new_id
from plait._io import RunStatus
from plait._public import publish as _publish
from plait._queue import execute_claimed, worker_owner
from plait.errors import DefinitionError
from plait.storage import RunLease, Storage, StorageError

if TYPE_CHECKING:
    from plait.workflow import Workflow

__all__ = ["Worker", "WorkerStats"]


@dataclass
class WorkerStats:
    """What a worker did: run ids by how they ended here (``given_back``: cancelled at
    shutdown and released for another worker)."""

    finished: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    given_back: list[str] = field(default_factory=list)


@dataclass
class _Held:
    workflow: Workflow
    lease: RunLease
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop | None = None
    task: asyncio.Task[Any] | None = None
    ready: threading.Event = field(default_factory=threading.Event)


class Worker:
    """Claims and executes the runs of ``workflows`` from their storage.

    >>> worker = Worker([research], concurrency=4, poll=1.0)
    >>> asyncio.run(worker.run())   # until worker.stop() (plait worker: SIGTERM / SIGINT)

    ``storage`` (a URL or object) replaces the workflows' own; without it they must all use
    the same one. ``lease_ttl`` (default: the workflows' ``lease_ttl``) is how long a run this
    worker holds stays claimed if the worker dies without releasing it. ``prune_every`` is how
    often it applies the workflows' ``retention=`` (seconds; the first prune is at start).
    """

    def __init__(
        self,
        workflows: Sequence[Workflow],
        *,
        storage: Storage | str | None = None,
        concurrency: int = 4,
        poll: float = 1.0,
        lease_ttl: float | None = None,
        grace: float = 30.0,
        prune_every: float = 300.0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        from plait.workflow import Workflow

        workflows = list(workflows)
        if not workflows or not all(isinstance(w, Workflow) for w in workflows):
            raise DefinitionError(f"Worker: expected one or more Workflow objects, got {workflows!r}")
        ids = Counter(w.id for w in workflows)
        twice = sorted(i for i, n in ids.items() if n > 1)
        if twice:
            raise DefinitionError(
                f"Worker: two workflows share the id {twice[0]!r}; a run names its workflow by id"
            )
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise DefinitionError(f"Worker: concurrency must be an int >= 1, got {concurrency!r}")
        check_seconds(poll, "Worker", "poll")
        check_seconds(lease_ttl, "Worker", "lease_ttl")
        if prune_every is None:
            raise DefinitionError(
                "Worker: prune_every must be a positive, finite number of seconds, got None"
            )
        check_seconds(prune_every, "Worker", "prune_every")
        if isinstance(grace, bool) or not isinstance(grace, (int, float)) or not 0 <= grace < float("inf"):
            raise DefinitionError(f"Worker: grace must be a finite number of seconds >= 0, got {grace!r}")
        if storage is not None:
            for workflow in workflows:
                workflow.storage, workflow._storage = storage, None
        stores = {repr(w.storage) for w in workflows}
        if None in (w.storage for w in workflows) or len(stores) > 1:
            raise DefinitionError(
                f"Worker: the workflows must use one storage (pass storage=, or --storage); got {', '.join(sorted(stores))}"
            )
        self.workflows = {w.id: w for w in workflows}
        self.concurrency = concurrency
        self.poll = poll
        self.grace = grace
        self.prune_every = prune_every
        #: how many runs this worker's prunes deleted (``retention=``)
        self.pruned = 0
        self.lease_ttl = lease_ttl or min(w.lease_ttl for w in workflows)
        #: this worker's id, in the leases it holds (``plait runs show`` names the holder)
        self.id = new_id()
        self.stats = WorkerStats()
        self._log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self._held: dict[str, _Held] = {}
        self._stop: asyncio.Event | None = None
        self._stopping = False

    def stop(self) -> None:
        """Stop claiming and end gracefully (safe from a signal handler on the worker's loop)."""
        self._stopping = True
        if self._stop is not None:
            self._stop.set()

    async def run(self) -> WorkerStats:
        """Serve until :meth:`stop`; what it did."""
        self._stop = asyncio.Event()
        if self._stopping:
            self._stop.set()
        first = next(iter(self.workflows.values()))
        storage = await first._ready_storage()
        assert storage is not None
        self._log(
            f"plait worker {self.id[:8]}: serving {', '.join(sorted(self.workflows))} on {storage!r} "
            f"(concurrency {self.concurrency})"
        )
        scheduled = [w for w in self.workflows.values() if w._schedule is not None]
        ticks_due = 0.0
        kept = [w for w in self.workflows.values() if w.retention is not None]
        prune_due, pruning = 0.0, None
        try:
            while not self._stop.is_set():
                if kept and time.monotonic() >= prune_due and (pruning is None or pruning.done()):
                    prune_due = time.monotonic() + self.prune_every
                    pruning = asyncio.ensure_future(self._prune(kept, storage))
                if scheduled and time.monotonic() >= ticks_due:
                    ticks_due = time.monotonic() + self.poll
                    await self._start_ticks(scheduled, storage)
                if await self._claim(storage):
                    continue
                waits = [h.future for h in self._held.values() if not h.future.done()]
                stop = asyncio.ensure_future(self._stop.wait())
                await asyncio.wait([stop, *waits], timeout=self.poll, return_when=asyncio.FIRST_COMPLETED)
                stop.cancel()
        finally:
            if pruning is not None and not pruning.done():
                pruning.cancel()
                await asyncio.gather(pruning, return_exceptions=True)
            try:
                await self._drain()
            finally:
                for workflow in self.workflows.values():
                    await workflow.aclose()  # a storage opened from a URL: its connections
        return self.stats

    async def _start_ticks(self, scheduled: list[Workflow], storage: Storage) -> None:
        from plait._schedule import start_due

        for workflow in scheduled:
            try:
                for run_id in await start_due(workflow, storage):
                    self._log(f"plait worker {self.id[:8]}: queued run {run_id} ({workflow.schedule})")
            except StorageError as exc:
                self._log(f"plait worker {self.id[:8]}: starting the schedule of {workflow.id} failed: {exc}")

    async def _prune(self, kept: list[Workflow], storage: Storage) -> None:
        """Apply ``retention=``: delete each workflow's finished runs older than its retention."""
        for workflow in kept:
            try:
                deleted = await storage.prune(workflow.retention, workflow_id=workflow.id)
            except Exception as exc:  # a prune that failed must never stop the worker
                self._log(
                    f"plait worker {self.id[:8]}: pruning {workflow.id} failed, trying again in "
                    f"{self.prune_every:g}s: {type(exc).__name__}: {exc}"
                )
                continue
            self.pruned += deleted
            if deleted:
                self._log(
                    f"plait worker {self.id[:8]}: pruned {deleted} run(s) of {workflow.id} "
                    f"(retention {workflow.retention:g}s)"
                )

    def _limits(self, eligible: list[str]) -> dict[str, Any]:
        """``claim_next``'s ``limits=``: each limited workflow's cap across every worker (left
        out when there is none, for backends that predate it)."""
        limits = {
            w: self.workflows[w].max_concurrent_runs
            for w in eligible
            if self.workflows[w].max_concurrent_runs is not None
        }
        return {"limits": limits} if limits else {}

    async def _claim(self, storage: Storage) -> bool:
        if len(self._held) >= self.concurrency:
            return False
        holding = Counter(h.workflow.id for h in self._held.values())
        eligible = [
            workflow_id
            for workflow_id, workflow in self.workflows.items()
            if workflow.max_concurrent_runs is None or holding[workflow_id] < workflow.max_concurrent_runs
        ]
        if not eligible:
            return False
        owner = worker_owner(self.id)
        try:
            run_id = await storage.claim_next(eligible, owner, self.lease_ttl, **self._limits(eligible))
        except StorageError as exc:
            self._log(f"plait worker {self.id[:8]}: claiming failed, trying again: {exc}")
            return False
        if run_id is None:
            return False
        lease = RunLease(storage, run_id, owner, self.lease_ttl)
        record = await storage.get_run(run_id)
        workflow = None if record is None else self.workflows.get(record.workflow_id)
        if workflow is None:  # deleted meanwhile
            await lease.release()
            return True
        held = _Held(workflow, lease, asyncio.get_running_loop().create_future())
        self._held[run_id] = held
        thread = threading.Thread(
            target=self._execute, args=(run_id, held, asyncio.get_running_loop()), daemon=True
        )
        thread.start()
        held.future.add_done_callback(lambda _: asyncio.ensure_future(self._ended(run_id)))
        return True

    def _execute(self, run_id: str, held: _Held, home: asyncio.AbstractEventLoop) -> None:
        """The run, on this thread's own event loop; its outcome handed to the worker's loop."""
        loop = asyncio.new_event_loop()
        result: Any = None
        error: BaseException | None = None
        try:
            held.loop = loop
            held.task = loop.create_task(execute_claimed(held.workflow, run_id, held.lease))
            held.ready.set()
            result = loop.run_until_complete(held.task)
        except BaseException as exc:  # the worker's to report, not this thread's
            error = exc
        finally:
            loop.close()
        home.call_soon_threadsafe(_settle, held.future, result, error)

    async def _ended(self, run_id: str) -> None:
        held = self._held[run_id]
        try:
            if held.future.cancelled():
                await self._give_back(run_id, held)
                return
            error = held.future.exception()
            if error is not None:
                self.stats.failed[run_id] = f"{type(error).__name__}: {error}"
                self._log(f"plait worker {self.id[:8]}: run {run_id} failed: {type(error).__name__}: {error}")
            else:
                record = held.future.result()
                status = record.status if record is not None else "UNKNOWN"
                self.stats.finished[run_id] = status
                self._log(f"plait worker {self.id[:8]}: run {run_id} {status}")
        finally:
            try:
                await held.lease.release()
            finally:
                del self._held[run_id]  # only now: a draining worker waits for this

    async def _give_back(self, run_id: str, held: _Held) -> None:
        """A run cancelled at shutdown: RUNNING again (still under its lease), for another worker."""
        storage = await held.workflow._ready_storage()
        assert storage is not None
        record = await storage.get_run(run_id)
        if record is not None and record.status == RunStatus.CANCELLED.value:
            record.status, record.error = RunStatus.RUNNING.value, None
            record.updated_at = time.time()
            await storage.save_run(record)
        self.stats.given_back.append(run_id)
        self._log(f"plait worker {self.id[:8]}: run {run_id} given back (resumable from its checkpoints)")

    async def _drain(self) -> None:
        """Let the runs in hand finish for up to ``grace`` seconds, then cancel and give back the rest."""
        if not self._held:
            return
        self._log(f"plait worker {self.id[:8]}: stopping; {len(self._held)} run(s) in hand")
        futures = [h.future for h in self._held.values()]
        await asyncio.wait(futures, timeout=self.grace)
        for held in list(self._held.values()):
            if not held.future.done():
                await asyncio.to_thread(held.ready.wait)
                assert held.loop is not None and held.task is not None
                held.loop.call_soon_threadsafe(held.task.cancel)
        while self._held:  # each one's _ended runs when its future is done
            await asyncio.sleep(0.01)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if isinstance(error, asyncio.CancelledError):
        future.cancel()
    elif error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


_publish(__name__, globals())
