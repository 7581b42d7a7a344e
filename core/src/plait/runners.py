"""Runners: where concurrent and blocking work executes, and the contract a runner implements.

The executor never starts threads or tasks for parallel branches itself; it hands
them to a :class:`Runner`. The default :class:`InProcessRunner` runs branches as
asyncio tasks on the current loop and blocking (sync) work in a bounded thread
pool with the caller's context (tracing spans, run context) copied. Another
runner, such as one on a distributed engine, plugs in through the
``register_runners`` hook without changes to the primitives.

What a runner plugin needs is public here: a :class:`Branch` is what it is handed
(``await branch.run()`` runs it in this process); to run it elsewhere it ships
``branch.payload()`` (a :class:`BranchPayload`), executes it there with
:func:`run_branch_payload`, and takes the :class:`BranchResult` back with
``await branch.aapply(result)`` (``branch.apply(result)`` in sync code: the executor then stores
the calls the branch recorded when the runner returns). :func:`resolve_runner` turns a runner's name into one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import importlib
import os
import queue
import sys
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from plait._context import ENGINE, RunState, StepContext
from plait._io import StepInput, StepOutput
from plait._pause import PauseRequested
from plait.errors import DefinitionError

if TYPE_CHECKING:
    from plait._context import WorkflowFrame
    from plait._node import StepNode
    from plait.events import Event

__all__ = [
    "BlockingPool",
    "Branch",
    "BranchPayload",
    "BranchResult",
    "InProcessRunner",
    "Runner",
    "default_runner",
    "gather_first_error",
    "resolve_runner",
    "run_branch_payload",
]

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


# -- the branch contract: what the executor hands a runner -----------------------------

#: The executor's module. It imports this one (the runner contract), so this one does not
#: import it back: a branch reaches ``execute_node`` through ``plait._context.ENGINE``, which
#: the engine fills in when it loads; a shipped branch loads it by name first.
_EXECUTOR = "plait._engine"


def _engine() -> Any:
    if _EXECUTOR not in sys.modules:
        importlib.import_module(_EXECUTOR)
    return ENGINE


@dataclass(slots=True)
class BranchPayload:
    """What a runner ships to execute a branch elsewhere: plain data plus the step.

    Build one with :meth:`Branch.payload`, execute it with :func:`run_branch_payload`
    (in the other process), and hand the :class:`BranchResult` to :meth:`Branch.apply`.
    """

    node: Any
    step_input: StepInput
    index: int
    frame: WorkflowFrame
    step_id: str
    parent_step_id: str | None
    step_name: str
    state: dict[str, Any]
    outputs: dict[str, StepOutput]
    step_events: bool
    trace_context: dict[str, str]
    #: what the branch's own recorder starts from (plait._record_ship.BranchCalls), or None
    #: when the run records nothing: the recorded calls of its steps and how it records
    recording: Any = None


@dataclass(slots=True)
class BranchResult:
    """A remote branch's output, its final copy of the session state and what it recorded."""

    output: StepOutput
    state: dict[str, Any]
    outputs: dict[str, StepOutput]
    errors: list[str]
    paused: list[Any] = field(default_factory=list)
    #: the branch's agent, team and nested workflow runs (the run's step_executor_runs)
    executor_runs: list[Any] = field(default_factory=list)
    #: the model and tool calls the branch recorded (plait._record_ship.BranchRecord), or None
    recording: Any = None


async def run_branch_payload(payload: BranchPayload, emit: Callable[[Event], None] | None) -> BranchResult:
    """Execute a shipped branch in this process; ``emit`` receives its events in order.

    When the branch fails, the exception raised carries the calls it recorded before failing
    as ``exc.plait_recording`` (plain data): a runner hands them to :meth:`Branch.failed`."""
    from opentelemetry import context as otel_context
    from opentelemetry import propagate

    from plait.tracing import resolve_tracer

    _engine()
    run = RunState(
        runner=default_runner(),
        tracer=resolve_tracer(),
        listeners=[emit] if emit is not None else [],
        step_events=payload.step_events,
    )
    ctx = StepContext(
        run,
        payload.frame,
        payload.step_id,
        payload.parent_step_id,
        payload.step_name,
        payload.state,
        payload.outputs,
        True,
    )
    known = set(payload.outputs)
    branch = Branch(payload.node, payload.step_input, ctx, payload.index)
    recording = None
    if payload.recording is not None:  # record and answer calls here; the parent stores them
        from plait._record import CASSETTE
        from plait._record_ship import child_recorder

        run.recorder, collected = child_recorder(payload.recording)
        cassette = CASSETTE.set(None)  # a cassette open in this process is the parent's, not ours
    token = otel_context.attach(propagate.extract(payload.trace_context)) if payload.trace_context else None
    try:
        output = await branch.run()
    except BaseException as exc:
        if payload.recording is not None:  # what it recorded before failing goes back with it
            from plait._record_ship import shipped_back

            exc.plait_recording = shipped_back(run.recorder, collected)  # type: ignore[attr-defined]
        raise
    finally:
        if token is not None:
            otel_context.detach(token)
        if payload.recording is not None:
            CASSETTE.reset(cassette)
    if payload.recording is not None:
        from plait._record_ship import shipped_back

        recording = shipped_back(run.recorder, collected)
    new_outputs = {
        name: out
        for name, out in ctx.outputs.items()
        if name not in known or payload.outputs[name] is not out
    }
    return BranchResult(
        output,
        ctx.state,
        new_outputs,
        list(payload.frame.errors),
        branch.paused,
        list(payload.frame.executor_runs),
        recording,
    )


class Branch:
    """One parallel branch handed to a runner: a node, its input and its own context."""

    __slots__ = ("_calls", "_recorder", "context", "index", "node", "paused", "step_input")

    def __init__(self, node: StepNode, step_input: StepInput, context: StepContext, index: int) -> None:
        self.node = node
        self.step_input = step_input
        self.context = context
        self.index = index
        #: what the branch waits for, when it paused
        self.paused: list[Any] = []
        self._recorder: Any = None  # the run's recorder, when the branch was shipped with calls
        self._calls: Any = None  # what a shipped branch recorded, until the run stores it

    async def run(self) -> StepOutput:
        """Execute the branch in this process."""
        try:
            output: StepOutput = await ENGINE.execute_node(
                self.node, self.step_input, self.context, branch=self.index
            )
            return output
        except asyncio.CancelledError:
            if self.context.discard is not None:  # a sibling failed, or the run was cancelled
                self.context.discard.set = True
            raise
        except PauseRequested as pause:
            # A branch waiting for a person must not cancel its siblings: they finish
            # (and are checkpointed), then the Parallel pauses the run.
            self.paused = pause.pending
            return StepOutput(skipped=True)

    def payload(self) -> BranchPayload:
        """This branch as plain data plus the step, to execute elsewhere."""
        ctx = self.context
        carrier: dict[str, str] = {}
        if ctx.run.tracer is not None:
            from opentelemetry import propagate

            propagate.inject(carrier)
        frame = replace(ctx.frame, workflow=None, errors=[], executor_runs=[])
        recording = None
        self._recorder = _active_recorder(ctx)
        if self._recorder is not None:
            from plait._record_ship import ship

            recording = ship(self._recorder, ctx.child(self.node.name).step_id)
        return BranchPayload(
            self.node,
            self.step_input,
            self.index,
            frame,
            ctx.step_id,
            ctx.parent_step_id,
            ctx.step_name,
            ctx.state,
            ctx.outputs,
            ctx.run.step_events,
            carrier,
            recording,
        )

    def apply(self, result: BranchResult) -> StepOutput:
        """Take a remote branch's result into this run; returns its output. The calls it
        recorded are stored by :meth:`keep_calls` (which :meth:`aapply` awaits, and the
        executor awaits for every branch when the runner returns)."""
        ctx = self.context
        ctx.state.clear()
        ctx.state.update(result.state)
        ctx.outputs.update(result.outputs)
        ctx.frame.errors.extend(result.errors)
        ctx.frame.executor_runs.extend(result.executor_runs)
        self.paused = list(result.paused)
        self._calls = result.recording
        return result.output

    async def aapply(self, result: BranchResult) -> StepOutput:
        """:meth:`apply`, then store the calls the branch recorded before returning (a runner
        that awaits this loses none of a finished branch's calls if the run is killed later)."""
        output = self.apply(result)
        await self.keep_calls()
        return output

    def failed(self, recording: Any) -> None:
        """Take the calls a shipped branch recorded before it failed (``plait_recording`` of
        the exception :func:`run_branch_payload` raised; None: nothing): the executor stores
        them, so a resumed run does not make them again."""
        if recording is not None:
            self._calls = recording

    async def keep_calls(self) -> None:
        """Record, in this run, the calls a shipped branch made (once; nothing for a branch
        run in this process, or one shipped without recording)."""
        calls, self._calls = self._calls, None
        if calls is not None and self._recorder is not None:
            from plait._record_ship import adopt

            await adopt(self._recorder, calls)

    def emit(self, event: Event) -> None:
        """Deliver an event the remote branch produced to this run's listeners."""
        if self.context.run.listening:
            self.context.run.emit(event)


def _active_recorder(ctx: StepContext) -> Any:
    """The recorder a branch's agents would use in this process: a cassette's, else the run's."""
    from plait._record import CASSETTE  # only runners that ship branches ask

    cassette = CASSETTE.get()
    return cassette if cassette is not None else ctx.run.recorder


# -- the in-process runner ----------------------------------------------------------------


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


def resolve_runner(spec: Runner | str | None) -> Runner:
    """A runner from an object, a registered name (``"ray"``), or None for the default."""
    if spec is None:
        return default_runner()
    if isinstance(spec, str):
        from plait._lookup import registry

        factory = registry().get("runner", spec)
        runner: Runner = factory()
        return runner
    if not isinstance(spec, Runner):
        raise DefinitionError(f"expected a Runner or the name of a registered runner, got {spec!r}")
    return spec
