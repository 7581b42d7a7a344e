"""The data that flows through a workflow: step inputs, step outputs, run outputs.

These are slotted dataclasses rather than pydantic models because one is built
for every step of every run; they serialize to JSON through pydantic
(:func:`plait._durable.dump_output` and ``load_output``, content in the tagged
form of :mod:`plait._codec`) when persisted or sent elsewhere. Users import
them from ``plait``, which they report as their module (see :mod:`plait._public`).
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = [
    "RunStatus",
    "StepInput",
    "StepMetrics",
    "StepOutput",
    "StepType",
    "WorkflowExecutionInput",
    "WorkflowRunOutput",
    "format_content",
    "normalize_status",
]

_E = TypeVar("_E", bound=enum.Enum)


class StepType(enum.StrEnum):
    """What kind of node produced a :class:`StepOutput`: Agno's values (``"Parallel"``).

    Values written before plait adopted Agno's spelling (``"parallel"``) still
    convert: ``StepType("parallel") is StepType.PARALLEL``.
    """

    FUNCTION = "Function"
    STEP = "Step"
    STEPS = "Steps"
    PARALLEL = "Parallel"
    CONDITION = "Condition"
    LOOP = "Loop"
    ROUTER = "Router"
    WORKFLOW = "Workflow"

    @classmethod
    def _missing_(cls, value: object) -> StepType | None:
        return _legacy_member(cls, value)


class RunStatus(enum.StrEnum):
    """A run's status, with Agno's values (``"COMPLETED"``) and member names
    (``RunStatus.completed`` is ``RunStatus.COMPLETED``). plait adds
    ``COMPLETED_WITH_ERRORS``: it finished, but a step failed or was skipped.

    A status stored before plait adopted Agno's values (``"completed"``) still
    converts: ``RunStatus("completed") is RunStatus.COMPLETED``.
    """

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    COMPLETED_WITH_ERRORS = "COMPLETED_WITH_ERRORS"
    ERROR = "ERROR"
    CANCELLED = "CANCELLED"
    PAUSED = "PAUSED"
    # Agno's member names, as aliases of the members above
    pending = "PENDING"
    running = "RUNNING"
    completed = "COMPLETED"
    completed_with_errors = "COMPLETED_WITH_ERRORS"
    error = "ERROR"
    cancelled = "CANCELLED"
    paused = "PAUSED"

    @classmethod
    def _missing_(cls, value: object) -> RunStatus | None:
        return _legacy_member(cls, value)


def _legacy_member(cls: type[_E], value: object) -> _E | None:
    """The member whose value matches ``value`` but for case (a value stored by an
    older plait, which spelled them in lower case), or None."""
    if isinstance(value, str):
        folded = value.casefold()
        for member in cls:
            if member.value.casefold() == folded:
                return member
    return None


def normalize_status(value: str) -> str:
    """A stored run status in today's spelling (``"completed"`` becomes ``"COMPLETED"``);
    a value that is no status is returned as it is."""
    try:
        return RunStatus(value).value
    except ValueError:
        return value


@dataclass(slots=True)
class StepMetrics:
    """Measurements of one step: wall time, attempts, tokens and cost (of its agents)."""

    duration: float = 0.0
    attempts: int = 1
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = None

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(slots=True)
class StepOutput:
    """What a step produced.

    Return one from an executor (``StepOutput(content=...)``); the engine fills in
    the step's name, id, type and metrics. ``success=False`` records a failure as
    data: the run goes on, and ends as ``COMPLETED_WITH_ERRORS``. ``stop=True``
    ends the whole run after this step, on purpose. ``skipped`` marks a step that
    did not run (a condition not taken, or a failure skipped by ``on_error="skip"``);
    the previous content then flows on to the next step. ``metadata`` holds what a
    container decided (a condition's ``result``, a router's ``selected`` steps, a
    loop's ``iterations``).
    """

    content: Any = None
    success: bool = True
    error: str | None = None
    stop: bool = False
    step_name: str | None = None
    step_id: str | None = None
    step_type: str | None = None
    executor_type: str | None = None
    executor_name: str | None = None
    steps: list[StepOutput] | None = None
    metrics: StepMetrics | None = None
    skipped: bool = False
    metadata: dict[str, Any] | None = None

    def __str__(self) -> str:
        return format_content(self.content)


@dataclass(slots=True)
class StepInput:
    """What a step receives.

    ``input`` is the workflow's input; ``previous_step_content`` the content of the
    step before (after a Parallel: a dict of every branch's content by name);
    ``previous_step_outputs`` every earlier output by step name.
    """

    input: Any = None
    previous_step_content: Any = None
    previous_step_outputs: dict[str, StepOutput] = field(default_factory=dict)
    additional_data: dict[str, Any] | None = None

    def get_step_output(self, name: str) -> StepOutput | None:
        """The output of the earlier step called ``name`` (at any depth), or None."""
        return self.previous_step_outputs.get(name)

    def get_step_content(self, name: str) -> Any:
        """The content of the earlier step called ``name``; for a Parallel, a dict by branch."""
        output = self.previous_step_outputs.get(name)
        return None if output is None else output.content

    def get_last_step_content(self) -> Any:
        """The content of the step just before this one."""
        return self.previous_step_content

    def get_all_previous_content(self) -> str:
        """Every earlier step's content, as text with a heading per step."""
        return "\n\n".join(
            f"## {name}\n{format_content(output.content)}"
            for name, output in self.previous_step_outputs.items()
            if output.content is not None and not output.skipped
        )

    @property
    def message(self) -> Any:
        """The text an agent would receive: the previous content, else the input."""
        return self.input if self.previous_step_content is None else self.previous_step_content


@dataclass(slots=True)
class WorkflowExecutionInput:
    """What a fully-Python workflow function receives (``steps=fn(workflow, execution_input)``)."""

    input: Any = None
    additional_data: dict[str, Any] | None = None

    @property
    def message(self) -> Any:
        return self.input


@dataclass(slots=True)
class WorkflowRunOutput:
    """The result of one workflow run."""

    run_id: str
    workflow_id: str
    workflow_name: str
    session_id: str
    status: RunStatus
    content: Any = None
    step_outputs: list[StepOutput] = field(default_factory=list)
    input: Any = None
    error: str | None = None
    duration: float = 0.0
    session_state: dict[str, Any] | None = None
    parent_run_id: str | None = None
    #: what a paused run waits for (a :class:`plait.PendingInput` per step)
    pending: list[Any] | None = None
    #: the runs its agent and team steps made (:class:`plait.AgentRunOutput`) and its nested
    #: workflows' runs (WorkflowRunOutput), in the order they finished (Agno's field); a run
    #: resumed from storage lists only those of its steps that ran again
    step_executor_runs: list[Any] = field(default_factory=list)

    @property
    def metrics(self) -> StepMetrics:
        """Tokens and cost summed over every step, and the run's duration."""
        total = StepMetrics(duration=self.duration)
        _sum_metrics(self.step_outputs, total)
        return total

    def __str__(self) -> str:
        return format_content(self.content)


def _sum_metrics(outputs: list[StepOutput], total: StepMetrics) -> None:
    for output in outputs:
        if output.steps:
            _sum_metrics(output.steps, total)
        elif output.metrics is not None:
            total.input_tokens += output.metrics.input_tokens
            total.output_tokens += output.metrics.output_tokens
            if output.metrics.cost is not None:
                total.cost = (total.cost or 0.0) + output.metrics.cost


def format_content(content: Any) -> str:
    """Content as text: strings as they are, a Parallel's dict as a section per branch,
    pydantic models and other data as JSON."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, dict) and all(
        isinstance(k, str) and isinstance(v, (str, type(None))) for k, v in content.items()
    ):
        return "\n\n".join(f"## {name}\n{format_content(value)}" for name, value in content.items())
    dump = getattr(content, "model_dump_json", None)
    if callable(dump):
        return str(dump())
    try:
        return json.dumps(content, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(content)
