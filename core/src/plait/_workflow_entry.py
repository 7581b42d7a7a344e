"""A workflow's entry points for fresh runs: ``run``/``arun``, ``start``/``astart``,
``recover``, ``print_response``, and what their streams deliver.

:class:`WorkflowRuns` is the part of :class:`~plait.Workflow` that starts runs (the typed
overloads a type checker reads, the checks of the run options, the choice between a result
and a stream); the run itself is :mod:`plait._workflow_run`. Runs already stored are
:class:`plait._workflow_durable.DurableRuns`; the definition is :mod:`plait.workflow`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypedDict, cast, overload

from typing_extensions import Unpack

from plait import _workflow_run
from plait._io import WorkflowRunOutput
from plait._sync import EventStream, run_sync, sync
from plait._workflow_checks import check_run_options
from plait.errors import DefinitionError
from plait.events import Event, is_step_level

if TYPE_CHECKING:
    from plait._handle import AsyncRunHandle, RunHandle
    from plait._queue import QueuedRun
    from plait.workflow import Workflow

__all__ = ["RunArguments", "WorkflowRuns"]


class RunArguments(TypedDict, total=False):
    """The keyword arguments of :meth:`Workflow.run` and :meth:`Workflow.arun` besides
    ``stream`` and ``stream_events``, as the type checker sees them in their overloads."""

    session_id: str | None
    session_state: dict[str, Any] | None
    additional_data: dict[str, Any] | None
    run_id: str | None
    sinks: Sequence[Any]
    user_id: str | None
    metadata: dict[str, Any] | None
    dependencies: dict[str, Any] | None
    add_dependencies_to_context: bool | None
    images: Sequence[Any] | None
    audio: Sequence[Any] | None
    videos: Sequence[Any] | None
    files: Sequence[Any] | None


class WorkflowRuns:
    """The entry points of :class:`~plait.Workflow` that start runs."""

    if TYPE_CHECKING:  # provided by Workflow
        name: str
        stream: bool
        stream_events: bool
        stream_executor_events: bool

    @overload
    def run(
        self,
        input: Any = None,
        *,
        stream: Literal[False] | None = None,
        stream_events: Literal[False] | None = None,
        **options: Unpack[RunArguments],
    ) -> WorkflowRunOutput: ...
    @overload
    def run(
        self,
        input: Any = None,
        *,
        stream: Literal[True],
        stream_events: bool | None = None,
        **options: Unpack[RunArguments],
    ) -> Iterator[Event]: ...
    @overload
    def run(
        self,
        input: Any = None,
        *,
        stream: bool | None = None,
        stream_events: Literal[True],
        **options: Unpack[RunArguments],
    ) -> Iterator[Event]: ...
    @overload
    def run(
        self,
        input: Any = None,
        *,
        stream: bool | None = None,
        stream_events: bool | None = None,
        **options: Unpack[RunArguments],
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
        user_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        dependencies: dict[str, Any] | None = None,
        add_dependencies_to_context: bool | None = None,
        images: Sequence[Any] | None = None,
        audio: Sequence[Any] | None = None,
        videos: Sequence[Any] | None = None,
        files: Sequence[Any] | None = None,
    ) -> WorkflowRunOutput | Iterator[Event]:
        """Run to the end and return a :class:`WorkflowRunOutput` (raising a
        :class:`~plait.errors.StepError` naming the failed step), or, with
        ``stream=True``, return an iterator of events.

        ``images``, ``audio``, ``videos`` and ``files`` (parts, URLs, paths, bytes or Agno's
        media objects) reach every step's ``StepInput`` (Agno's ``step_input.images``...); an
        agent or team step sends them with its message. With storage they are stored with the
        run (their bytes once, by digest), so a resumed or replayed run has them too."""
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
                user_id=user_id,
                metadata=metadata,
                dependencies=dependencies,
                add_dependencies_to_context=add_dependencies_to_context,
                images=images,
                audio=audio,
                videos=videos,
                files=files,
            )
        )

    @overload
    def arun(
        self,
        input: Any = None,
        *,
        stream: Literal[False] | None = None,
        stream_events: Literal[False] | None = None,
        **options: Unpack[RunArguments],
    ) -> Coroutine[Any, Any, WorkflowRunOutput]: ...
    @overload
    def arun(
        self,
        input: Any = None,
        *,
        stream: Literal[True],
        stream_events: bool | None = None,
        **options: Unpack[RunArguments],
    ) -> AsyncIterator[Event]: ...
    @overload
    def arun(
        self,
        input: Any = None,
        *,
        stream: bool | None = None,
        stream_events: Literal[True],
        **options: Unpack[RunArguments],
    ) -> AsyncIterator[Event]: ...
    @overload
    def arun(
        self,
        input: Any = None,
        *,
        stream: bool | None = None,
        stream_events: bool | None = None,
        **options: Unpack[RunArguments],
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
        user_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        dependencies: dict[str, Any] | None = None,
        add_dependencies_to_context: bool | None = None,
        images: Sequence[Any] | None = None,
        audio: Sequence[Any] | None = None,
        videos: Sequence[Any] | None = None,
        files: Sequence[Any] | None = None,
    ) -> Any:
        """``await workflow.arun(x)`` returns a :class:`WorkflowRunOutput`;
        ``async for event in workflow.arun(x, stream=True)`` streams events.

        ``user_id`` is stored with the run and shown as ``RunContext.user_id``;
        ``metadata`` and ``dependencies`` merge with the workflow's (see :class:`Workflow`)."""
        stream, stream_events = self._stream_flags(stream, stream_events)
        if user_id is not None or metadata is not None or dependencies is not None:
            check_run_options(self.name, user_id, metadata, dependencies)
        if add_dependencies_to_context is not None and not isinstance(add_dependencies_to_context, bool):
            raise DefinitionError(
                f"Workflow {self.name!r}: run(): add_dependencies_to_context must be True or False, "
                f"got {add_dependencies_to_context!r}"
            )

        options: dict[str, Any] = {
            "session_id": session_id,
            "session_state": session_state,
            "additional_data": additional_data,
            "run_id": run_id,
            "sinks": sinks,
            "user_id": user_id,
            "metadata": metadata,
            "dependencies": dependencies,
            "add_dependencies_to_context": add_dependencies_to_context,
        }
        if images is not None or audio is not None or videos is not None or files is not None:
            from plait._parts import run_media  # checked now: a wrong type fails the call, not the run

            media = run_media(
                f"Workflow {self.name!r}: run()", images=images, audio=audio, videos=videos, files=files
            )
            options.update(media or {})
        if not stream:
            return _workflow_run.run(
                cast("Workflow", self), input, listeners=(), stream_events=stream_events, **options
            )
        return EventStream(_stream_start(cast("Workflow", self), input, stream_events, options))

    @overload
    def start(
        self,
        input: Any = None,
        *,
        on_event: Callable[[Event], None] | None = None,
        queue: Literal[False] = False,
        **options: Unpack[RunArguments],
    ) -> RunHandle: ...
    @overload
    def start(
        self, input: Any = None, *, queue: Literal[True], priority: int = 0, **options: Unpack[RunArguments]
    ) -> QueuedRun: ...
    def start(
        self,
        input: Any = None,
        *,
        on_event: Callable[[Event], None] | None = None,
        queue: bool = False,
        priority: int = 0,
        **options: Unpack[RunArguments],
    ) -> RunHandle | QueuedRun:
        """Start a run in the background and return at once with its :class:`~plait.RunHandle`
        (``run_id``, ``status()``, ``wait()``, ``events()``, ``cancel()``): the run goes on in
        a thread with an event loop of its own. Takes :meth:`run`'s options; ``on_event`` is
        called with each event, on the run's thread.

        ``queue=True`` only stores the run, as QUEUED, for a worker (``plait worker``) to claim
        and execute, highest ``priority`` first, and returns its :class:`~plait.QueuedRun`."""
        if queue is True:
            from plait._queue import enqueue

            return run_sync(
                enqueue(cast("Workflow", self), input, options.pop("run_id", None), priority, dict(options))
            )
        _not_queued(self.name, queue, priority)
        from plait import _handle

        return _handle.start(
            cast("Workflow", self), input, options.pop("run_id", None), on_event, dict(options)
        )

    def recover(self) -> dict[str, str]:
        """Resume, once each, every stored run of this workflow whose process died (its lease
        expired): what a worker does by itself, for use without one. ``{run_id: status}``."""
        from plait._queue import recover

        return run_sync(recover(cast("Workflow", self)))

    async def arecover(self) -> dict[str, str]:
        """:meth:`recover` from async code."""
        from plait._queue import recover

        return await recover(cast("Workflow", self))

    @overload
    async def astart(
        self,
        input: Any = None,
        *,
        on_event: Callable[[Event], None] | None = None,
        queue: Literal[False] = False,
        **options: Unpack[RunArguments],
    ) -> AsyncRunHandle: ...
    @overload
    async def astart(
        self, input: Any = None, *, queue: Literal[True], priority: int = 0, **options: Unpack[RunArguments]
    ) -> QueuedRun: ...
    async def astart(
        self,
        input: Any = None,
        *,
        on_event: Callable[[Event], None] | None = None,
        queue: bool = False,
        priority: int = 0,
        **options: Unpack[RunArguments],
    ) -> AsyncRunHandle | QueuedRun:
        """:meth:`start` from async code: the run is a task of the current event loop and
        the :class:`~plait.AsyncRunHandle` is awaited (``await handle.wait()``,
        ``async for event in handle.events()``); ``queue=True`` stores it for a worker
        (``await queued.await_end()``)."""
        if queue is True:
            from plait._queue import enqueue

            return await enqueue(
                cast("Workflow", self), input, options.pop("run_id", None), priority, dict(options)
            )
        _not_queued(self.name, queue, priority)
        from plait import _handle

        return await _handle.astart(
            cast("Workflow", self), input, options.pop("run_id", None), on_event, dict(options)
        )

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
            cast("Workflow", self), input, stream=stream, markdown=markdown, options=options
        )
        return output

    async def aprint_response(
        self, input: Any = None, *, stream: bool | None = None, markdown: bool = False, **options: Any
    ) -> WorkflowRunOutput | None:
        from plait.console import aprint_run

        stream, _ = self._stream_flags(stream, None)
        output: WorkflowRunOutput | None = await aprint_run(
            cast("Workflow", self), input, stream=stream, markdown=markdown, options=options
        )
        return output

    def _stream_listener(
        self, deliver: Callable[[Event], None], stream_events: bool
    ) -> Callable[[Event], None]:
        """What a stream delivers: without ``stream_events`` run and content events only;
        with ``stream_executor_events=False`` no events of the agents and teams in steps."""
        if not self.stream_executor_events:
            deliver = _without_executor_events(deliver)
        return deliver if stream_events else _run_level(deliver)

    def _stream_flags(self, stream: bool | None, stream_events: bool | None) -> tuple[bool, bool]:
        stream_events = self.stream_events if stream_events is None else stream_events
        stream = (self.stream if stream is None else stream) or stream_events
        return stream, stream_events


#: the events of an agent or team run that reach a stream even with
#: ``stream_executor_events=False`` (Agno's terminal executor events)
_EXECUTOR_TERMINAL_EVENTS = frozenset(
    {"RunCompleted", "RunCancelled", "TeamRunCompleted", "TeamRunCancelled"}
)


def _stream_start(
    workflow: Workflow, input: Any, stream_events: bool, options: dict[str, Any]
) -> Callable[[Callable[[Event], None]], Coroutine[Any, Any, WorkflowRunOutput]]:
    """What an :class:`EventStream` starts: the run, delivering to its listener (a function
    of its own, so that ``arun`` without ``stream`` makes no closure over its arguments)."""

    def start(listener: Callable[[Event], None]) -> Coroutine[Any, Any, WorkflowRunOutput]:
        listeners = (workflow._stream_listener(listener, stream_events),)
        return _workflow_run.run(workflow, input, listeners=listeners, stream_events=stream_events, **options)

    return start


def _without_executor_events(deliver: Callable[[Event], None]) -> Callable[[Event], None]:
    """A stream without the events of the agents and teams inside steps (their run starts,
    content deltas, tool calls, model retries, errors; their completions still come, as in
    Agno): ``Workflow(stream_executor_events=False)``."""

    def listener(event: Event) -> None:
        executor = (
            getattr(event, "agent_name", None) is not None or getattr(event, "team_name", None) is not None
        )
        if not executor or event.event in _EXECUTOR_TERMINAL_EVENTS:
            deliver(event)

    return listener


def _run_level(deliver: Callable[[Event], None]) -> Callable[[Event], None]:
    """What a stream without ``stream_events`` delivers: run and content events, not step ones."""

    def listener(event: Event) -> None:
        if not is_step_level(event):
            deliver(event)

    return listener


def _not_queued(name: str, queue: Any, priority: Any) -> None:
    """start() / astart() without queue=True: nothing of the queue's may be given."""
    if queue is not False or priority != 0:
        raise DefinitionError(
            f"Workflow {name!r}: start(): priority= is for queue=True, and queue must be True or "
            f"False, got queue={queue!r}, priority={priority!r}"
        )
