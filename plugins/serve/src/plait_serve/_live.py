"""The runs this server executes, and following any run's events through the storage.

A run the server starts (:meth:`Workflow.astart <plait.Workflow.astart>`) or continues
(``acontinue_run(stream=True)``) hands each event to a writer that appends it to the
storage at once (batched while a write is under way), so that any server process sharing
the storage can follow the run live. :func:`follow` is what every SSE stream reads: the
stored events after a sequence number, then the new ones as they are stored, until the run
ends or pauses. The writer wakes the followers in this process; followers of a run another
process executes poll the storage.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from plait import DefinitionError, RunHandle, RunStatus, Workflow
from plait.events import Event
from plait.storage import Storage

__all__ = ["LiveRuns", "StoredEvent"]

#: the events after which a run's stream ends: it ended, or it waits for a person
ENDS = frozenset({"WorkflowCompleted", "WorkflowError", "WorkflowCancelled", "WorkflowPaused"})
_GOING = (RunStatus.RUNNING.value, RunStatus.PENDING.value)
#: seconds a resume waits for the lease of a run that is finishing its pause elsewhere
LEASE_WAIT = 10.0


@dataclass(slots=True)
class StoredEvent:
    """One stored event of a run and its sequence number (1 for the run's first)."""

    seq: int
    data: dict[str, Any]


@dataclass
class _Run:
    """A run this process executes: the queue its writer stores from, and that writer."""

    run_id: str
    queue: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)
    writer: asyncio.Task[None] | None = None


class LiveRuns:
    """Executes runs for the server and stores their events as they happen.

    Each run executes on a thread of its own (:meth:`Workflow.start <plait.Workflow.start>`,
    or ``continue_run`` driven from one), never on the server's event loop: a workflow's
    sync steps would block every request. A second thread per run hands its events to the
    run's writer on the server's loop.
    """

    def __init__(self, storage: Storage, *, poll_interval: float = 0.25, idle_timeout: float = 300.0) -> None:
        self.storage = storage
        self.poll_interval = poll_interval
        self.idle_timeout = idle_timeout
        self._runs: dict[str, _Run] = {}
        self._stored = asyncio.Condition()  # a writer stored events: followers look again
        self._handles: dict[str, RunHandle] = {}

    def executing(self, run_id: str) -> bool:
        """Whether this process executes run ``run_id`` now."""
        return run_id in self._runs

    # -- executing ---------------------------------------------------------------------

    async def _write(self, run: _Run) -> None:
        try:
            while True:
                first = await run.queue.get()
                batch = [] if first is None else [first]
                last = first is None
                while not last and not run.queue.empty():
                    item = run.queue.get_nowait()
                    if item is None:
                        last = True
                    else:
                        batch.append(item)
                if batch:
                    await self.storage.append_events(run.run_id, batch)
                    async with self._stored:
                        self._stored.notify_all()
                if last:
                    return
        finally:
            self._runs.pop(run.run_id, None)
            self._handles.pop(run.run_id, None)
            async with self._stored:
                self._stored.notify_all()

    async def _drive(
        self, workflow: Workflow, run_id: str | None, events: Callable[[], Iterable[Event]]
    ) -> str:
        """Execute ``events()`` (a run's event stream, consumed on a thread of its own),
        storing each event; returns the run's id once it has started (``run_id`` None: a new
        run whose id its first event tells, a fork), raising what stopped it before its first
        event (input that does not match the schema, a wrong answer)."""
        if run_id is not None and run_id in self._runs:
            raise DefinitionError(f"run {run_id!r} is already executing in this server")
        loop = asyncio.get_running_loop()
        run = _Run(run_id or "")
        if run_id is not None:
            self._runs[run_id] = run
        run.writer = loop.create_task(self._write(run))
        started: asyncio.Future[str] = loop.create_future()
        skip = workflow.skipped_events

        def begin(error: BaseException | None, first: Event | None) -> None:
            if started.done():
                return
            if error is not None:
                started.set_exception(error)
                return
            if not run.run_id and first is not None and first.run_id:
                run.run_id = first.run_id
                self._runs[run.run_id] = run
            started.set_result(run.run_id)

        def consume() -> None:
            error: BaseException | None = None
            try:
                for event in events():
                    loop.call_soon_threadsafe(begin, None, event)
                    if event.event not in skip:
                        loop.call_soon_threadsafe(run.queue.put_nowait, event.to_dict())
            except BaseException as exc:  # the run's own failure: stored with it, shown to the starter
                error = exc
            loop.call_soon_threadsafe(begin, error, None)
            loop.call_soon_threadsafe(run.queue.put_nowait, None)

        threading.Thread(target=consume, name=f"plait-serve-{run_id or 'new'}", daemon=True).start()
        try:
            return await started
        except BaseException:  # it stopped before it started: let its writer finish, then say so
            await asyncio.wait([run.writer], timeout=LEASE_WAIT)
            raise

    async def start(self, workflow: Workflow, input: Any, options: dict[str, Any]) -> str:
        """Start a run of ``workflow`` and return its id once it has started."""
        run_id = str(uuid.uuid4())
        handle = workflow.start(input, run_id=run_id, **options)
        self._handles[run_id] = handle

        def events() -> Iterator[Event]:
            yield from handle.events()
            handle.wait()  # raises what the run raised

        await self._drive(workflow, run_id, events)
        return run_id

    async def resume(self, workflow: Workflow, run_id: str, **answers: Any) -> None:
        """Continue stored run ``run_id`` (``continue_run``'s ``answers``, ``approve``);
        returns once it goes on."""
        await self._drive(
            workflow,
            run_id,
            # wait= lets the lease of a run that has just paused (here or elsewhere) be released
            lambda: workflow.continue_run(
                run_id, stream=True, stream_events=True, wait=LEASE_WAIT, **answers
            ),
        )

    async def fork(self, workflow: Workflow, run_id: str, **change: Any) -> str:
        """Fork stored run ``run_id`` (``Workflow.fork``'s ``at``, ``state``, ``input``,
        ``output``, ``replay``) in the background; returns the new run's id once it started."""
        return await self._drive(
            workflow,
            None,
            lambda: workflow.fork(run_id, stream=True, stream_events=True, **change),
        )

    async def replay(self, workflow: Workflow, run_id: str, *, live: bool = False) -> str:
        """Replay stored run ``run_id`` (``Workflow.replay``: every model and tool call answered
        from the original's record) in the background; returns the new run's id once it started."""
        return await self._drive(
            workflow,
            None,
            lambda: workflow.replay(run_id, live=live, stream=True, stream_events=True),
        )

    async def aclose(self) -> None:
        """Stop: ask the runs still executing to cancel, and let the writers store what came."""
        for handle in list(self._handles.values()):
            handle.cancel()
        writers = [run.writer for run in self._runs.values() if run.writer is not None]
        await asyncio.wait(writers, timeout=5) if writers else None

    # -- following ---------------------------------------------------------------------

    async def follow(self, run_id: str, after: int = 0) -> AsyncIterator[StoredEvent]:
        """The stored events of run ``run_id`` after sequence ``after``, then each new one,
        until the run has ended or paused: its last stored event so far is its top-level
        end or pause and it is not going on. A run that stores no such event (it ran outside
        a server, or its process died) ends the stream once its stored events are out.

        A run this process executes wakes its followers as its events are stored. One that
        another process executes is polled: every ``poll_interval`` seconds at first, half as
        often again after each look that finds nothing (up to ``8 * poll_interval``), and
        the stream ends after ``idle_timeout`` seconds without a new event (the client
        reconnects with ``Last-Event-ID``), so a run whose process died holds no stream."""
        seq = after
        at_end = False  # the last event out was the run's end or pause (a resume may follow)
        ended_looks = 0
        wait = self.poll_interval
        idle_since = time.monotonic()
        while True:
            batch = await self.storage.load_events(run_id, after=seq)
            for data in batch:
                seq += 1
                yield StoredEvent(seq, data)
                at_end = data.get("event") in ENDS and data.get("run_id") == run_id
            if batch:
                ended_looks, wait, idle_since = 0, self.poll_interval, time.monotonic()
                continue
            if not self.executing(run_id):
                record = await self.storage.get_run(run_id)
                if record is None or record.status not in _GOING:
                    if at_end:
                        return
                    ended_looks += 1  # no end stored: one more look for late events, then stop
                    if ended_looks >= 2:
                        return
                elif time.monotonic() - idle_since >= self.idle_timeout:
                    return
                else:
                    wait = min(wait * 1.5, self.poll_interval * 8)
            async with self._stored:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stored.wait(), wait)

    async def settle(self, run_id: str, timeout: float = 10.0) -> bool:
        """Wait (``timeout`` seconds at most) until this process no longer executes run
        ``run_id``: a run that just paused or ended still stores its last events. True when
        it does not execute here any more."""
        run = self._runs.get(run_id)
        if run is not None and run.writer is not None:
            await asyncio.wait([run.writer], timeout=timeout)
        return not self.executing(run_id)
