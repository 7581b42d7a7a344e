"""The data that flows through a workflow: step inputs, step outputs, run outputs.

These are slotted dataclasses rather than pydantic models because one is built
for every step of every run; they serialize to JSON through pydantic
(:func:`plait._durable.dump_output` and ``load_output``, content in the tagged
form of :mod:`plait._codec`) when persisted or sent elsewhere, and through their
own ``to_dict()`` / ``from_dict()`` (Agno's names) for user code. Users import
them from ``plait``, which they report as their module (see :mod:`plait._public`).

Content as text (:func:`format_content`) and the content after a Parallel
(:class:`ParallelContent`) live in :mod:`plait._content`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from plait._content import ParallelContent, format_content
from plait._pause import PendingInput
from plait._public import publish as _publish

if TYPE_CHECKING:
    from plait._parts import AudioPart, FilePart, ImagePart, VideoPart

#: the media fields of StepInput, StepOutput and a run's options, in the order they are sent
MEDIA_FIELDS = ("images", "audio", "videos", "files")

__all__ = [
    "CODEC",
    "ParallelContent",
    "RunStatus",
    "StepInput",
    "StepMetrics",
    "StepOutput",
    "StepType",
    "WorkflowExecutionInput",
    "WorkflowMetrics",
    "WorkflowRunOutput",
    "WorkflowStepMetrics",
    "carries_media",
    "collect_media",
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
    #: stored by ``start(..., queue=True)``, waiting for a worker (``plait worker``) to claim it
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    COMPLETED_WITH_ERRORS = "COMPLETED_WITH_ERRORS"
    ERROR = "ERROR"
    CANCELLED = "CANCELLED"
    PAUSED = "PAUSED"
    # Agno's member names, as aliases of the members above
    pending = "PENDING"
    queued = "QUEUED"
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


class _Codec:
    """:func:`plait._codec.encode` and ``decode``, which that module puts here when it loads
    (``import plait`` loads it first). This module cannot import it: the codec's errors come
    from :mod:`plait.storage`, which imports this module."""

    encode: Callable[[Any, str], Any]
    decode: Callable[[Any, str, Iterable[type]], Any]


CODEC = _Codec()


class _AgentRuns:
    """The class of agent and team runs (:class:`plait.AgentRunOutput`), which
    :mod:`plait._runnable` puts here when it loads, for :meth:`WorkflowRunOutput.from_dict`
    to rebuild ``step_executor_runs`` (that module is above this one)."""

    output_class: Any = None


AGENT_RUNS = _AgentRuns()


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

    def to_dict(self) -> dict[str, Any]:
        """These measurements as JSON-compatible data (``total_tokens`` included)."""
        return {
            "duration": self.duration,
            "attempts": self.attempts,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "cost": self.cost,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepMetrics:
        """The metrics :meth:`to_dict` wrote (or Agno's ``RunMetrics.to_dict()``: the fields
        plait has are read, the others left out)."""
        _expect_mapping(data, f"{cls.__name__}.from_dict")
        return cls(
            duration=float(data.get("duration") or 0.0),
            attempts=int(data.get("attempts") or 1),
            input_tokens=int(data.get("input_tokens") or 0),
            output_tokens=int(data.get("output_tokens") or 0),
            cost=data.get("cost"),
        )

    def _add(self, other: StepMetrics) -> None:
        self.duration += other.duration
        self.attempts += other.attempts
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        if other.cost is not None:
            self.cost = (self.cost or 0.0) + other.cost


@dataclass(slots=True)
class WorkflowStepMetrics:
    """One step's entry in :attr:`WorkflowMetrics.steps` (Agno's ``StepMetrics``): who ran
    it, and its :class:`StepMetrics` in ``metrics`` (``.duration``, ``.input_tokens``, ...)."""

    step_name: str
    executor_type: str
    executor_name: str
    metrics: StepMetrics | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "step_name": self.step_name,
            "executor_type": self.executor_type,
            "executor_name": self.executor_name,
            "metrics": None if self.metrics is None else self.metrics.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkflowStepMetrics:
        _expect_mapping(data, f"{cls.__name__}.from_dict")
        metrics = data.get("metrics")
        return cls(
            step_name=str(data.get("step_name") or ""),
            executor_type=str(data.get("executor_type") or ""),
            executor_name=str(data.get("executor_name") or ""),
            metrics=None if metrics is None else StepMetrics.from_dict(metrics),
        )


@dataclass(slots=True)
class WorkflowMetrics(StepMetrics):
    """A run's metrics (``WorkflowRunOutput.metrics``), as Agno's ``WorkflowMetrics``:
    ``steps`` by step name (``metrics.steps["research"].metrics.duration``) and the run's
    ``duration``; and, as plait's :class:`StepMetrics`, the tokens and cost of every step
    summed (``metrics.input_tokens``, ``metrics.total_tokens``, ``metrics.cost``).

    ``steps`` holds every step that ran, containers included, at any depth (Agno lists only
    agents and teams); a name that ran more than once (a loop's iterations) sums its runs.
    """

    steps: dict[str, WorkflowStepMetrics] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Agno's shape, ``{"steps": {name: {...}}, "duration": ...}``, with plait's totals."""
        return {
            "steps": {name: step.to_dict() for name, step in self.steps.items()},
            "duration": self.duration,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "cost": self.cost,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkflowMetrics:
        _expect_mapping(data, f"{cls.__name__}.from_dict")
        steps = data.get("steps") or {}
        _expect_mapping(steps, f"{cls.__name__}.from_dict: 'steps'")
        return cls(
            duration=float(data.get("duration") or 0.0),
            input_tokens=int(data.get("input_tokens") or 0),
            output_tokens=int(data.get("output_tokens") or 0),
            cost=data.get("cost"),
            steps={name: WorkflowStepMetrics.from_dict(step) for name, step in steps.items()},
        )


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
    #: media the step produced (Agno's fields): :class:`~plait.ImagePart`, ... lists; the steps
    #: after it receive them in their ``StepInput.images`` (``videos``, ``audio``, ``files``)
    images: list[Any] | None = None
    videos: list[Any] | None = None
    audio: list[Any] | None = None
    files: list[Any] | None = None

    def __str__(self) -> str:
        return format_content(self.content)

    def media(self) -> dict[str, list[Any]]:
        """The media this output carries, by option name (``images``...), the empty ones left out."""
        found = {}
        for option in MEDIA_FIELDS:
            items = getattr(self, option)
            if items:
                found[option] = list(items)
        return found

    def to_dict(self) -> dict[str, Any]:
        """This output and the outputs inside it as JSON-compatible data (Agno's keys; plait's
        ``skipped`` and ``metadata`` too). Content and metadata are in the tagged form of
        :mod:`plait._codec`, so :meth:`from_dict` gives back the same types (a pydantic model,
        a dataclass, a datetime, a tuple, a :class:`ParallelContent`, ...)."""
        what = f"the output of step {self.step_id or self.step_name!r}"
        return {
            "content": CODEC.encode(self.content, what),
            "step_name": self.step_name,
            "step_id": self.step_id,
            "step_type": self.step_type,
            "executor_type": self.executor_type,
            "executor_name": self.executor_name,
            "metrics": None if self.metrics is None else self.metrics.to_dict(),
            "success": self.success,
            "error": self.error,
            "stop": self.stop,
            "skipped": self.skipped,
            "metadata": None
            if self.metadata is None
            else CODEC.encode(self.metadata, f"the metadata of {what}"),
            "steps": None if self.steps is None else [inner.to_dict() for inner in self.steps],
            **{
                option: CODEC.encode(items, f"the {option} of {what}")
                for option, items in self.media().items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, content_types: Iterable[type] = ()) -> StepOutput:
        """The output :meth:`to_dict` wrote (or Agno's ``StepOutput.to_dict()``). A pydantic
        model, dataclass or enum in the content is rebuilt from a class this process already
        holds (one it stored, one named with :func:`plait.allow_content_type`) or one of
        ``content_types``; a class named in the data is never imported."""
        _expect_mapping(data, f"{cls.__name__}.from_dict")
        types = list(content_types)
        what = f"the stored output of step {data.get('step_id') or data.get('step_name')!r}"
        metrics = data.get("metrics")
        metadata = data.get("metadata")
        steps = data.get("steps")
        if steps is not None and not isinstance(steps, list):
            raise TypeError(f"{what}: 'steps' must be a list of outputs, got {type(steps).__name__}")
        return cls(
            content=CODEC.decode(data.get("content"), what, types),
            success=bool(data.get("success", True)),
            error=data.get("error"),
            stop=bool(data.get("stop", False)),
            step_name=data.get("step_name"),
            step_id=data.get("step_id"),
            step_type=data.get("step_type"),
            executor_type=data.get("executor_type"),
            executor_name=data.get("executor_name"),
            steps=None if steps is None else [cls.from_dict(inner, content_types=types) for inner in steps],
            metrics=None if metrics is None else StepMetrics.from_dict(metrics),
            skipped=bool(data.get("skipped", False)),
            metadata=None if metadata is None else CODEC.decode(metadata, f"the metadata of {what}", types),
            **{
                option: CODEC.decode(data[option], f"the {option} of {what}", types)
                for option in MEDIA_FIELDS
                if data.get(option)
            },
        )


@dataclass(slots=True)
class StepInput:
    """What a step receives.

    ``input`` is the workflow's input; ``previous_step_content`` the content of the
    step before (after a Parallel: a :class:`ParallelContent`, every branch's content
    by name, which reads as Agno's sectioned text when used as text);
    ``previous_step_outputs`` every earlier output by step name. ``images``, ``videos``,
    ``audio`` and ``files`` (Agno's fields) are the run's media: those given to
    ``workflow.run(..., images=...)`` and those the earlier steps produced
    (``StepOutput.images``...); an agent or team step sends them with its message.
    """

    input: Any = None
    previous_step_content: Any = None
    previous_step_outputs: dict[str, StepOutput] = field(default_factory=dict)
    additional_data: dict[str, Any] | None = None
    images: list[ImagePart] = field(default_factory=list)
    videos: list[VideoPart] = field(default_factory=list)
    audio: list[AudioPart] = field(default_factory=list)
    files: list[FilePart] = field(default_factory=list)

    def media(self) -> dict[str, list[Any]]:
        """The media this step receives, by option name (``images``...), the empty ones left out."""
        return {option: list(getattr(self, option)) for option in MEDIA_FIELDS if getattr(self, option)}

    def get_step_output(self, name: str) -> StepOutput | None:
        """The output of the earlier step called ``name`` (at any depth), or None."""
        return self.previous_step_outputs.get(name)

    def get_step_content(self, name: str) -> Any:
        """The content of the earlier step called ``name``; for a Parallel, its
        :class:`ParallelContent` (by branch, or as Agno's text)."""
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

    def get_workflow_history(self, num_runs: int | None = None) -> list[tuple[str, str]]:
        """The earlier completed runs of this workflow in this session, oldest first, as
        ``(input, output)`` text: the last ``num_runs`` (None: all). For a step's code; see
        ``Workflow(add_workflow_history_to_steps=...)``."""
        runs: list[tuple[str, str]] = _read_history(num_runs, "get_workflow_history")
        return runs

    def get_workflow_history_context(self, num_runs: int | None = None) -> str | None:
        """:meth:`get_workflow_history` as Agno's ``<workflow_history_context>`` text (None:
        no earlier runs), the block an agent step is given."""
        text: str | None = _read_history(num_runs, "get_workflow_history_context", text=True)
        return text


#: how a step's code reads its workflow's earlier runs: set by plait._workflow_history when a
#: workflow is defined (this module is below the run machinery and does not import it)
HISTORY_READER: Callable[[Any, str, bool], Any] | None = None


def _read_history(num_runs: Any, method: str, text: bool = False) -> Any:
    if HISTORY_READER is None:  # no workflow defined in this process: no run either
        from plait.errors import DefinitionError

        raise DefinitionError(
            f"StepInput.{method}() reads the workflow's runs: call it in a step's code, during a run"
        )
    return HISTORY_READER(num_runs, method, text)


@dataclass(slots=True)
class WorkflowExecutionInput:
    """What a fully-Python workflow function receives (``steps=fn(workflow, execution_input)``):
    the run's input, ``additional_data`` and media (``images``, ``videos``, ``audio``, ``files``)."""

    input: Any = None
    additional_data: dict[str, Any] | None = None
    images: list[ImagePart] = field(default_factory=list)
    videos: list[VideoPart] = field(default_factory=list)
    audio: list[AudioPart] = field(default_factory=list)
    files: list[FilePart] = field(default_factory=list)

    @property
    def message(self) -> Any:
        return self.input


#: the keys :meth:`WorkflowRunOutput.from_dict` cannot do without
_RUN_KEYS = ("run_id", "workflow_id", "workflow_name", "session_id", "status")


@dataclass(slots=True)
class WorkflowRunOutput:
    """The result of one workflow run.

    ``step_outputs`` (Agno: ``step_results``, an alias) are the top-level steps' outputs, each
    with the outputs inside it in ``steps``; ``metrics`` is a :class:`WorkflowMetrics`.
    ``to_dict()`` / ``from_dict()`` turn it into JSON-compatible data and back.
    """

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
    #: who the run was for (``run(..., user_id=...)``) and its merged ``metadata``
    user_id: str | None = None
    metadata: dict[str, Any] | None = None
    #: a replayed or forked run's origin (``{"replay_of": ...}``, ``{"forked_from": ...,
    #: "fork_step": ...}``); None for a plain run
    lineage: dict[str, str] | None = None
    #: a replay's steps whose output differs from the original run's:
    #: ``[{"step_id", "original", "replay"}]`` (None for a run that is not a replay)
    replay_differences: list[dict[str, Any]] | None = None
    #: a completed run's media (Agno's fields): those it was given, then those its top-level
    #: steps produced (``StepOutput.images``...), in order; None when it has none
    images: list[Any] | None = None
    videos: list[Any] | None = None
    audio: list[Any] | None = None
    files: list[Any] | None = None

    @property
    def step_results(self) -> list[StepOutput]:
        """Agno's name for :attr:`step_outputs` (the same list)."""
        return self.step_outputs

    @step_results.setter
    def step_results(self, outputs: list[StepOutput]) -> None:
        self.step_outputs = outputs

    @property
    def metrics(self) -> WorkflowMetrics:
        """The run's duration, tokens and cost summed over every step, and each step's
        metrics by name in ``steps`` (Agno's ``WorkflowMetrics``); computed when read."""
        total = WorkflowMetrics(duration=self.duration)
        _sum_metrics(self.step_outputs, total)
        _collect_step_metrics(self.step_outputs, total.steps)
        return total

    def __str__(self) -> str:
        return format_content(self.content)

    def to_dict(self) -> dict[str, Any]:
        """This run as JSON-compatible data, with Agno's keys (``step_results``, ``metrics``,
        ``status`` as its value). Content, input and session state are in the tagged form of
        :mod:`plait._codec`, so :meth:`from_dict` gives back the same types."""
        what = f"workflow {self.workflow_name!r} (run {self.run_id})"
        return {
            "run_id": self.run_id,
            "workflow_id": self.workflow_id,
            "workflow_name": self.workflow_name,
            "session_id": self.session_id,
            "parent_run_id": self.parent_run_id,
            "status": RunStatus(self.status).value,
            "content": CODEC.encode(self.content, f"the content of {what}"),
            "input": CODEC.encode(self.input, f"the input of {what}"),
            "error": self.error,
            "duration": self.duration,
            "session_state": None
            if self.session_state is None
            else CODEC.encode(self.session_state, f"the session state of {what}"),
            "pending": None if self.pending is None else [p.to_dict() for p in self.pending],
            "step_results": [output.to_dict() for output in self.step_outputs],
            "metrics": self.metrics.to_dict(),
            "step_executor_runs": [run.to_dict() for run in self.step_executor_runs],
            "user_id": self.user_id,
            "lineage": self.lineage,
            "metadata": None
            if self.metadata is None
            else CODEC.encode(self.metadata, f"the metadata of {what}"),
            **{
                option: CODEC.encode(getattr(self, option), f"the {option} of {what}")
                for option in MEDIA_FIELDS
                if getattr(self, option)
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, content_types: Iterable[type] = ()) -> WorkflowRunOutput:
        """The run :meth:`to_dict` wrote (``step_outputs`` is read too). The metrics are computed
        again from the steps. A pydantic model, dataclass or enum in the content is rebuilt
        from a class this process already holds (one it stored, one named with
        :func:`plait.allow_content_type`) or one of ``content_types``; a class named in the
        data is never imported."""
        where = f"{cls.__name__}.from_dict"
        _expect_mapping(data, where)
        missing = [key for key in _RUN_KEYS if data.get(key) is None]
        if missing:
            raise ValueError(
                f"{where}: missing {', '.join(repr(k) for k in missing)}; expected the dict that "
                f"WorkflowRunOutput.to_dict() writes, got one with keys {sorted(data)}"
            )
        try:
            status = RunStatus(data["status"])
        except ValueError:
            statuses = ", ".join(repr(s.value) for s in RunStatus if s.name.isupper())
            raise ValueError(
                f"{where}: unknown status {data['status']!r}; expected one of {statuses}"
            ) from None
        types = list(content_types)
        what = f"workflow {data['workflow_name']!r} (run {data['run_id']})"
        steps = data.get("step_results", data.get("step_outputs")) or []
        if not isinstance(steps, list):
            raise TypeError(f"{where}: 'step_results' must be a list of outputs, got {type(steps).__name__}")
        state = data.get("session_state")
        pending = data.get("pending")
        runs = data.get("step_executor_runs") or []
        if not isinstance(runs, list):
            raise TypeError(
                f"{where}: 'step_executor_runs' must be a list of runs, got {type(runs).__name__}"
            )
        duration = data.get("duration")
        if duration is None:  # Agno keeps it in its metrics only
            duration = (data.get("metrics") or {}).get("duration")
        return cls(
            run_id=data["run_id"],
            workflow_id=data["workflow_id"],
            workflow_name=data["workflow_name"],
            session_id=data["session_id"],
            status=status,
            content=CODEC.decode(data.get("content"), f"the stored content of {what}", types),
            step_outputs=[StepOutput.from_dict(step, content_types=types) for step in steps],
            input=CODEC.decode(data.get("input"), f"the stored input of {what}", types),
            error=data.get("error"),
            duration=float(duration or 0.0),
            session_state=None
            if state is None
            else CODEC.decode(state, f"the stored session state of {what}", types),
            parent_run_id=data.get("parent_run_id"),
            pending=None if pending is None else [PendingInput.from_dict(p) for p in pending],
            step_executor_runs=[
                cls.from_dict(run, content_types=types)
                if isinstance(run, Mapping) and "workflow_id" in run
                else AGENT_RUNS.output_class.from_dict(run, content_types=types)
                for run in runs
            ],
            user_id=data.get("user_id"),
            lineage=data.get("lineage"),
            metadata=None
            if data.get("metadata") is None
            else CODEC.decode(data["metadata"], f"the stored metadata of {what}", types),
            **{
                option: CODEC.decode(data[option], f"the stored {option} of {what}", types)
                for option in MEDIA_FIELDS
                if data.get(option)
            },
        )


def carries_media(value: StepInput | StepOutput | WorkflowRunOutput) -> bool:
    """Whether ``value`` holds any media (a cheap check before its ``media()``)."""
    return bool(value.images or value.videos or value.audio or value.files)


def collect_media(
    target: WorkflowRunOutput | StepOutput, given: dict[str, list[Any]] | None, outputs: list[StepOutput]
) -> None:
    """Set ``target``'s media as Agno collects them: those ``given``, then those of ``outputs``
    (skipped ones left out), in order; None where there are none."""
    for option in MEDIA_FIELDS:
        found = [*(given or {}).get(option, ())]
        for output in outputs:
            if not output.skipped:
                found.extend(getattr(output, option) or ())
        setattr(target, option, found or None)


def _expect_mapping(data: Any, where: str) -> None:
    if not isinstance(data, Mapping):
        raise TypeError(
            f"{where}: expected a dict (as to_dict() writes it), got {type(data).__name__} {data!r:.80}"
        )


def _sum_metrics(outputs: list[StepOutput], total: StepMetrics) -> None:
    for output in outputs:
        if output.steps:
            _sum_metrics(output.steps, total)
        elif output.metrics is not None:
            total.input_tokens += output.metrics.input_tokens
            total.output_tokens += output.metrics.output_tokens
            if output.metrics.cost is not None:
                total.cost = (total.cost or 0.0) + output.metrics.cost


def _collect_step_metrics(outputs: list[StepOutput], steps: dict[str, WorkflowStepMetrics]) -> None:
    """Every output's metrics by step name, at any depth (a container before its steps); a
    name seen again (a loop's iterations) adds to its entry."""
    for output in outputs:
        name = output.step_name
        if name is not None and output.metrics is not None:
            entry = steps.get(name)
            if entry is None or entry.metrics is None:
                steps[name] = WorkflowStepMetrics(
                    step_name=name,
                    executor_type=output.executor_type or (output.step_type or "step").lower(),
                    executor_name=output.executor_name or name,
                    metrics=StepMetrics(  # a copy (dataclasses.replace costs 4x as much)
                        output.metrics.duration,
                        output.metrics.attempts,
                        output.metrics.input_tokens,
                        output.metrics.output_tokens,
                        output.metrics.cost,
                    ),
                )
            else:
                entry.metrics._add(output.metrics)
        if output.steps:
            _collect_step_metrics(output.steps, steps)


# Last: the names plait exports report ``plait`` as their home (plait._public).
_publish(__name__, globals())
