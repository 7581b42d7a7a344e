"""Where code runs inside a workflow run: the run, the workflow frame and the step.

:class:`RunState` is what one top-level run shares with everything inside it,
:class:`WorkflowFrame` one workflow (top-level or nested) in it, and
:class:`StepContext` one node: its stable id, its session state, its events and
spans (user code sees a step through :class:`plait.RunContext`, plait._run_context);
:func:`current_step` finds the running step from anywhere in its code.

A StepContext runs its children through the executor (:mod:`plait._engine`),
which imports this module and fills in :data:`ENGINE` (``execute_node``,
``run_branches``) when it loads, so the contexts never import the engine.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from types import CoroutineType
from typing import TYPE_CHECKING, Any, Protocol

from plait._executors import Callee, call, injected, to_output
from plait._io import StepInput, StepOutput, carries_media
from plait._public import publish as _publish
from plait._run_context import RunContext
from plait.events import CustomEvent, Event, RunContentEvent
from plait.tracing import ATTR, span, step_span_name

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    from plait.primitives import StepNode
    from plait.runners import Runner

__all__ = [
    "ENGINE",
    "OFFLOAD_SYNC",
    "Discard",
    "RunCancelled",
    "RunState",
    "StepContext",
    "WorkflowFrame",
    "current_step",
]


class RunState:
    """What one top-level run shares with everything inside it, nested workflows included."""

    __slots__ = (
        "answers",
        "cancel_due",
        "cancel_poll",
        "cancel_requested",
        "cancelled",
        "checkpointer",
        "context_dependencies",
        "dependencies",
        "fork",
        "history_from",
        "hooks",
        "lineage",
        "listeners",
        "listening",
        "media",
        "metadata",
        "meter",
        "once_lock",
        "once_results",
        "recorder",
        "restored",
        "runner",
        "step_events",
        "storage",
        "stream_content",
        "tracer",
        "user_id",
    )

    def __init__(
        self,
        runner: Runner,  # positional too: a run's frame passes them so (no keywords' dict per run)
        tracer: Tracer | None,
        listeners: Sequence[Callable[[Event], None]] = (),
        step_events: bool = False,
        hooks: Any = None,
    ) -> None:
        self.runner = runner
        self.tracer = tracer
        self.listeners = list(listeners)
        self.listening = bool(self.listeners)
        #: build step and container events only when someone wants them
        self.step_events = step_events and self.listening
        #: stream model output token by token only when someone is listening
        self.stream_content = self.listening
        self.hooks = hooks
        #: True once the run is cancelled or timed out, so cooperative sync code can stop early
        self.cancelled = False
        #: durable runs (see plait._durable): all None for a run without storage
        self.storage: Any = None
        self.checkpointer: Any = None
        #: records and answers model and tool calls (plait._record); None: not recording
        self.recorder: Any = None
        #: checkpoints of an earlier attempt of this run, by step id (on resume)
        self.restored: dict[str, Any] | None = None
        #: a fork's point (plait._fork.ForkPoint), looked at only when ``restored`` is set
        self.fork: Any = None
        #: a replay's or fork's origin ``(session_id, created_at)``: the conversation and the
        #: earlier runs its steps see are that session's before then (plait._history), as the
        #: original's steps saw them; None: its own session's
        self.history_from: tuple[str, float] | None = None
        #: RunContext.once results of a run without storage, by key (made on first use)
        self.once_results: dict[str, Any] | None = None
        self.once_lock: Any = None
        #: people's answers to paused steps, by step id
        self.answers: dict[str, Any] = {}
        #: OpenTelemetry metric instruments, when a metrics SDK is configured
        self.meter: Any = None
        #: who the run is for, and the run's metadata and dependencies (RunContext shows them)
        self.user_id: str | None = None
        self.metadata: dict[str, Any] | None = None
        #: where the run comes from (a replay's or fork's origin), stored with it
        self.lineage: dict[str, str] | None = None
        self.dependencies: dict[str, Any] | None = None
        #: the dependencies an agent or team step adds to its message
        #: (``add_dependencies_to_context=True``); None: nothing to add
        self.context_dependencies: dict[str, Any] | None = None
        #: the media given to the run (``run(images=...)``), parts by option; None: none
        self.media: dict[str, list[Any]] | None = None
        #: set by ``Workflow.cancel_run``: the run stops at its next safe point
        self.cancel_requested = False
        #: a run with storage: looks for a cancel request from another process, and
        #: when it is next due (time.monotonic()); None for a run without storage
        self.cancel_poll: Callable[[], Coroutine[Any, Any, None]] | None = None
        self.cancel_due = 0.0

    def request_cancel(self) -> None:
        """Stop the run at its next safe point (between steps); cooperative code sees
        ``RunContext.cancelled`` turn true at once."""
        self.cancel_requested = True
        self.cancelled = True

    def emit(self, event: Event) -> None:
        for listener in self.listeners:
            listener(event)


@dataclass(slots=True)
class WorkflowFrame:
    """One workflow run inside the tree: the top-level one, or a nested one."""

    workflow: Any
    workflow_id: str
    workflow_name: str
    run_id: str
    session_id: str
    depth: int
    parent_run_id: str | None = None
    #: ids of steps that failed as data or were skipped after failing
    errors: list[str] = field(default_factory=list)
    #: the agent, team and nested workflow runs of its steps, in order (step_executor_runs)
    executor_runs: list[Any] = field(default_factory=list)
    #: its top-level nodes' places (id of node: index), made by the first StepOutputEvent
    node_index: dict[int, int] | None = None
    #: a nested run's top-level workflow (None: this is the top-level run): whose earlier runs
    #: of the session its steps see (plait._workflow_history)
    root: Any = None


_current_step: contextvars.ContextVar[StepContext | None] = contextvars.ContextVar("plait_step", default=None)

#: True where a run's sync step code must go to worker threads, keeping its event loop free:
#: the live console sets it, so a blocking sync step still shows as running (plait.console)
OFFLOAD_SYNC: contextvars.ContextVar[bool] = contextvars.ContextVar("plait_offload_sync", default=False)


def current_step() -> StepContext | None:
    """The step whose code is running in this context (None outside a workflow run)."""
    return _current_step.get()


async def _polled(run: RunState) -> bool:
    assert run.cancel_poll is not None
    await run.cancel_poll()
    return run.cancel_requested


class RunCancelled(BaseException):
    """Raised at a run's next safe point after :meth:`Workflow.cancel_run`; the run ends
    as CANCELLED (and can be continued). A BaseException, as a pause is, so that
    ``except Exception`` in user code or a retry policy never swallows it."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"Workflow run {run_id} was cancelled")
        self.run_id = run_id


class Discard:
    """Set when the work under a context will be thrown away (its attempt timed out, its
    branch was cancelled); a context inherits its parent's and may add its own."""

    __slots__ = ("parent", "set")

    def __init__(self, parent: Discard | None) -> None:
        self.parent = parent
        self.set = False

    def is_set(self) -> bool:
        scope: Discard | None = self
        while scope is not None:
            if scope.set:
                return True
            scope = scope.parent
        return False


class StepContext:
    """Where a node executes: its run, its workflow, its stable id and its state.

    A step type from a plugin receives one in ``execute(step_input, ctx)`` and uses
    :meth:`run_steps`, :meth:`run_branches`, :meth:`call` and :meth:`emit`.
    """

    __slots__ = (
        "_placed",
        "discard",
        "frame",
        "offload",
        "outputs",
        "parent_step_id",
        "run",
        "state",
        "step_id",
        "step_name",
    )

    def __init__(
        self,
        run: RunState,
        frame: WorkflowFrame,
        step_id: str,
        parent_step_id: str | None,
        step_name: str,
        state: dict[str, Any],
        outputs: dict[str, StepOutput],
        offload: bool,
        discard: Discard | None = None,
    ) -> None:
        self.run = run
        self.frame = frame
        self.step_id = step_id
        self.parent_step_id = parent_step_id
        self.step_name = step_name
        self.state = state
        self.outputs = outputs
        #: run sync code in worker threads (inside parallel branches and timeouts)
        self.offload = offload
        #: set when this context's work will be discarded (RunContext.cancelled)
        self.discard = discard
        self._placed: dict[str, Any] | None = None  # _place(), once (a token stream asks per token)

    # -- derived contexts ------------------------------------------------------------

    def child(self, name: str) -> StepContext:
        """The context of a child node called ``name``."""
        escaped = name.replace("/", "%2F")
        step_id = self.step_id
        return StepContext(  # built here, not through a helper: once per step
            self.run,
            self.frame,
            f"{step_id}/{escaped}" if step_id else escaped,
            step_id or None,
            name,
            self.state,
            self.outputs,
            self.offload,
            self.discard,
        )

    def scope(self, suffix: str, name: str) -> StepContext:
        """A pseudo-node under this one (a loop iteration: ``loop[2]``)."""
        step_id = self.step_id
        return StepContext(
            self.run,
            self.frame,
            f"{step_id}{suffix}",
            step_id or None,
            name,
            self.state,
            self.outputs,
            self.offload,
            self.discard,
        )

    def span(self, kind: str, name: str, attributes: dict[str, Any]) -> Any:
        """A span under the current one (no-op without a tracer): for pseudo-nodes such as
        loop iterations, which the executor does not wrap itself."""
        tracer = self.run.tracer
        if tracer is None:
            return contextlib.nullcontext()
        attributes = {
            ATTR.STEP_ID: self.step_id,
            ATTR.RUN_ID: self.frame.run_id,
            ATTR.SPAN_KIND: "CHAIN",
            **attributes,
        }
        return span(tracer, step_span_name(kind, name), attributes)

    # -- events ----------------------------------------------------------------------

    def event(self, cls: type[Event], **fields: Any) -> Event:
        """An event of ``cls`` stamped with where it happened."""
        place = self._placed
        if place is None:
            place = self._placed = self._place()
        return cls(**place, **fields)

    def run_event(self, cls: type[Event], **fields: Any) -> Event:
        """An event of the workflow run itself (started, completed, ...): a nested run's
        ``parent_step_id`` is the outer step that hosts it (as in Agno), a top-level run's None."""
        place = self._place()
        place["parent_step_id"] = self.step_id or None
        return cls(**place, **fields)

    def _place(self) -> dict[str, Any]:
        """The fields that say where an event happened: this run, workflow and step."""
        frame = self.frame
        return {
            "run_id": frame.run_id,
            "session_id": frame.session_id,
            "workflow_id": frame.workflow_id,
            "workflow_name": frame.workflow_name,
            "step_id": self.step_id or None,
            "step_name": self.step_name or None,
            "parent_step_id": self.parent_step_id,
            "nested_depth": frame.depth,
        }

    def emit(self, event: Event) -> None:
        """Send ``event`` to the run's listeners (thread-safe listeners, any thread)."""
        if self.run.listening:
            self.run.emit(event)

    def emit_content(self, item: Any) -> None:
        """Emit what a generator yielded: text as content, plait events re-stamped, other data as custom."""
        if not self.run.listening:
            return
        if isinstance(item, str):  # a token: the common case, first
            self.run.emit(self.event(RunContentEvent, content=item))
        elif isinstance(item, Event):
            self.run.emit(self.adopt(item))
        else:
            self.run.emit(self.event(CustomEvent, data=item))

    def adopt(self, event: Event) -> Event:
        """Re-stamp an event produced elsewhere (an agent run inside this step) with this place."""
        if event.workflow_id is None:
            return replace(event, **self._place())
        return replace(
            event,
            nested_depth=event.nested_depth + self.frame.depth + 1,
            parent_step_id=event.parent_step_id or self.step_id,
        )

    def run_context(self) -> RunContext:
        frame = self.frame
        run = self.run
        return RunContext(
            self.state,
            frame.run_id,
            frame.session_id,
            frame.workflow_id,
            frame.workflow_name,
            self.step_id,
            self.step_name,
            frame.depth,
            self,
            run.user_id,
            run.metadata,
            run.dependencies,
        )

    # -- running children ------------------------------------------------------------

    def run_steps(
        self, nodes: Sequence[StepNode], step_input: StepInput
    ) -> Coroutine[Any, Any, list[StepOutput]]:
        """Run ``nodes`` one after another, each receiving the previous one's content.
        Stops after an output with ``stop=True``. (A plain function returning the walk's
        coroutine: no coroutine of its own per container.)"""
        # the run's media (Agno's shared media): None (the common case): none
        media = step_input.media() if carries_media(step_input) else None
        return self.run_sequence(
            nodes, step_input.input, step_input.previous_step_content, step_input.additional_data, media
        )

    async def run_sequence(
        self,
        nodes: Sequence[StepNode],
        input: Any,
        previous: Any,
        additional_data: dict[str, Any] | None,
        media: dict[str, list[Any]] | None,
    ) -> list[StepOutput]:
        """:meth:`run_steps` given what its StepInput would carry, for callers that have these
        and no StepInput (a workflow's first steps, a loop's next iteration): each node gets a
        StepInput of its own made of them, so none needs making for the sequence itself."""
        execute_node = ENGINE.execute_node
        outputs: list[StepOutput] = []
        run = self.run
        # media: what the steps were given, and what each step produced for the ones after it
        for node in nodes:
            # Workflow.cancel_run: stop before the next step (a run with storage looks for a
            # request from another process here too, when due: sync steps never yield the loop)
            if run.cancel_requested or (
                run.cancel_poll is not None and time.monotonic() >= run.cancel_due and await _polled(run)
            ):
                raise RunCancelled(self.frame.run_id)
            node_input = StepInput(input, previous, self.outputs, additional_data)
            if media is not None:
                for option, items in media.items():
                    setattr(node_input, option, items)
            output = await execute_node(node, node_input, self)
            outputs.append(output)
            if not output.skipped:
                previous = output.content
                if carries_media(output):
                    media = dict(media or {})
                    for option, items in output.media().items():
                        media[option] = [*media.get(option, ()), *items]
            if output.stop:
                break
        return outputs

    def run_branches(
        self,
        nodes: Sequence[StepNode],
        step_input: StepInput,
        *,
        runner: Runner | None = None,
        max_concurrency: int | None = None,
    ) -> Coroutine[Any, Any, list[StepOutput]]:
        """Run ``nodes`` concurrently through the runner, each on its own copy of the
        session state; then merge state changes and outputs in declaration order."""
        return ENGINE.run_branches(self, nodes, step_input, runner, max_concurrency)

    async def call(self, callee: Callee, *args: Any) -> Any:
        """Call a user function (not a generator), off the loop when it is sync and
        this context offloads, passing ``run_context`` / ``session_state`` when it asks for them."""
        if callee.plain and not self.offload:  # the hot path, inline: a sync function, here
            result = callee.fn(*args)
            if type(result) is not CoroutineType:  # inspect.iscoroutine, without its call
                return result
            return await result
        kwargs = injected(callee.injects, self.run_context()) if callee.injects else _NO_KWARGS
        return await call(
            callee.fn, callee.kind, args, kwargs, self.run.runner.run_blocking if self.offload else None
        )

    async def invoke(self, callee: Callee, *args: Any) -> StepOutput:
        """Call an executor and turn what it returns or yields into a StepOutput."""
        if callee.plain and not self.offload:  # the hot path, inline: a sync executor, here
            result = callee.fn(*args)
            if type(result) is StepOutput:
                return result
            return await to_output(result, self.emit_content)
        kwargs = injected(callee.injects, self.run_context()) if callee.injects else _NO_KWARGS
        blocking = self.run.runner.run_blocking if self.offload else None
        output: StepOutput = await call(callee.fn, callee.kind, args, kwargs, blocking, self.emit_content)
        return output


_NO_KWARGS: dict[str, Any] = {}


class _ExecuteNode(Protocol):
    def __call__(
        self, node: StepNode, step_input: StepInput, parent: StepContext, *, branch: int | None = None
    ) -> Coroutine[Any, Any, StepOutput]: ...


class Engine:
    """What a :class:`StepContext` needs from the executor: plait._engine sets these when it loads."""

    execute_node: _ExecuteNode
    run_branches: Callable[
        [StepContext, Sequence[StepNode], StepInput, Runner | None, int | None],
        Coroutine[Any, Any, list[StepOutput]],
    ]


ENGINE = Engine()


# Last: the names plait exports report ``plait`` as their home (plait._public).
_publish(__name__, globals())
