"""Runs in the background: :meth:`Workflow.start <plait.Workflow.start>` and
:meth:`Workflow.astart <plait.Workflow.astart>` and the handles they return.

A handle drives an ordinary top-level run (:func:`plait._workflow_run.run`, the same path
``arun`` takes) with one listener of its own that keeps every event, so that any number of
readers can follow the run from its first event, while it goes and after it ended.
:class:`RunHandle` runs it on a thread with an event loop of its own (sync code, any
thread); :class:`AsyncRunHandle` as a task on the caller's loop. Cancelling goes through
:mod:`plait._cancel`, as :meth:`Workflow.cancel_run <plait.Workflow.cancel_run>` does; the
run id is chosen before the run starts, so it is known when ``start`` returns.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any

from plait import _cancel, _workflow_run
from plait._ids import new_id
from plait._io import MEDIA_FIELDS, RunStatus, WorkflowRunOutput
from plait._public import publish as _publish
from plait.errors import DefinitionError
from plait.events import Event

if TYPE_CHECKING:
    from plait.workflow import Workflow

__all__ = ["AsyncRunHandle", "RunHandle", "astart", "start"]

EventCallback = Callable[[Event], None]

#: the options of ``run`` that ``start`` passes on (``plait.workflow.RunArguments`` but
#: ``run_id``, which ``start`` takes itself; a test keeps the two alike)
RUN_OPTIONS = (
    "session_id",
    "session_state",
    "additional_data",
    "sinks",
    "user_id",
    "metadata",
    "dependencies",
    "add_dependencies_to_context",
    *MEDIA_FIELDS,
)


def _run_coroutine(
    workflow: Workflow,
    input: Any,
    run_id: str,
    listener: EventCallback,
    on_event: EventCallback | None,
    options: dict[str, Any],
) -> Coroutine[Any, Any, WorkflowRunOutput]:
    if on_event is not None and not callable(on_event):
        raise DefinitionError(
            f"Workflow {workflow.name!r}: start(): on_event must be a function of an event, got {on_event!r}"
        )

    def deliver(event: Event) -> None:
        listener(event)
        if on_event is not None:
            on_event(event)

    listeners = (workflow._stream_listener(deliver, True),)
    return _workflow_run.run(
        workflow, input, listeners=listeners, stream_events=True, run_id=run_id, **options
    )


def _status(done: bool, output: WorkflowRunOutput | None, error: BaseException | None) -> RunStatus:
    if not done:
        return RunStatus.RUNNING
    if output is not None:
        return output.status
    return RunStatus.CANCELLED if isinstance(error, asyncio.CancelledError) else RunStatus.ERROR


def _cancel_run(run_id: str, done: bool) -> bool:
    """Ask run ``run_id`` to stop at its next safe point; a run not started yet is cancelled
    before its first step. False when it has already ended."""
    if done:
        return False
    _cancel.cancelling()
    run = _cancel.active_run(run_id)
    if run is not None:
        run.request_cancel()
    else:
        _cancel.cancel_early(run_id)  # its task or thread has not reached the run yet
    return True


class RunHandle:
    """A run going on in a background thread (:meth:`Workflow.start <plait.Workflow.start>`).

    >>> handle = workflow.start("topic", session_id="s1")
    >>> handle.run_id, handle.status()
    >>> for event in handle.events(): ...   # every event from the first, live until the end
    >>> output = handle.wait(timeout=60)    # the WorkflowRunOutput, or the run's error raised

    The thread runs the run on an event loop of its own and is a daemon: a process that
    exits does not wait for it (with storage, such a run can be resumed).
    """

    def __init__(
        self,
        workflow: Workflow,
        input: Any,
        *,
        run_id: str | None = None,
        on_event: EventCallback | None = None,
        options: dict[str, Any],
    ) -> None:
        self.workflow = workflow
        #: the run's id, chosen before it starts
        self.run_id: str = run_id or new_id()
        self._events: list[Event] = []
        self._changed = threading.Condition()
        self._done = False
        self._output: WorkflowRunOutput | None = None
        self._error: BaseException | None = None
        coro = _run_coroutine(workflow, input, self.run_id, self._keep, on_event, options)
        context = contextvars.copy_context()  # the caller's context variables, as run() keeps them
        self._thread = threading.Thread(
            target=context.run, args=(self._main, coro), name=f"plait-run-{self.run_id}", daemon=True
        )
        self._thread.start()

    def _keep(self, event: Event) -> None:
        with self._changed:
            self._events.append(event)
            self._changed.notify_all()

    def _main(self, coro: Coroutine[Any, Any, WorkflowRunOutput]) -> None:
        output: WorkflowRunOutput | None = None
        error: BaseException | None = None
        try:
            output = asyncio.run(coro)
        except BaseException as exc:  # the run's failure is the waiter's to see, not this thread's
            error = exc
        with self._changed:
            self._output, self._error, self._done = output, error, True
            self._changed.notify_all()

    def status(self) -> RunStatus:
        """RUNNING while the run goes on, then how it ended (COMPLETED, PAUSED, ERROR, ...)."""
        with self._changed:
            return _status(self._done, self._output, self._error)

    def done(self) -> bool:
        """Whether the run has ended (completed, paused, failed or cancelled)."""
        with self._changed:
            return self._done

    def wait(self, timeout: float | None = None) -> WorkflowRunOutput:
        """Wait for the run's end and return its output, or raise what the run raised
        (a :class:`~plait.errors.StepError` naming the failed step); :class:`TimeoutError`
        when ``timeout`` seconds pass first (the run goes on)."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._done, timeout):
                raise TimeoutError(f"run {self.run_id!r} still running after {timeout} seconds")
            if self._error is not None:
                raise self._error
            assert self._output is not None
            return self._output

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """Every event of the run from its first, then the new ones as they come, until it
        ends; each call starts over. ``timeout`` bounds each wait for the next event
        (:class:`TimeoutError`)."""
        index = 0
        while True:
            with self._changed:
                if not self._changed.wait_for(functools.partial(self._news, index), timeout):
                    raise TimeoutError(f"run {self.run_id!r}: no event in {timeout} seconds")
                batch = self._events[index:]
                done = self._done
            index += len(batch)
            yield from batch
            if done and not batch:
                return

    def _news(self, index: int) -> bool:
        return index < len(self._events) or self._done

    def cancel(self) -> bool:
        """Stop the run at its next safe point (see :meth:`Workflow.cancel_run
        <plait.Workflow.cancel_run>`); False when it has already ended."""
        return _cancel_run(self.run_id, self.done())

    def __repr__(self) -> str:
        return f"RunHandle({self.workflow.name!r}, run_id={self.run_id!r}, status={self.status().value})"


class AsyncRunHandle:
    """A run going on as a task of the current event loop
    (``await`` :meth:`Workflow.astart <plait.Workflow.astart>`).

    >>> handle = await workflow.astart("topic")
    >>> async for event in handle.events(): ...
    >>> output = await handle.wait()
    """

    def __init__(
        self,
        workflow: Workflow,
        input: Any,
        *,
        run_id: str | None = None,
        on_event: EventCallback | None = None,
        options: dict[str, Any],
    ) -> None:
        self.workflow = workflow
        #: the run's id, chosen before it starts
        self.run_id: str = run_id or new_id()
        self._events: list[Event] = []
        self._waiters: list[asyncio.Future[None]] = []
        loop = asyncio.get_running_loop()
        coro = _run_coroutine(workflow, input, self.run_id, self._keep, on_event, options)
        #: the task executing the run
        self.task: asyncio.Task[WorkflowRunOutput] = loop.create_task(coro, name=f"plait-run-{self.run_id}")
        self.task.add_done_callback(self._ended)

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _keep(self, event: Event) -> None:
        self._events.append(event)
        self._wake()

    def _ended(self, task: asyncio.Task[WorkflowRunOutput]) -> None:
        if not task.cancelled():
            task.exception()  # retrieved here; wait() raises it again
        self._wake()

    def _result(self) -> tuple[WorkflowRunOutput | None, BaseException | None]:
        if self.task.cancelled():
            return None, asyncio.CancelledError()
        error = self.task.exception()
        return (None, error) if error is not None else (self.task.result(), None)

    def status(self) -> RunStatus:
        """RUNNING while the run goes on, then how it ended (COMPLETED, PAUSED, ERROR, ...)."""
        if not self.task.done():
            return RunStatus.RUNNING
        return _status(True, *self._result())

    def done(self) -> bool:
        """Whether the run has ended (completed, paused, failed or cancelled)."""
        return self.task.done()

    async def wait(self, timeout: float | None = None) -> WorkflowRunOutput:
        """The run's output once it ends, or what it raised; :class:`TimeoutError` when
        ``timeout`` seconds pass first (the run goes on; cancelling the waiter does not
        cancel the run)."""
        try:
            return await asyncio.wait_for(asyncio.shield(self.task), timeout)
        except TimeoutError:
            if self.task.done():
                raise  # the run itself raised it
            raise TimeoutError(f"run {self.run_id!r} still running after {timeout} seconds") from None

    async def events(self) -> AsyncIterator[Event]:
        """Every event of the run from its first, then the new ones as they come, until it ends."""
        index = 0
        while True:
            if index < len(self._events):
                batch = self._events[index:]
                index += len(batch)
                for event in batch:
                    yield event
                continue
            if self.task.done():
                return
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    def cancel(self) -> bool:
        """Stop the run at its next safe point (see :meth:`Workflow.cancel_run
        <plait.Workflow.cancel_run>`); False when it has already ended."""
        return _cancel_run(self.run_id, self.task.done())

    def __repr__(self) -> str:
        return f"AsyncRunHandle({self.workflow.name!r}, run_id={self.run_id!r}, status={self.status().value})"


def _checked(workflow: Workflow, options: dict[str, Any]) -> dict[str, Any]:
    """``start``'s run options, checked as ``run`` checks them."""
    from plait._workflow_checks import check_run_options

    unknown = set(options) - set(RUN_OPTIONS)
    if unknown:
        raise DefinitionError(
            f"Workflow {workflow.name!r}: start(): unknown option(s) {', '.join(sorted(unknown))}; "
            f"expected some of run_id, {', '.join(RUN_OPTIONS)}"
        )
    user_id, metadata, dependencies = (options.get(k) for k in ("user_id", "metadata", "dependencies"))
    if user_id is not None or metadata is not None or dependencies is not None:
        check_run_options(workflow.name, user_id, metadata, dependencies)
    given = {k: options.pop(k) for k in MEDIA_FIELDS if options.get(k) is not None}
    if given:  # checked now, as run() checks them: a wrong type fails start(), not the run
        from plait._parts import run_media

        options.update(run_media(f"Workflow {workflow.name!r}: start()", **given) or {})
    return options


def start(
    workflow: Workflow,
    input: Any,
    run_id: str | None,
    on_event: EventCallback | None,
    options: dict[str, Any],
) -> RunHandle:
    """:meth:`Workflow.start <plait.Workflow.start>`."""
    return RunHandle(workflow, input, run_id=run_id, on_event=on_event, options=_checked(workflow, options))


async def astart(
    workflow: Workflow,
    input: Any,
    run_id: str | None,
    on_event: EventCallback | None,
    options: dict[str, Any],
) -> AsyncRunHandle:
    """:meth:`Workflow.astart <plait.Workflow.astart>`."""
    return AsyncRunHandle(
        workflow, input, run_id=run_id, on_event=on_event, options=_checked(workflow, options)
    )


_publish(__name__, globals())
