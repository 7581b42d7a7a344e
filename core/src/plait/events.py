"""The typed event stream of a run.

Every event carries where it came from: the run, session and workflow, the step
(``step_id`` is the stable path in the tree), its parent step and
``nested_depth`` (0 for the outermost workflow, one more for each nested
workflow). ``stream=True`` yields workflow-level and content events, and a
:class:`StepOutputEvent` per top-level function step (Agno's rule);
``stream_events=True`` adds every step and container event.

Events are slotted dataclasses (cheap to build, one per step or token);
:meth:`Event.to_dict` and :meth:`Event.to_json` serialize them through pydantic.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from plait._io import StepOutput, WorkflowMetrics

__all__ = [
    "STEP_LEVEL_EVENTS",
    "BudgetUpdatedEvent",
    "BudgetWarningEvent",
    "ConditionExecutionCompletedEvent",
    "ConditionExecutionStartedEvent",
    "CustomEvent",
    "Event",
    "LoopExecutionCompletedEvent",
    "LoopExecutionStartedEvent",
    "LoopIterationCompletedEvent",
    "LoopIterationStartedEvent",
    "ModelFallbackEvent",
    "ModelRetryEvent",
    "ParallelExecutionCompletedEvent",
    "ParallelExecutionStartedEvent",
    "RateLimitWaitEvent",
    "RouterExecutionCompletedEvent",
    "RouterExecutionStartedEvent",
    "RunContentEvent",
    "StepCompletedEvent",
    "StepErrorEvent",
    "StepOutputEvent",
    "StepPausedEvent",
    "StepRetryEvent",
    "StepSkippedEvent",
    "StepStartedEvent",
    "StepsExecutionCompletedEvent",
    "StepsExecutionStartedEvent",
    "ToolCallCompletedEvent",
    "ToolCallStartedEvent",
    "WorkflowCancelledEvent",
    "WorkflowCompletedEvent",
    "WorkflowErrorEvent",
    "WorkflowPausedEvent",
    "WorkflowStartedEvent",
    "is_step_level",
    "tool_call_completed",
    "tool_call_started",
]


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class Event:
    """Fields every event has."""

    event: str = "Event"
    created_at: float = field(default_factory=time.time)
    run_id: str | None = None
    session_id: str | None = None
    workflow_id: str | None = None
    workflow_name: str | None = None
    step_id: str | None = None
    step_name: str | None = None
    parent_step_id: str | None = None
    nested_depth: int = 0

    # One __repr__ and __eq__ for every event class (the dataclass ones, generated and
    # compiled per class, were most of the cost of importing plait). They read the fields
    # in order, as dataclasses would.
    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__dataclass_fields__)
        return f"{type(self).__qualname__}({fields})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        names = self.__dataclass_fields__
        return tuple(getattr(self, n) for n in names) == tuple(getattr(other, n) for n in names)

    # mutable and compared by value: unhashable, as a dataclass is
    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible dict (content that is a pydantic model becomes a dict; an image,
        audio or file part, its kind, media type and SHA-256, never its bytes)."""
        from pydantic_core import PydanticSerializationError

        try:
            result: dict[str, Any] = _adapter(type(self)).dump_python(self, mode="json", fallback=repr)
        except (
            PydanticSerializationError,
            UnicodeDecodeError,
        ):  # bytes that are not text: a part's, most likely
            return self._without_bytes()
        return result

    def to_json(self) -> str:
        from pydantic_core import PydanticSerializationError

        try:
            return str(_adapter(type(self)).dump_json(self, fallback=repr).decode())
        except (PydanticSerializationError, UnicodeDecodeError):
            return json.dumps(self._without_bytes(), ensure_ascii=False, separators=(",", ":"))

    def _without_bytes(self) -> dict[str, Any]:
        from pydantic_core import to_jsonable_python

        from plait._parts import without_bytes

        fields = {name: without_bytes(getattr(self, name)) for name in self.__dataclass_fields__}
        result: dict[str, Any] = to_jsonable_python(fields, fallback=repr, bytes_mode="base64")
        return result


_adapters: dict[type, Any] = {}


def _adapter(cls: type) -> Any:
    adapter = _adapters.get(cls)
    if adapter is None:
        from pydantic import TypeAdapter

        adapter = _adapters[cls] = TypeAdapter(cls)
    return adapter


# -- workflow ----------------------------------------------------------------------


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class WorkflowStartedEvent(Event):
    """A workflow run (the outermost one or a nested one) started with ``input``."""

    event: str = "WorkflowStarted"
    input: Any = None
    parent_run_id: str | None = None
    #: a replayed or forked run's origin (``{"forked_from": ..., "fork_step": ...}``,
    #: ``{"replay_of": ...}``); None for a plain run and for a nested workflow
    lineage: dict[str, str] | None = None


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class WorkflowCompletedEvent(Event):
    """The run ended: its ``content``, ``status``, the top-level steps' outputs in
    ``step_results`` (as ``WorkflowRunOutput.step_results``) and its ``metrics``."""

    event: str = "WorkflowCompleted"
    content: Any = None
    status: str = "COMPLETED"
    duration: float = 0.0
    step_results: list[StepOutput] = field(default_factory=list)
    metrics: WorkflowMetrics | None = None


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class WorkflowErrorEvent(Event):
    """The run failed: the error, its type, and the id of the step that failed (if one did)."""

    event: str = "WorkflowError"
    error: str = ""
    error_type: str = ""
    failed_step_id: str | None = None


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class WorkflowPausedEvent(Event):
    """The run waits for a person: ``pending`` lists what each waiting step asks for."""

    event: str = "WorkflowPaused"
    pending: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class WorkflowCancelledEvent(Event):
    """The run was cancelled (``cancel_run``, a Ctrl-C, a cancelled task); ``reason`` says which."""

    event: str = "WorkflowCancelled"
    reason: str = ""


# -- steps and containers ----------------------------------------------------------


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class StepStartedEvent(Event):
    """A step or a container (``step_type``: step, steps, parallel, loop, ...) started."""

    event: str = "StepStarted"
    step_type: str = "Step"


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class StepCompletedEvent(Event):
    """A step or container finished. ``metadata`` carries container facts:
    a condition's ``result``, a router's ``selected`` steps, a loop's ``iterations``."""

    event: str = "StepCompleted"
    step_type: str = "Step"
    content: Any = None
    success: bool = True
    duration: float = 0.0
    metadata: dict[str, Any] | None = None
    #: the output came from a checkpoint of an earlier attempt of this run
    restored: bool = False
    #: the output came from the step cache
    cached: bool = False


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class StepPausedEvent(Event):
    """A step waits for a person (see :class:`plait.Approval`)."""

    event: str = "StepPaused"
    step_type: str = "Step"
    prompt: str = ""


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class StepErrorEvent(Event):
    """A step failed on its ``attempt``-th attempt (its policy then skips it or the run fails)."""

    event: str = "StepError"
    step_type: str = "Step"
    error: str = ""
    error_type: str = ""
    attempt: int = 1


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class StepSkippedEvent(Event):
    """A failed step skipped by its ``on_error="skip"`` policy."""

    event: str = "StepSkipped"
    step_type: str = "Step"
    error: str = ""


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class StepRetryEvent(Event):
    """A step failed with an error its retry policy retries, and starts over after ``delay``."""

    event: str = "StepRetry"
    step_type: str = "Step"
    attempt: int = 1
    delay: float = 0.0
    error: str = ""


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class LoopIterationStartedEvent(Event):
    """An iteration of a loop started (``iteration`` counts from 1)."""

    event: str = "LoopIterationStarted"
    iteration: int = 1
    max_iterations: int = 1


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class LoopIterationCompletedEvent(Event):
    """An iteration ended: ``iteration_results`` are its outputs; ``should_stop`` (plait) and
    ``should_continue`` (Agno) say whether the loop ends after it."""

    event: str = "LoopIterationCompleted"
    iteration: int = 1
    max_iterations: int = 1
    should_stop: bool = False
    should_continue: bool = True
    iteration_results: list[StepOutput] = field(default_factory=list)


# -- the containers' own start and end (Agno's names), subclasses of the step events:
#    code that handles StepStartedEvent / StepCompletedEvent sees them as before. A
#    container's decisions (a condition's result, a router's selection) are made after
#    it started, so they arrive on its completed event.


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class StepsExecutionStartedEvent(StepStartedEvent):
    """A :class:`~plait.Steps` sequence started (Agno's event)."""

    event: str = "StepsExecutionStarted"
    step_type: str = "Steps"
    steps_count: int | None = None


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class StepsExecutionCompletedEvent(StepCompletedEvent):
    """A :class:`~plait.Steps` sequence ended: how many of its steps ran, and their outputs."""

    event: str = "StepsExecutionCompleted"
    step_type: str = "Steps"
    steps_count: int | None = None
    executed_steps: int | None = None
    step_results: list[StepOutput] = field(default_factory=list)


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class ParallelExecutionStartedEvent(StepStartedEvent):
    """A :class:`~plait.Parallel` started its branches."""

    event: str = "ParallelExecutionStarted"
    step_type: str = "Parallel"
    parallel_step_count: int | None = None


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class ParallelExecutionCompletedEvent(StepCompletedEvent):
    """A :class:`~plait.Parallel` ended: its branches' outputs in ``step_results``."""

    event: str = "ParallelExecutionCompleted"
    step_type: str = "Parallel"
    parallel_step_count: int | None = None
    step_results: list[StepOutput] = field(default_factory=list)


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class ConditionExecutionStartedEvent(StepStartedEvent):
    """A condition started; its evaluator has not run yet, so ``condition_result`` is None
    (Agno evaluates first): read it from :class:`ConditionExecutionCompletedEvent`."""

    event: str = "ConditionExecutionStarted"
    step_type: str = "Condition"
    condition_result: bool | None = None


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class ConditionExecutionCompletedEvent(StepCompletedEvent):
    """``branch``: ``"if"``, ``"else"``, or None when the condition was false without ``else_steps``."""

    event: str = "ConditionExecutionCompleted"
    step_type: str = "Condition"
    condition_result: bool | None = None
    executed_steps: int | None = None
    branch: str | None = None
    step_results: list[StepOutput] = field(default_factory=list)


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class LoopExecutionStartedEvent(StepStartedEvent):
    """A :class:`~plait.Loop` started."""

    event: str = "LoopExecutionStarted"
    step_type: str = "Loop"
    max_iterations: int | None = None


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class LoopExecutionCompletedEvent(StepCompletedEvent):
    """``all_results``: the outputs of each iteration, a list per iteration."""

    event: str = "LoopExecutionCompleted"
    step_type: str = "Loop"
    total_iterations: int = 0
    max_iterations: int | None = None
    all_results: list[list[StepOutput]] = field(default_factory=list)


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class RouterExecutionStartedEvent(StepStartedEvent):
    """A router started; its selector has not run yet, so ``selected_steps`` is empty (Agno
    selects first): read it from :class:`RouterExecutionCompletedEvent`."""

    event: str = "RouterExecutionStarted"
    step_type: str = "Router"
    selected_steps: list[str] = field(default_factory=list)


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class RouterExecutionCompletedEvent(StepCompletedEvent):
    """A router ended: the names it selected, and their outputs."""

    event: str = "RouterExecutionCompleted"
    step_type: str = "Router"
    selected_steps: list[str] = field(default_factory=list)
    executed_steps: int | None = None
    step_results: list[StepOutput] = field(default_factory=list)


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class StepOutputEvent(Event):
    """A top-level function step's output, in ``stream=True`` with or without
    ``stream_events`` (Agno's event and rule: agents and teams stream their content as
    :class:`RunContentEvent`, containers report through their own events). One per
    executor step at the top of a workflow, a nested one's too; ``step_index`` is its
    place there. ``content``, ``success``, ``error`` and ``stop`` read ``step_output``."""

    event: str = "StepOutput"
    step_index: int | None = None
    step_output: StepOutput | None = None

    @property
    def content(self) -> Any:
        return None if self.step_output is None else self.step_output.content

    @property
    def success(self) -> bool:
        return True if self.step_output is None else self.step_output.success

    @property
    def error(self) -> str | None:
        return None if self.step_output is None else self.step_output.error

    @property
    def stop(self) -> bool:
        return False if self.step_output is None else self.step_output.stop


# -- agents, models, tools, user events --------------------------------------------


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class RunContentEvent(Event):
    """A piece of content as it streams: an agent's token delta or a generator step's text."""

    event: str = "RunContent"
    content: Any = None
    agent_name: str | None = None


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class ToolCallStartedEvent(Event):
    """An agent calls a tool with ``arguments``."""

    event: str = "ToolCallStarted"
    agent_name: str | None = None
    tool_name: str = ""
    tool_call_id: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class ToolCallCompletedEvent(Event):
    """A tool call ended: its ``result``, or the ``error`` the model is shown."""

    event: str = "ToolCallCompleted"
    agent_name: str | None = None
    tool_name: str = ""
    tool_call_id: str = ""
    result: Any = None
    error: str | None = None


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class ModelRetryEvent(Event):
    """A model call failed with a retryable error and starts over after ``delay``."""

    event: str = "ModelRetry"
    agent_name: str | None = None
    attempt: int = 1
    delay: float = 0.0
    error: str = ""


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class ModelFallbackEvent(Event):
    """A :class:`~plait.models.FallbackModel`'s member failed (after its retries) with an
    error it falls back on, and the request goes to the next member."""

    event: str = "ModelFallback"
    agent_name: str | None = None
    failed_model: str = ""
    error: str = ""
    error_type: str = ""
    next_model: str = ""


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class RateLimitWaitEvent(Event):
    """A model call waits its turn under a :class:`~plait.RateLimit`, said as the wait starts
    when it is longer than a fraction of a second (``plait._limits.VISIBLE_WAIT``).

    ``key`` is the limits key (``"openai"``, ``"openai:gpt-4o-mini"``), ``limit`` the one
    that holds the call (``"requests_per_minute"``, ``"tokens_per_minute"`` or
    ``"max_concurrent"``) and ``maximum`` its value; ``seconds`` the wait expected (None for
    ``max_concurrent``: until a call in flight ends); ``shared``: counted with other processes."""

    event: str = "RateLimitWait"
    agent_name: str | None = None
    model: str = ""
    key: str = ""
    limit: str = ""
    maximum: float = 0
    seconds: float | None = None
    shared: bool = False


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class BudgetUpdatedEvent(Event):
    """A model call or tool calls counted against a :class:`~plait.Budget`: what is used and left.

    ``budget_of`` says whose budget (``"workflow 'Research'"``, ``"step 'write'"``,
    ``"agent 'Writer'"``); ``limits``, ``used`` and ``left`` are keyed by the limit's name
    (``"max_requests"``, ``"max_total_tokens"``, ``"max_cost"``, ...)."""

    event: str = "BudgetUpdated"
    agent_name: str | None = None
    budget_of: str = ""
    limits: dict[str, float] = field(default_factory=dict)
    used: dict[str, float] = field(default_factory=dict)
    left: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class BudgetWarningEvent(Event):
    """A call crossed a soft limit (``Budget(soft=True)``): said once per limit, the call goes on."""

    event: str = "BudgetWarning"
    agent_name: str | None = None
    budget_of: str = ""
    limit: str = ""
    maximum: float = 0
    used: float = 0
    needed: float = 0
    message: str = ""


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class CustomEvent(Event):
    """Anything a generator executor yields that is not a StepOutput, an event or text."""

    event: str = "Custom"
    data: Any = None


#: Events that ``stream=True`` alone leaves out (``stream_events=True`` includes them).
STEP_LEVEL_EVENTS: tuple[type[Event], ...] = (
    StepStartedEvent,
    StepCompletedEvent,
    StepErrorEvent,
    StepSkippedEvent,
    StepRetryEvent,
    StepPausedEvent,
    LoopIterationStartedEvent,
    LoopIterationCompletedEvent,
    ToolCallStartedEvent,
    ToolCallCompletedEvent,
    ModelRetryEvent,
    ModelFallbackEvent,
    RateLimitWaitEvent,
    BudgetUpdatedEvent,
    BudgetWarningEvent,
)


def tool_call_started(event: Callable[..., Event], agent_name: str, call: Any) -> Event:
    """A tool call's start event, stamped by ``event(cls, **fields)`` (an agent's, live or
    answered from a record)."""
    return event(
        ToolCallStartedEvent,
        agent_name=agent_name,
        tool_name=call.name,
        tool_call_id=call.id,
        arguments=call.arguments,
    )


def tool_call_completed(
    event: Callable[..., Event], agent_name: str, call: Any, result: Any, error: str | None
) -> Event:
    """A tool call's end event: its ``result``, or the ``error`` the model is shown."""
    return event(
        ToolCallCompletedEvent,
        agent_name=agent_name,
        tool_name=call.name,
        tool_call_id=call.id,
        result=result,
        error=error,
    )


_step_level: dict[type, bool] = {}


def is_step_level(event: Event) -> bool:
    """Whether ``event`` is a :data:`STEP_LEVEL_EVENTS` one (what ``stream_events=True``
    adds), decided once per class: this is on every streamed token's path, and an
    ``isinstance`` over the whole tuple costs more than the rest of a token's trip."""
    cls = type(event)
    known = _step_level.get(cls)
    if known is None:
        known = _step_level[cls] = issubclass(cls, STEP_LEVEL_EVENTS)
    return known


# -- an agent's or a team's own run: Agno's RunStarted / RunCompleted / RunError and their
#    Team* spellings, with ``stream_events=True`` (standalone, or inside a workflow step,
#    where run_id is the workflow run's and agent_run_id the agent's own)

import enum  # noqa: E402  (kept with the events that use it)


class RunEvent(enum.StrEnum):
    """Agno's names of an agent's events (``from agno.agent import RunEvent``), for the events
    plait emits: ``event.event == RunEvent.run_started`` works as in Agno."""

    run_started = "RunStarted"
    run_content = "RunContent"
    run_completed = "RunCompleted"
    run_error = "RunError"
    tool_call_started = "ToolCallStarted"
    tool_call_completed = "ToolCallCompleted"


class TeamRunEvent(enum.StrEnum):
    """Agno's names of a team's own events (``from agno.team import TeamRunEvent``)."""

    run_started = "TeamRunStarted"
    run_completed = "TeamRunCompleted"
    run_error = "TeamRunError"


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class RunStartedEvent(Event):
    """An agent run started (``stream_events=True``)."""

    event: str = "RunStarted"
    agent_id: str = ""
    agent_name: str = ""
    agent_run_id: str = ""
    model: str = ""
    model_provider: str = ""


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class RunCompletedEvent(Event):
    """An agent run finished: its ``content`` (an ``output_schema`` instance, or text), tokens and cost."""

    event: str = "RunCompleted"
    agent_id: str = ""
    agent_name: str = ""
    agent_run_id: str = ""
    content: Any = None
    content_type: str = "str"
    input_tokens: int = 0
    output_tokens: int = 0
    duration: float = 0.0
    cost: float | None = None


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class RunErrorEvent(Event):
    """An agent run failed (the exception goes on to the step, which may retry it)."""

    event: str = "RunError"
    agent_id: str = ""
    agent_name: str = ""
    agent_run_id: str = ""
    error: str = ""
    error_type: str = ""


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class TeamRunStartedEvent(Event):
    """A team's own run started (Agno's ``TeamRunStarted``)."""

    event: str = "TeamRunStarted"
    team_id: str = ""
    team_name: str = ""
    team_run_id: str = ""
    model: str = ""
    model_provider: str = ""


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class TeamRunCompletedEvent(Event):
    """A team's own run ended (Agno's ``TeamRunCompleted``)."""

    event: str = "TeamRunCompleted"
    team_id: str = ""
    team_name: str = ""
    team_run_id: str = ""
    content: Any = None
    content_type: str = "str"
    input_tokens: int = 0
    output_tokens: int = 0
    duration: float = 0.0
    cost: float | None = None


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class TeamRunErrorEvent(Event):
    """A team's own run failed (Agno's ``TeamRunError``)."""

    event: str = "TeamRunError"
    team_id: str = ""
    team_name: str = ""
    team_run_id: str = ""
    error: str = ""
    error_type: str = ""


#: an agent's or team's own start and end are step-level too (``stream_events=True``)
STEP_LEVEL_EVENTS += (
    RunStartedEvent,
    RunCompletedEvent,
    RunErrorEvent,
    TeamRunStartedEvent,
    TeamRunCompletedEvent,
    TeamRunErrorEvent,
)
__all__ += [
    "RunCompletedEvent",
    "RunErrorEvent",
    "RunEvent",
    "RunStartedEvent",
    "TeamRunCompletedEvent",
    "TeamRunErrorEvent",
    "TeamRunEvent",
    "TeamRunStartedEvent",
]
