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
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from plait._context import ENGINE, RunState, StepContext
from plait._in_process import BlockingPool, InProcessRunner, default_runner, gather_first_error
from plait._io import StepInput, StepOutput
from plait._pause import PauseRequested
from plait._public import report_public_home
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
        frame = replace(ctx.frame, workflow=None, root=None, errors=[], executor_runs=[])
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


report_public_home(
    __name__, globals(), ["BlockingPool", "InProcessRunner", "default_runner", "gather_first_error"]
)
