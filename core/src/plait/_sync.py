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
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import sys
import threading
from collections import deque
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
    if not _in_running_loop():
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
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        elif not task.cancelled():
            task.exception()  # raised out of the loop already (Ctrl-C in a sync step): not logged again


def stream(start: Callable[[Listener], Coroutine[Any, Any, Any]]) -> Iterator[Any]:
    """The sync form of :func:`astream`. On this thread's own loop, items are buffered
    and the loop runs only when the buffer is empty: a run that produces many events
    in one go hands them over without a loop round trip per event."""
    if _in_running_loop():
        yield from iterate_sync(astream(start))
        return
    loop = _thread_loop()
    loop_thread = threading.get_ident()
    buffer: deque[Any] = deque()
    waiter: list[asyncio.Future[None] | None] = [None]

    def wake() -> None:
        future = waiter[0]
        if future is not None and not future.done():
            future.set_result(None)

    def listener(item: Any) -> None:
        buffer.append(item)
        if threading.get_ident() != loop_thread:
            loop.call_soon_threadsafe(wake)
        elif waiter[0] is not None:  # on the loop's thread nobody waits in between: no race
            wake()

    task = loop.create_task(start(listener))
    try:
        if not _first_step(loop, task):
            task.add_done_callback(lambda _: wake())
        while True:
            while buffer:
                yield buffer.popleft()
            if task.done():
                break
            future: asyncio.Future[None] = loop.create_future()
            waiter[0] = future
            loop.run_until_complete(future)
        task.result()
    finally:
        if not task.done():
            task.cancel()
            loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
        elif not task.cancelled():
            task.exception()  # raised out of the loop already (Ctrl-C in a sync step): not logged again


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
