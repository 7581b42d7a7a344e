"""Driving the async executor from sync code: ``run()`` and ``run(stream=True)``.

Entry points are written once, async: ``arun()`` returns a coroutine, or with
``stream=True`` an :class:`EventStream`, and ``run()`` is ``sync(self.arun(...))``.

Without a running event loop in this thread, a private loop per thread is reused
(creating a loop per call would cost more than a whole short workflow), and a new
task's first step runs in place when it is all the loop has to do
(:func:`_first_step`): a run whose steps never wait finishes there, without a turn
of the loop (a third of the cost of a one-step run). Inside a
running loop (Jupyter, an async web handler calling ``run()``), the work moves to
a fresh thread with its own loop and the caller's context, so ``run()`` works
everywhere.

``run(stream=True)`` (:func:`stream`) always runs on a thread of its own with a loop of its
own (:class:`_Runner`, reused from one stream to the next), handing the events to the
reader through a bounded :class:`_Channel`: the reader sees each event as it happens, even
while a sync step blocks the run's loop.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from types import CoroutineType
from typing import Any, TypeVar, overload

__all__ = ["EventStream", "astream", "iterate_sync", "run_sync", "stream", "sync"]

Listener = Callable[[Any], None]
_DONE = object()

T = TypeVar("T")

_local = threading.local()
_loops: list[asyncio.AbstractEventLoop] = []
_loops_lock = threading.Lock()


def _thread_loop() -> asyncio.AbstractEventLoop:
    loop: asyncio.AbstractEventLoop | None = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _local.loop = loop
        with _loops_lock:
            _loops.append(loop)
    return loop


@atexit.register
def _close_loops() -> None:
    with _loops_lock:
        for loop in _loops:
            if not loop.is_running() and not loop.is_closed():
                _shutdown(loop)
        _loops.clear()


def _shutdown(loop: asyncio.AbstractEventLoop) -> None:
    """Close a loop the way asyncio.run does: async generators first (providers park
    their HTTP clients' cleanup in one), then the default executor."""
    try:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


def _in_running_loop() -> bool:
    return asyncio._get_running_loop() is not None  # no RuntimeError raised and caught per run


def _first_step(loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> bool:
    """Run the first step of ``task``, just created on ``loop`` (not running), in place
    of a turn of the loop when that step is the only thing ready; return whether the
    task is done. This is what ``run_until_complete`` would do first, without its
    setup, its poll for I/O and its second turn for the done callback; the loop is
    marked running in this thread meanwhile, with its async-generator hooks, as
    ``run_forever`` does. Other loops (uvloop) and a busier loop keep the usual path.
    (Python 3.12's eager tasks do this natively.)"""
    ready = getattr(loop, "_ready", None)
    if ready is None or len(ready) != 1:
        return False
    handle: asyncio.Handle = ready.popleft()
    hooks = sys.get_asyncgen_hooks()
    sys.set_asyncgen_hooks(
        firstiter=loop._asyncgen_firstiter_hook,  # type: ignore[attr-defined]
        finalizer=loop._asyncgen_finalizer_hook,  # type: ignore[attr-defined]
    )
    asyncio._set_running_loop(loop)
    try:
        # Handle._run without its frame: a task's step reports its own errors in the task
        handle._context.run(handle._callback, *handle._args)  # type: ignore[attr-defined]
    finally:
        asyncio._set_running_loop(None)
        sys.set_asyncgen_hooks(*hooks)
    return task.done()


def _finish(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> T:
    # loop.create_task without its frame and checks (a loop of plait's own, open), unless
    # someone gave the loop a task factory
    task = asyncio.Task(coro, loop=loop) if loop.get_task_factory() is None else loop.create_task(coro)
    try:
        if _first_step(loop, task):
            return task.result()
        return loop.run_until_complete(task)
    except BaseException as exc:
        # KeyboardInterrupt or the like: cancel the run so its branches stop too, saying why
        # (the run stores the reason as its error).
        if not task.done():
            task.cancel("interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else None)
            try:
                loop.run_until_complete(task)
            except BaseException:
                pass
        elif not task.cancelled():
            task.exception()  # raised here already (Ctrl-C in a sync step): retrieved, not logged
        raise


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from sync code and return its result."""
    if asyncio._get_running_loop() is None:  # not _in_running_loop(): a call less per run()
        return _finish(_thread_loop(), coro)
    context = contextvars.copy_context()

    def in_fresh_loop() -> T:
        loop = asyncio.new_event_loop()
        try:
            return _finish(loop, coro)
        finally:
            _shutdown(loop)

    with ThreadPoolExecutor(1, thread_name_prefix="plait-run") as pool:
        return pool.submit(context.run, in_fresh_loop).result()


def iterate_sync(agen: AsyncIterator[T]) -> Iterator[T]:
    """Iterate an async iterator from sync code; closing early closes it properly."""
    if _in_running_loop():
        yield from _iterate_in_thread(agen)
        return
    loop = _thread_loop()

    async def step() -> T:
        return await agen.__anext__()

    try:
        while True:
            try:
                item = _finish(loop, step())
            except StopAsyncIteration:
                return
            yield item
    finally:
        aclose = getattr(agen, "aclose", None)
        if aclose is not None and not loop.is_closed():
            loop.run_until_complete(aclose())


def _iterate_in_thread(agen: AsyncIterator[T]) -> Iterator[T]:
    context = contextvars.copy_context()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="plait-stream", daemon=True)
    thread.start()

    def call(coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    async def step() -> Any:
        return await agen.__anext__()

    try:
        while True:
            try:
                item = context.run(call, step())
            except StopAsyncIteration:
                return
            yield item
    finally:
        aclose = getattr(agen, "aclose", None)
        if aclose is not None:
            call(aclose())
        asyncio.run_coroutine_threadsafe(loop.shutdown_asyncgens(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


async def astream(start: Callable[[Listener], Coroutine[Any, Any, Any]]) -> AsyncIterator[Any]:
    """Run ``start(listener)`` as a task and yield what it passes to ``listener``, from any
    thread, in order. The task's error is raised after its last item; closing the
    iterator early cancels the task."""
    loop = asyncio.get_running_loop()
    loop_thread = threading.get_ident()
    queue: asyncio.Queue[Any] = asyncio.Queue()

    def listener(item: Any) -> None:
        if threading.get_ident() == loop_thread:
            queue.put_nowait(item)
        else:
            loop.call_soon_threadsafe(queue.put_nowait, item)

    task = asyncio.ensure_future(start(listener))
    task.add_done_callback(lambda _: queue.put_nowait(_DONE))
    try:
        while (item := await queue.get()) is not _DONE:
            yield item
        task.result()
    finally:
        if not task.done():
            # the reader's cancel reason goes on to the run ("interrupted (Ctrl-C)" is stored)
            stopping = sys.exc_info()[1]
            reason = (
                stopping.args[0] if isinstance(stopping, asyncio.CancelledError) and stopping.args else None
            )
            task.cancel(reason)
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        elif not task.cancelled():
            task.exception()  # raised out of the loop already (Ctrl-C in a sync step): not logged again


#: how many events a sync stream holds for a reader that has not taken them yet; the run
#: waits (at its next event) while this many wait, so a slow reader bounds the memory
STREAM_BUFFER = 1024


class _Channel:
    """A run's events on their way from the run's thread to the reader's: bounded (the run
    waits while :data:`STREAM_BUFFER` events wait for the reader), handed over in batches
    (one lock round per batch, not per event), and closed when the reader stops early (the
    events still coming are dropped and nothing waits for room any more)."""

    __slots__ = (
        "_changed",
        "_closed",
        "_ended",
        "_items",
        "_limit",
        "_lock",
        "_reader",
        "_waiting",
        "first_run_id",
    )

    def __init__(self, limit: int) -> None:
        self._items: list[Any] = []
        self._lock = threading.Lock()  # taken directly where no wait is needed: cheaper
        self._changed = threading.Condition(self._lock)
        self._limit = limit
        self._closed = False
        self._ended = False
        self._waiting = 0  # threads waiting in _changed (the reader for events, the run for room)
        self._reader = threading.get_ident()
        #: the run id of the first event (a workflow's: the top-level run), "" if it has none
        self.first_run_id: str | None = None

    def put(self, item: Any) -> None:
        """The run's listener (from the run's thread or any other but the reader's)."""
        with self._lock:
            if self._closed:
                return
            if self.first_run_id is None:
                self.first_run_id = getattr(item, "run_id", None) or ""
            if len(self._items) >= self._limit and threading.get_ident() != self._reader:
                self._wait(self._room)
                if self._closed:
                    return
            self._items.append(item)
            if self._waiting:
                self._changed.notify_all()  # the reader waits for the first

    def _wait(self, predicate: Callable[[], bool]) -> None:
        self._waiting += 1
        try:
            self._changed.wait_for(predicate)
        finally:
            self._waiting -= 1

    def _room(self) -> bool:
        return self._closed or len(self._items) < self._limit

    def _news(self) -> bool:
        return bool(self._items) or self._ended

    def take(self) -> list[Any]:
        """Every event waiting, once there is one; an empty list once the run has ended."""
        with self._lock:
            if not self._items and not self._ended:
                self._wait(self._news)
            items, self._items = self._items, []
            if self._waiting:
                self._changed.notify_all()  # the run waits for room
            return items

    def end(self) -> None:
        with self._lock:
            self._ended = True
            self._changed.notify_all()

    def wait_ended(self) -> None:
        with self._lock:
            self._wait(lambda: self._ended)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._items.clear()
            self._changed.notify_all()


#: how many stream threads wait idle for the next ``stream=True`` run (more may run at once)
IDLE_RUNNERS = 4

_idle: list[_Runner] = []
_idle_lock = threading.Lock()


class _Runner:
    """A thread with an event loop of its own that runs sync streams' runs, one at a time.
    Between runs it waits idle (:data:`IDLE_RUNNERS` at most), so a stream costs a hand-over
    to a waiting thread, not a new thread and loop (as :func:`run_sync` reuses its loop)."""

    __slots__ = ("loop", "thread")

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._main, name="plait-stream", daemon=True)
        self.thread.start()

    def _main(self) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        while True:
            try:
                loop.run_forever()
            except BaseException:  # a step's SystemExit: its task holds it, its reader raises it
                continue
            break
        rest = asyncio.all_tasks(loop)  # tasks its runs left behind, cancelled as asyncio.run does
        for task in rest:
            task.cancel()
        if rest:
            loop.run_until_complete(asyncio.gather(*rest, return_exceptions=True))
        _shutdown(loop)

    def start(
        self, coro: Coroutine[Any, Any, Any], context: contextvars.Context, channel: _Channel
    ) -> list[Any]:
        """Run ``coro`` as a task in ``context``; ``channel`` ends when it is done (then this
        runner is idle again). Returns a list that holds the task once it exists."""
        holder: list[asyncio.Task[Any]] = []

        def begin() -> None:
            task = self.loop.create_task(coro, context=context)
            holder.append(task)
            task.add_done_callback(done)

        def done(_: Any) -> None:
            with _idle_lock:  # idle before the reader hears of the end: its next stream reuses it
                idle = len(_idle) < IDLE_RUNNERS
                if idle:
                    _idle.append(self)
            if not idle:
                self.loop.stop()  # enough wait idle: this one ends
            channel.end()

        self.loop.call_soon_threadsafe(begin)
        return holder

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.loop.stop)


def _runner() -> _Runner:
    with _idle_lock:
        if _idle:
            return _idle.pop()
    return _Runner()


@atexit.register
def _stop_runners() -> None:
    """At exit, the idle stream threads close their loops (providers' clients closed)."""
    with _idle_lock:
        runners = list(_idle)
        _idle.clear()
    for runner in runners:
        runner.stop()
    for runner in runners:
        runner.thread.join(5)


def _forget_runners() -> None:  # a forked child has none of its parent's threads
    _idle.clear()


os.register_at_fork(after_in_child=_forget_runners)


def _stop_between_steps(run_id: str | None) -> None:
    """Ask workflow run ``run_id`` to stop before its next step, as ``cancel_run`` does: a
    cancelled task stops at its next ``await``, and sync steps one after another never
    await (the run stops at whichever comes first)."""
    if run_id:
        from plait import _cancel

        run = _cancel.active_run(run_id)
        if run is not None:
            run.request_cancel()


def stream(start: Callable[[Listener], Coroutine[Any, Any, Any]]) -> Iterator[Any]:
    """The sync form of :func:`astream`: the run goes on a thread and event loop of its own
    (:class:`_Runner`, with the reader's context variables), and hands each event to the
    reader at once, even while a sync step blocks the run's loop; a reader that falls
    behind makes the run wait at its next event once :data:`STREAM_BUFFER` are waiting.
    The run's error is raised in the reader after its last event; stopping early
    (``break``, ``close()``, an error or Ctrl-C in the reader) cancels the run and waits
    for it to end (a second Ctrl-C stops waiting)."""
    channel = _Channel(STREAM_BUFFER)
    context = contextvars.copy_context()
    coro = start(channel.put)
    try:
        runner = _runner()
        holder = runner.start(coro, context, channel)
    except BaseException:  # no thread for it (the process is out of threads): it never ran
        coro.close()
        raise
    reason: str | None = None
    ended = False
    try:
        while items := channel.take():
            yield from items
        ended = True
    except KeyboardInterrupt:
        reason = "interrupted (Ctrl-C)"
        raise
    finally:
        if not ended:
            _stop_between_steps(channel.first_run_id)
            # after begin() (callbacks run in order): the task is in the holder by then
            with contextlib.suppress(RuntimeError):  # the runner ended meanwhile: so did the run
                runner.loop.call_soon_threadsafe(lambda: holder[0].cancel(reason))
            channel.close()  # after: the run may wait for room, and then takes the cancel
            if not sys.is_finalizing():  # (as the interpreter exits, the run's thread cannot go on)
                channel.wait_ended()
                task = holder[0]
                if not task.cancelled():
                    task.exception()  # it failed while stopping: retrieved, not logged
    task = holder[0]
    task.result()


class EventStream(AsyncIterator[Any]):
    """What ``arun(..., stream=True)`` returns: an async iterator over what ``start(listener)``
    passes to its listener (:func:`astream`); :func:`sync` drives the same run from sync
    code through :func:`stream` instead."""

    __slots__ = ("_iterator", "start")

    def __init__(self, start: Callable[[Listener], Coroutine[Any, Any, Any]]) -> None:
        self.start = start
        self._iterator: AsyncIterator[Any] | None = None

    def _events(self) -> AsyncIterator[Any]:
        if self._iterator is None:
            self._iterator = astream(self.start)
        return self._iterator

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._events()

    async def __anext__(self) -> Any:
        return await self._events().__anext__()

    async def aclose(self) -> None:
        """Stop early: cancel the run if it started."""
        if self._iterator is not None:
            await self._iterator.aclose()  # type: ignore[attr-defined]


@overload
def sync(result: AsyncIterator[T]) -> Iterator[T]: ...
@overload
def sync(result: Coroutine[Any, Any, T]) -> T: ...
@overload
def sync(result: Coroutine[Any, Any, T] | AsyncIterator[Any]) -> T | Iterator[Any]: ...
def sync(result: Coroutine[Any, Any, T] | AsyncIterator[Any]) -> T | Iterator[Any]:
    """The sync form of what an async entry point returned: its result, or an iterator of events."""
    if type(result) is CoroutineType:  # not isinstance: an ABC's check costs more than a short run
        return run_sync(result)  # type: ignore[no-any-return]
    if type(result) is EventStream:
        return stream(result.start)
    if hasattr(result, "__anext__"):
        return iterate_sync(result)  # type: ignore[arg-type]
    return run_sync(result)  # type: ignore[arg-type]
