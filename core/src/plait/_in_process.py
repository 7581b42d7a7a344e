"""The in-process runner (:class:`InProcessRunner`, exported by :mod:`plait.runners`): branches
as asyncio tasks on the current loop (:func:`gather_first_error`), blocking work in a bounded
pool of daemon threads (:class:`BlockingPool`)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import os
import queue
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from plait._io import StepOutput
    from plait.runners import Branch

__all__ = ["BlockingPool", "InProcessRunner", "default_runner", "gather_first_error"]

T = TypeVar("T")


class _Job:
    __slots__ = ("abandoned", "fn", "future")

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.abandoned = False


class BlockingPool:
    """Daemon worker threads for blocking (sync) work, at most ``max_threads`` of them
    busy with work someone still waits for.

    Sync code cannot be interrupted: when a step times out or its branch is cancelled,
    its thread goes on to the end of the function. Such a thread is *abandoned*: it no
    longer counts against ``max_threads`` (a replacement is started for queued work, so
    abandoned steps cannot starve healthy ones), it exits when its function returns, and
    since workers are daemon threads the interpreter does not wait for it at exit.
    """

    def __init__(self, max_threads: int, name: str = "plait") -> None:
        self.max_threads = max_threads
        self.name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        #: one permit per idle worker (ThreadPoolExecutor's scheme: no idle-count races)
        self._idle = threading.Semaphore(0)
        self._counted = 0  # live workers that are not abandoned
        self._abandoned = 0  # workers still running abandoned work
        self._started = 0
        self._closed = False

    def submit(self, fn: Callable[[], Any]) -> _Job:
        job = _Job(fn)
        with self._lock:
            if self._closed:
                raise RuntimeError(f"BlockingPool {self.name!r} is closed")
            self._jobs.put(job)
            if not self._idle.acquire(blocking=False):
                self._spawn()
        return job

    def abandon(self, job: _Job) -> None:
        """Nobody waits for ``job`` any more: stop counting its thread (if it runs)."""
        with self._lock:
            if job.abandoned or job.future.done():
                return
            job.abandoned = True
            if job.future.running():
                self._counted -= 1
                self._abandoned += 1
                if self._jobs.qsize():  # queued work may have been waiting for this slot
                    self._spawn()

    @property
    def abandoned_threads(self) -> int:
        """Threads still running abandoned work."""
        return self._abandoned

    def close(self) -> None:
        """Let idle workers exit; running ones exit when their work returns."""
        with self._lock:
            self._closed = True
            for _ in range(self._counted):
                self._jobs.put(None)

    def _spawn(self) -> None:  # holding the lock
        if self._counted >= self.max_threads:
            return  # the job waits in the queue for the next free worker
        self._counted += 1
        self._started += 1
        threading.Thread(target=self._work, name=f"{self.name}-{self._started}", daemon=True).start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                with self._lock:
                    self._counted -= 1
                return
            if job.future.set_running_or_notify_cancel():
                try:
                    job.future.set_result(job.fn())
                except BaseException as exc:
                    job.future.set_exception(exc)
            with self._lock:
                if job.abandoned:  # this thread stopped counting when the job was abandoned
                    self._abandoned -= 1
                    return
            self._idle.release()


class InProcessRunner:
    """Branches as asyncio tasks; blocking work in a bounded, lazily created thread pool.

    ``max_threads`` bounds the pool (default ``PLAIT_MAX_THREADS`` or 128): enough
    for wide fan-outs of blocking steps, bounded so a runaway fan-out cannot
    exhaust the machine.
    """

    name = "inprocess"

    def __init__(self, max_threads: int | None = None) -> None:
        self.max_threads = max_threads or int(os.environ.get("PLAIT_MAX_THREADS", "128"))
        self._pool: BlockingPool | None = None
        self._lock = threading.Lock()

    def _executor(self) -> BlockingPool:
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = BlockingPool(self.max_threads)
        return self._pool

    async def run_blocking(self, fn: Callable[[], T]) -> T:
        """``fn()`` in a worker thread with the current context. Cancelling the caller
        (a timeout, a failed sibling branch, Ctrl-C) abandons the thread (see BlockingPool)."""
        context = contextvars.copy_context()
        pool = self._executor()
        job = pool.submit(lambda: context.run(fn))
        try:
            result: T = await asyncio.wrap_future(job.future)
        except asyncio.CancelledError:
            pool.abandon(job)
            raise
        return result

    async def run_branches(
        self, branches: Sequence[Branch], *, max_concurrency: int | None = None
    ) -> list[StepOutput]:
        if max_concurrency is None or max_concurrency >= len(branches):
            return await gather_first_error([branch.run() for branch in branches])
        semaphore = asyncio.Semaphore(max_concurrency)

        async def limited(branch: Branch) -> StepOutput:
            async with semaphore:
                return await branch.run()

        return await gather_first_error([limited(branch) for branch in branches])

    def shutdown(self) -> None:
        """Close the pool: idle workers exit now, busy ones when their work returns."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()


async def gather_first_error(coroutines: Sequence[Awaitable[T]]) -> list[T]:
    """Run coroutines concurrently; results in order. On the first failure, cancel the
    rest, wait for them to finish, and raise that failure (the earliest-declared one
    if several failed together). Cancelling the caller cancels them all."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    if not tasks:
        return []
    try:
        _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except BaseException:
        await _cancel_all(tasks)
        raise
    if pending:
        await _cancel_all(list(pending))
    errors = [t.exception() for t in tasks if t.done() and not t.cancelled()]
    first = next((e for e in errors if e is not None), None)
    if first is not None:
        raise first
    return [task.result() for task in tasks]


async def _cancel_all(tasks: Sequence[asyncio.Future[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


_default: InProcessRunner | None = None


def default_runner() -> InProcessRunner:
    """The process-wide in-process runner."""
    global _default
    if _default is None:
        _default = InProcessRunner()
    return _default
