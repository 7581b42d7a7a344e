"""The Workflow: a named tree of steps, or one Python function, and its entry points.

The entry points are written once, async (``arun``, ``acontinue_run``); ``run`` and
``continue_run`` drive them from sync code (plait._sync). A run itself is
:mod:`plait._workflow_run` (set-up, run frame, nested runs); a run with storage
keeps its record through :mod:`plait._runs`.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, overload

from plait import _workflow_run
from plait._budget import Budget, check_budget
from plait._checks import check_seconds
from plait._executors import Callee
from plait._io import (
    WorkflowRunOutput,
)
from plait._limits import RateLimit, check_limits
from plait._pause import Durability
from plait._sessions import MemorySessions
from plait._sync import EventStream, run_sync, sync
from plait.errors import DefinitionError
from plait.events import (
    STEP_LEVEL_EVENTS,
    Event,
)
from plait.primitives import StepNode, as_nodes, check_tree
from plait.runners import Runner, resolve_runner

if TYPE_CHECKING:
    from plait.storage import Storage

__all__ = ["Workflow", "resolve_runner"]


class Workflow:
    """A workflow: ``steps=[...]`` (steps, containers, agents, functions, workflows)
    or ``steps=fn(workflow, execution_input)`` for a fully-Python workflow.

    >>> workflow = Workflow(name="Research and Write", steps=[research, write])
    >>> workflow.run("history of AI").content
    >>> for event in workflow.run("...", stream=True, stream_events=True): ...

    ``session_state`` is the initial state of each new session; ``timeout`` bounds
    a whole run (seconds); ``runner`` chooses where parallel branches execute;
    ``tracer_provider`` replaces the global OpenTelemetry provider; ``sinks``
    receive every event of every run (objects with ``handle(event)``, or names
    of registered sinks such as ``"console"``).

    ``storage`` (a :class:`~plait.storage.Storage` or a URL such as
    ``"sqlite:///runs.db"``; default ``$PLAIT_STORAGE``) makes runs durable: each
    completed step is checkpointed (``durability="step"``; ``"batch"`` writes in
    the background, ``"exit"`` when the run ends), runs can be resumed with
    :meth:`continue_run`, session state persists across processes, and
    ``store_events=True`` keeps every event.

    ``budget`` (a :class:`~plait.Budget`) limits what one run may spend: requests, tool
    calls, tokens, cost, counted over every agent, team, tool and nested workflow inside it,
    parallel branches included; a call that would cross a limit stops the run with
    :class:`~plait.errors.BudgetExceededError` before it is made. ``limits``
    (``{"openai": RateLimit(requests_per_minute=500)}``, keys a provider or a model string)
    make calls wait their turn instead of receiving 429s, across every branch, nested
    workflow and concurrent run of this workflow.
    """

    #: how many sessions a workflow without storage keeps in memory (least recently used
    #: dropped first); with storage, sessions live in the storage and this does not apply
    max_sessions_in_memory: int = 1000
    #: seconds a run's lease lasts unless renewed (every third of it while the run executes)
    lease_ttl: float = 30.0

    def __init__(
        self,
        name: str | None = None,
        steps: Sequence[Any] | Callable[..., Any] | None = None,
        *,
        id: str | None = None,
        description: str | None = None,
        session_id: str | None = None,
        session_state: dict[str, Any] | None = None,
        input_schema: type[Any] | None = None,
        timeout: float | None = None,
        runner: Runner | str | None = None,
        tracer_provider: Any = None,
        sinks: Sequence[Any] = (),
        storage: Storage | str | None = None,
        durability: Durability = "step",
        store_events: bool = False,
        stream: bool = False,
        stream_events: bool = False,
        budget: Budget | None = None,
        limits: Mapping[str, RateLimit] | None = None,
    ) -> None:
        if name is None:
            name = "Workflow"
        if not isinstance(name, str) or not name.strip():
            raise DefinitionError(f"Workflow: expected a non-empty name, got {name!r}")
        self.name = name
        self.id = id or _slug(name)
        self.description = description
        self.session_id = session_id
        if session_state is not None and not isinstance(session_state, dict):
            raise DefinitionError(f"Workflow {name!r}: session_state must be a dict, got {session_state!r}")
        self.session_state = session_state
        self.input_schema = input_schema
        check_seconds(timeout, f"Workflow {name!r}")
        self.timeout = timeout
        self.runner = runner
        self._runner: Runner | None = None
        self.tracer_provider = tracer_provider
        self.sinks = _check_sinks(sinks, f"Workflow {name!r}")
        if durability not in ("step", "batch", "exit"):
            raise DefinitionError(
                f"Workflow {name!r}: durability must be 'step', 'batch' or 'exit', got {durability!r}"
            )
        self.storage = storage if storage is not None else os.environ.get("PLAIT_STORAGE") or None
        self._storage: Storage | None = None
        self.durability: Durability = durability
        self.store_events = store_events
        #: ``module:name`` of this workflow, recorded with its runs so the CLI can resume them
        self.target: str | None = None
        self.stream = stream
        self.stream_events = stream_events
        #: provider policy: what one run may spend, every agent, tool and nested workflow inside
        self.budget = check_budget(budget, f"Workflow {name!r}")
        #: provider policy: rate limits by provider or model, shared by every run of this workflow
        self.limits = limits
        self._limiters = check_limits(limits, f"Workflow {name!r}")
        self._function: Callee | None = None
        self.nodes: list[StepNode] = []
        if steps is None:
            raise DefinitionError(f"Workflow {name!r}: expected steps=[...] or steps=a function, got None")
        if isinstance(steps, Workflow):
            self.nodes = as_nodes([steps], where=f"Workflow {name!r}")
        elif (
            callable(steps)
            and not isinstance(steps, (list, tuple, StepNode))
            and not hasattr(steps, "run_as_step")
        ):
            self._function = Callee(steps, what=f"Workflow {name!r} steps function")
        else:
            self.nodes = as_nodes(steps, where=f"Workflow {name!r}")
            if not self.nodes:
                raise DefinitionError(f"Workflow {name!r}: expected at least one step")
        check_tree(self.nodes, where=f"Workflow {name!r}")
        self._tree_checked = False  # checked again at the first run: steps may change after this
        self._sessions = MemorySessions(self.max_sessions_in_memory)
        self._sessions_lock = threading.Lock()
        self._last_run_output: WorkflowRunOutput | None = None
        if self.storage is None:
            _warn_cache_without_storage(self)

    def __repr__(self) -> str:
        return f"Workflow({self.name!r})"

    def __getstate__(self) -> dict[str, Any]:
        # Shipped to another process (a distributed runner): the definition travels,
        # this process's sessions, lock, runner, storage connection and last output do not.
        state = dict(self.__dict__)
        state.update(_sessions=None, _sessions_lock=None, _runner=None, _storage=None, _last_run_output=None)
        state["_limiters"] = None  # rate limits are per process: rebuilt from ``limits`` there
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._limiters = check_limits(self.__dict__.get("limits"), f"Workflow {self.name!r}")
        self._sessions = MemorySessions(self.max_sessions_in_memory)
        self._sessions_lock = threading.Lock()

    # -- public API ------------------------------------------------------------------

    @overload
    def run(
        self,
        input: Any = None,
        *,
        stream: Literal[False] | None = None,
        stream_events: Literal[False] | None = None,
        session_id: str | None = None,
        session_state: dict[str, Any] | None = None,
        additional_data: dict[str, Any] | None = None,
        run_id: str | None = None,
        sinks: Sequence[Any] = (),
    ) -> WorkflowRunOutput: ...
    @overload
    def run(
        self,
        input: Any = None,
        *,
        stream: Literal[True],
        stream_events: bool | None = None,
        session_id: str | None = None,
        session_state: dict[str, Any] | None = None,
        additional_data: dict[str, Any] | None = None,
        run_id: str | None = None,
        sinks: Sequence[Any] = (),
    ) -> Iterator[Event]: ...
    @overload
    def run(
        self,
        input: Any = None,
        *,
        stream: bool | None = None,
        stream_events: Literal[True],
        session_id: str | None = None,
        session_state: dict[str, Any] | None = None,
        additional_data: dict[str, Any] | None = None,
        run_id: str | None = None,
        sinks: Sequence[Any] = (),
    ) -> Iterator[Event]: ...
    @overload
    def run(
        self,
        input: Any = None,
        *,
        stream: bool | None = None,
        stream_events: bool | None = None,
        session_id: str | None = None,
        session_state: dict[str, Any] | None = None,
        additional_data: dict[str, Any] | None = None,
        run_id: str | None = None,
        sinks: Sequence[Any] = (),
    ) -> WorkflowRunOutput | Iterator[Event]: ...
    def run(
        self,
        input: Any = None,
        *,
        stream: bool | None = None,
        stream_events: bool | None = None,
        session_id: str | None = None,
        session_state: dict[str, Any] | None = None,
        additional_data: dict[str, Any] | None = None,
        run_id: str | None = None,
        sinks: Sequence[Any] = (),
    ) -> WorkflowRunOutput | Iterator[Event]:
        """Run to the end and return a :class:`WorkflowRunOutput` (raising a
        :class:`~plait.errors.StepError` naming the failed step), or, with
        ``stream=True``, return an iterator of events."""
        return sync(
            self.arun(
                input,
                stream=stream,
                stream_events=stream_events,
                session_id=session_id,
                session_state=session_state,
                additional_data=additional_data,
                run_id=run_id,
                sinks=sinks,
            )
        )

    @overload
    def arun(
        self,
        input: Any = None,
        *,
        stream: Literal[False] | None = None,
        stream_events: Literal[False] | None = None,
        session_id: str | None = None,
        session_state: dict[str, Any] | None = None,
        additional_data: dict[str, Any] | None = None,
        run_id: str | None = None,
        sinks: Sequence[Any] = (),
    ) -> Coroutine[Any, Any, WorkflowRunOutput]: ...
    @overload
    def arun(
        self,
        input: Any = None,
        *,
        stream: Literal[True],
        stream_events: bool | None = None,
        session_id: str | None = None,
        session_state: dict[str, Any] | None = None,
        additional_data: dict[str, Any] | None = None,
        run_id: str | None = None,
        sinks: Sequence[Any] = (),
    ) -> AsyncIterator[Event]: ...
    @overload
    def arun(
        self,
        input: Any = None,
        *,
        stream: bool | None = None,
        stream_events: Literal[True],
        session_id: str | None = None,
        session_state: dict[str, Any] | None = None,
        additional_data: dict[str, Any] | None = None,
        run_id: str | None = None,
        sinks: Sequence[Any] = (),
    ) -> AsyncIterator[Event]: ...
    @overload
    def arun(
        self,
        input: Any = None,
        *,
        stream: bool | None = None,
        stream_events: bool | None = None,
        session_id: str | None = None,
        session_state: dict[str, Any] | None = None,
        additional_data: dict[str, Any] | None = None,
        run_id: str | None = None,
        sinks: Sequence[Any] = (),
    ) -> Coroutine[Any, Any, WorkflowRunOutput] | AsyncIterator[Event]: ...
    def arun(
        self,
        input: Any = None,
        *,
        stream: bool | None = None,
        stream_events: bool | None = None,
        session_id: str | None = None,
        session_state: dict[str, Any] | None = None,
        additional_data: dict[str, Any] | None = None,
        run_id: str | None = None,
        sinks: Sequence[Any] = (),
    ) -> Any:
        """``await workflow.arun(x)`` returns a :class:`WorkflowRunOutput`;
        ``async for event in workflow.arun(x, stream=True)`` streams events."""
        stream, stream_events = self._stream_flags(stream, stream_events)

        def run(listener: Callable[[Event], None] | None) -> Coroutine[Any, Any, WorkflowRunOutput]:
            return _workflow_run.run(
                self,
                input,
                listeners=() if listener is None else (listener if stream_events else _run_level(listener),),
                stream_events=stream_events,
                session_id=session_id,
                session_state=session_state,
                additional_data=additional_data,
                run_id=run_id,
                sinks=sinks,
            )

        return EventStream(run) if stream else run(None)

    def print_response(
        self,
        input: Any = None,
        *,
        stream: bool | None = None,
        stream_events: bool | None = None,
        markdown: bool = False,
        **options: Any,
    ) -> WorkflowRunOutput | None:
        """Run and print the result for a person: with ``stream=True``, the nested
        steps live as they happen, then the final content (as Markdown if asked)."""
        from plait.console import print_run

        stream, stream_events = self._stream_flags(stream, stream_events)
        output: WorkflowRunOutput | None = print_run(
            self, input, stream=stream, markdown=markdown, options=options
        )
        return output

    async def aprint_response(
        self, input: Any = None, *, stream: bool | None = None, markdown: bool = False, **options: Any
    ) -> WorkflowRunOutput | None:
        from plait.console import aprint_run

        stream, _ = self._stream_flags(stream, None)
        output: WorkflowRunOutput | None = await aprint_run(
            self, input, stream=stream, markdown=markdown, options=options
        )
        return output

    async def aclose(self) -> None:
        """Close the storage this workflow opened from its URL (a storage object you
        passed stays yours to close). The workflow reopens it if it runs again."""
        storage, self._storage = self._storage, None
        if storage is not None and isinstance(self.storage, str):
            await storage.close()

    def close(self) -> None:
        """:meth:`aclose` from sync code."""
        run_sync(self.aclose())

    def get_last_run_output(self) -> WorkflowRunOutput | None:
        """The output of this workflow's most recent run in this process."""
        return self._last_run_output

    def get_session_state(self, session_id: str | None = None) -> dict[str, Any] | None:
        """The session state as its runs committed it (a copy), from the storage when the
        workflow has one; ``session_id`` defaults to the workflow's own ``session_id``, else
        the session of the last run in this process. None when there is no such session."""
        return run_sync(self.aget_session_state(session_id))

    async def aget_session_state(self, session_id: str | None = None) -> dict[str, Any] | None:
        """:meth:`get_session_state` from async code."""
        if session_id is None:
            last = self._last_run_output
            session_id = self.session_id or (last.session_id if last is not None else None)
            if session_id is None:
                return None
        storage = await self._ready_storage()
        if storage is None:
            return self._sessions.get(session_id)
        record = await storage.load_session(session_id)
        return None if record is None else record.state

    # -- execution -------------------------------------------------------------------

    def _stream_flags(self, stream: bool | None, stream_events: bool | None) -> tuple[bool, bool]:
        stream_events = self.stream_events if stream_events is None else stream_events
        stream = (self.stream if stream is None else stream) or stream_events
        return stream, stream_events

    #: a top-level run of this workflow (plait._workflow_run)
    _run = _workflow_run.run

    async def _ready_storage(self) -> Storage | None:
        if self.storage is None:
            return None
        if self._storage is None:
            from plait.storage import resolve_storage

            with self._sessions_lock:  # concurrent first runs must share one storage object
                if self._storage is None:
                    self._storage = resolve_storage(self.storage)
        assert self._storage is not None
        await self._storage.setup()  # idempotent; the backend guards it
        return self._storage

    # -- durable runs ------------------------------------------------------------------

    def continue_run(
        self,
        run_id: str,
        answers: dict[str, Any] | None = None,
        *,
        approve: bool | None = None,
        answer: Any = None,
        stream: bool = False,
        stream_events: bool = False,
        wait: float | bool = False,
    ) -> Any:
        """Resume a run that paused, crashed, failed or was cancelled, from its checkpoints.

        Completed steps are not executed again: their outputs and session state are
        restored. Answer paused steps with ``answers={step_id or step name: answer}``,
        ``approve=True/False`` (every pending confirmation), or ``answer=...`` (the
        only pending step). Works in another process, given the same storage. A run that
        another process is executing raises :class:`~plait.storage.RunClaimedError` naming it;
        ``wait=True`` (or seconds) waits for it to end or for its lease to expire instead.
        """
        return sync(
            self.acontinue_run(
                run_id,
                answers,
                approve=approve,
                answer=answer,
                stream=stream,
                stream_events=stream_events,
                wait=wait,
            )
        )

    def acontinue_run(
        self,
        run_id: str,
        answers: dict[str, Any] | None = None,
        *,
        approve: bool | None = None,
        answer: Any = None,
        stream: bool = False,
        stream_events: bool = False,
        wait: float | bool = False,
    ) -> Any:
        """``await workflow.acontinue_run(run_id, ...)``; with ``stream=True`` an async iterator."""

        def run(listener: Callable[[Event], None] | None) -> Coroutine[Any, Any, WorkflowRunOutput]:
            return self._resume(
                run_id,
                listeners=() if listener is None else (listener if stream_events else _run_level(listener),),
                stream_events=stream_events,
                answers=answers,
                approve=approve,
                answer=answer,
                wait=wait,
            )

        return EventStream(run) if stream or stream_events else run(None)

    async def _resume(
        self,
        run_id: str,
        *,
        listeners: Sequence[Callable[[Event], None]],
        stream_events: bool,
        answers: dict[str, Any] | None = None,
        approve: bool | None = None,
        answer: Any = None,
        wait: float | bool = False,
    ) -> WorkflowRunOutput:
        storage = await self._ready_storage()
        if storage is None:
            raise DefinitionError(
                f"Workflow {self.name!r}: continue_run needs storage (Workflow(storage='sqlite:///runs.db'))"
            )
        from plait._runs import resume

        return await resume(
            self,
            storage,
            run_id,
            listeners=listeners,
            stream_events=stream_events,
            answers=answers,
            approve=approve,
            answer=answer,
            wait=wait,
        )

    def _sink_objects(self) -> list[Any]:
        """The workflow's sinks, names resolved once (each sink keeps one queue and thread)."""
        if self.sinks and any(isinstance(s, str) for s in self.sinks):
            from plait.sinks import create_sink

            self.sinks = [create_sink(s) if isinstance(s, str) else s for s in self.sinks]
        return self.sinks

    def _resolve_runner(self) -> Runner:
        if self._runner is None:
            self._runner = resolve_runner(self.runner)
        return self._runner

    #: run as a step of an outer workflow (the :class:`plait.primitives.RunsAsStep`
    #: protocol): deeper, with a state copy merged back after
    run_as_step = _workflow_run.run_nested
    #: this workflow's steps under a context, in the run frame (events, hooks, span, timeout)
    _execute = _workflow_run.execute

    def _validate_input(self, input: Any) -> Any:
        schema = self.input_schema
        if schema is None or isinstance(input, schema):
            return input
        from pydantic import ValidationError

        try:
            if isinstance(input, (str, bytes)):
                return schema.model_validate_json(input)
            return schema.model_validate(input)
        except ValidationError as exc:
            raise DefinitionError(
                f"Workflow {self.name!r}: input does not match {schema.__name__}: {exc}"
            ) from exc


def _run_level(deliver: Callable[[Event], None]) -> Callable[[Event], None]:
    """What a stream without ``stream_events`` delivers: run and content events, not step ones."""

    def listener(event: Event) -> None:
        if not isinstance(event, STEP_LEVEL_EVENTS):
            deliver(event)

    return listener


def _check_sinks(sinks: Any, where: str) -> list[Any]:
    if isinstance(sinks, (str, bytes)) or not isinstance(sinks, (list, tuple)):
        hint = f" (did you mean sinks=[{sinks!r}]?)" if isinstance(sinks, str) else ""
        raise DefinitionError(f"{where}: sinks must be a list of sinks, got {sinks!r}{hint}")
    for sink in sinks:
        if not isinstance(sink, str) and not callable(getattr(sink, "handle", None)):
            raise DefinitionError(
                f"{where}: each sink must be a registered sink's name or an object with handle(event), got {sink!r}"
            )
    return list(sinks)


def _slug(name: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in name.lower()).split()) or "workflow"


def _warn_cache_without_storage(workflow: Workflow) -> None:
    """A warning, not an error: such a workflow may still run nested in one with storage,
    where its steps' cache works."""
    pending = list(workflow.nodes)
    while pending:
        node = pending.pop(0)
        if node.cache is not None:
            warnings.warn(
                f"Workflow {workflow.name!r}: step {node.name!r} has cache= but workflow "
                f"{workflow.name!r} has no storage, so nothing is cached unless it runs nested in a "
                "workflow with storage; give storage= (or set $PLAIT_STORAGE)",
                UserWarning,
                stacklevel=3,
            )
            return
        pending.extend(node.children())
