"""The worker side: run a shipped branch and stream its events, then its result, back.

A branch arrives as a cloudpickled :class:`~plait.runners.BranchPayload`. It runs
through the core's :func:`~plait.runners.run_branch_payload` (so retries, timeouts
and spans are the core's, exactly as in process) while its events are collected
with a per-branch sequence number and handed back in batches. Every message is
a tuple:

* ``("events", first_seq, [event, ...])``
* ``("result", cloudpickled BranchResult)``: always the last message on success
* ``("error", description)``: the last message on failure (see :func:`describe_error`)

Two ways to run the same stream: :class:`BranchActor`, an async actor that runs
many branches at once on its event loop, and :func:`run_branch_task`, a task for
branches that ask for resources of their own (``num_gpus=...``).

This module imports Ray; only the runner imports it, once Ray is in use.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import traceback
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from typing import Any

import ray
from ray import cloudpickle

from plait.errors import StepError
from plait.events import Event
from plait.runners import run_branch_payload

__all__ = ["BranchActor", "describe_error", "run_branch_task"]

Message = tuple[Any, ...]

#: worker_setup callables already run in this process (by their pickled bytes)
_setups_done: set[bytes] = set()
_setup_lock = threading.Lock()


def _setup_once(setup: bytes | None) -> None:
    """Run the runner's ``worker_setup`` once per worker process (tracing, logging...)."""
    if setup is None:
        return
    with _setup_lock:
        if setup in _setups_done:
            return
        fn: Callable[[], None] = cloudpickle.loads(setup)
        fn()
        _setups_done.add(setup)


class _Execution:
    """One branch running on this process's event loop, its events buffered for the stream."""

    def __init__(self, blob: bytes, listening: bool) -> None:
        self._blob = blob
        self._listening = listening
        self._events: list[Event] = []
        self._sent = 0
        self._lock = threading.Lock()
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wake = asyncio.Event()

    def _emit(self, event: Event) -> None:
        # Sync steps emit from worker threads; the buffer is locked and the loop woken safely.
        with self._lock:
            self._events.append(event)
        if threading.get_ident() == self._loop_thread:
            self._wake.set()
        else:
            self._loop.call_soon_threadsafe(self._wake.set)

    def _batch(self) -> Message | None:
        with self._lock:
            events, self._events = self._events, []
        if not events:
            return None
        first, self._sent = self._sent, self._sent + len(events)
        return ("events", first, events)

    async def messages(self) -> AsyncGenerator[Message, None]:
        try:
            payload = cloudpickle.loads(self._blob)
        except Exception as exc:
            # Typically a module the step comes from is not importable on the worker.
            yield ("error", describe_error(exc, note="the branch could not be unpickled in the Ray worker"))
            return
        task = asyncio.ensure_future(run_branch_payload(payload, self._emit if self._listening else None))
        task.add_done_callback(lambda _: self._wake.set())
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                batch = self._batch()
                if batch is not None:
                    yield batch
                if task.done():
                    break
            batch = self._batch()  # anything emitted between the last batch and the end
            if batch is not None:
                yield batch
            error = task.exception()
            if error is not None:
                yield ("error", describe_error(error))
                return
            try:
                result = cloudpickle.dumps(task.result())  # type: ignore[no-untyped-call]
            except Exception as exc:
                yield (
                    "error",
                    describe_error(exc, note="the branch's output or session state cannot be sent back"),
                )
                return
            yield ("result", result)
        finally:
            # Cancelled (ray.cancel) or closed early: stop the branch, not just the stream.
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)


def describe_error(exc: BaseException, note: str | None = None) -> dict[str, Any]:
    """A failure as plain data the driver turns back into a StepError: the message, the
    step path, the user's exception (pickled when it can be) and the full remote traceback."""
    cause: BaseException | None = exc.__cause__ if isinstance(exc, StepError) else exc
    cause_blob = None
    if cause is not None:
        try:
            cause_blob = cloudpickle.dumps(cause)  # type: ignore[no-untyped-call]
        except Exception:
            cause_blob = None
    message = str(exc) if isinstance(exc, StepError) else f"{type(exc).__name__}: {exc}"
    if note:
        message = f"{note}: {message}"
    return {
        "message": message,
        "step_path": exc.step_path if isinstance(exc, StepError) else None,
        "step_name": exc.step_name if isinstance(exc, StepError) else None,
        "cause": cause_blob,
        "cause_type": type(cause).__qualname__ if cause is not None else None,
        "cause_text": str(cause) if cause is not None else None,
        "traceback": "".join(traceback.format_exception(exc)),
        "where": f"pid {os.getpid()} on {socket.gethostname()}",
        # the calls the branch recorded before failing (plain data), for the driver to store
        "recording": getattr(exc, "plait_recording", None),
    }


@ray.remote
class BranchActor:
    """An async actor: many branches at once on one event loop (I/O-bound steps)."""

    def __init__(self, setup: bytes | None) -> None:
        _setup_once(setup)

    @ray.method(num_returns="streaming")  # type: ignore[misc]
    async def run(self, blob: bytes, listening: bool) -> AsyncIterator[Message]:
        async for message in _Execution(blob, listening).messages():
            yield message

    def pid(self) -> int:
        return os.getpid()


def run_branch_task(blob: bytes, listening: bool, setup: bytes | None) -> Iterator[Message]:
    """A Ray task (streaming generator) for a branch with resource options of its own.
    It drives a private event loop one message at a time."""
    _setup_once(setup)
    loop = asyncio.new_event_loop()

    async def start() -> AsyncGenerator[Message, None]:
        return _Execution(blob, listening).messages()

    stream = loop.run_until_complete(start())
    try:
        while True:
            try:
                message = loop.run_until_complete(anext(stream))
            except StopAsyncIteration:
                return
            yield message
    finally:
        loop.run_until_complete(stream.aclose())
        loop.close()
