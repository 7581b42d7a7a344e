"""Runners: where concurrent and blocking work executes.

The executor never starts threads or tasks for parallel branches itself; it hands
them to a :class:`Runner`. The default :class:`InProcessRunner` runs branches as
asyncio tasks on the current loop and blocking (sync) work in a bounded thread
pool with the caller's context (tracing spans, run context) copied. Another
runner, such as one on a distributed engine, plugs in through the
``register_runners`` hook without changes to the primitives.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from plait._engine import Branch
    from plait._io import StepOutput

__all__ = ["InProcessRunner", "Runner", "default_runner", "gather_first_error"]

T = TypeVar("T")


@runtime_checkable
class Runner(Protocol):
    """What the executor needs from a runner."""

    name: str

    async def run_branches(
        self, branches: Sequence[Branch], *, max_concurrency: int | None = None
    ) -> list[StepOutput]:
        """Run every branch (``await branch.run()`` runs one in this process) and return
        their outputs in declaration order. The first failure cancels the others and is
        raised; cancelling the caller cancels every branch."""
        ...

    async def run_blocking(self, fn: Callable[[], T]) -> T:
        """Run blocking ``fn`` without blocking the event loop, with the current context."""
        ...


class InProcessRunner:
    """Branches as asyncio tasks; blocking work in a bounded, lazily created thread pool.

    ``max_threads`` bounds the pool (default ``PLAIT_MAX_THREADS`` or 128): enough
    for wide fan-outs of blocking steps, bounded so a runaway fan-out cannot
    exhaust the machine.
    """

    name = "inprocess"

    def __init__(self, max_threads: int | None = None) -> None:
        self.max_threads = max_threads or int(os.environ.get("PLAIT_MAX_THREADS", "128"))
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.max_threads, thread_name_prefix="plait")
        return self._pool

    async def run_blocking(self, fn: Callable[[], T]) -> T:
        context = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor(), context.run, fn)

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
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


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
