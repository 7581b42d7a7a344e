"""What agents and teams share: their result, the options that join a run to an enclosing
one, and the entry points (``run``, ``arun``, ``print_response``, running as a step), all
over one method, :meth:`Runnable.invoke`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Generic

from typing_extensions import TypeVar  # a TypeVar with a default (typing's has one from 3.13)

from plait._context import current_step
from plait._history import HistoryScope, check_session_id, decode_messages
from plait._io import AGENT_RUNS, CODEC, StepInput, StepMetrics, StepOutput, carries_media, format_content
from plait._sync import EventStream, sync
from plait.events import Event, RunContentEvent
from plait.models import Message, Reasoning, ToolCall, Usage

if TYPE_CHECKING:
    from plait._context import StepContext

__all__ = ["STANDALONE", "AgentRunOutput", "ContentT", "OutputT", "RunOptions", "Runnable"]

#: what an agent's runs produce: ``str``, or an instance of its ``output_schema``
#: (for a type checker only: ``Agent[Forecast]``, ``AgentRunOutput[Forecast]``)
ContentT = TypeVar("ContentT", default=Any)
OutputT = TypeVar("OutputT", default=Any)


@dataclass(slots=True)
class AgentRunOutput(Generic[ContentT]):
    """The result of one agent run: content (a validated object with ``output_schema``),
    the conversation, and token usage."""

    content: ContentT
    agent_name: str
    run_id: str
    model: str
    messages: list[Message] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    duration: float = 0.0
    #: the run's cost, when its models have :class:`~plait.models.Pricing`
    cost: float | None = None

    def __str__(self) -> str:
        return format_content(self.content)

    def to_dict(self) -> dict[str, Any]:
        """This run as JSON-compatible data; content and messages in the codec's tagged
        form, so :meth:`from_dict` gives back the same types."""
        what = f"agent {self.agent_name!r} (run {self.run_id})"
        return {
            "agent_name": self.agent_name,
            "run_id": self.run_id,
            "model": self.model,
            "content": CODEC.encode(self.content, f"the content of {what}"),
            "messages": CODEC.encode(self.messages, f"the messages of {what}"),
            "usage": {
                "input_tokens": self.usage.input_tokens,
                "output_tokens": self.usage.output_tokens,
                "requests": self.usage.requests,
            },
            "duration": self.duration,
            "cost": self.cost,
        }

    @classmethod
    def from_dict(cls, data: Any, *, content_types: Any = ()) -> AgentRunOutput[Any]:
        """The run :meth:`to_dict` wrote (``content_types`` as for
        :meth:`plait.WorkflowRunOutput.from_dict`)."""
        where = f"{cls.__name__}.from_dict"
        if not isinstance(data, dict) or not isinstance(data.get("agent_name"), str):
            raise TypeError(
                f"{where}: expected the dict that AgentRunOutput.to_dict() writes, got {data!r:.80}"
            )
        what = f"agent {data['agent_name']!r} (run {data.get('run_id')})"
        types = [Message, ToolCall, Reasoning, *content_types]
        usage = data.get("usage") or {}
        return cls(
            content=CODEC.decode(data.get("content"), f"the stored content of {what}", types),
            agent_name=data["agent_name"],
            run_id=str(data.get("run_id", "")),
            model=str(data.get("model", "")),
            messages=CODEC.decode(data.get("messages"), f"the stored messages of {what}", types) or [],
            usage=Usage(
                int(usage.get("input_tokens", 0)),
                int(usage.get("output_tokens", 0)),
                int(usage.get("requests", 0)),
            ),
            duration=float(data.get("duration") or 0.0),
            cost=data.get("cost"),
        )


AGENT_RUNS.output_class = AgentRunOutput


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How one agent or team run joins the run around it (all optional).

    ``emit`` receives its events, ``make_event(cls, **fields)`` stamps them (a workflow
    step's id and depth), ``run_blocking(fn)`` runs sync tools off the event loop, and
    ``tracer`` parents its spans. ``step_events`` asks for the run's own start and end events
    (Agno's RunStarted / RunCompleted: ``stream_events=True``), besides its content and tool
    events. ``history`` is the session whose conversation the run joins (plait._history).
    :meth:`RunOptions.of_step` gives those of a workflow step.
    """

    emit: Callable[[Event], None] | None = None
    make_event: Callable[..., Event] | None = None
    run_blocking: Callable[[Callable[[], Any]], Any] | None = None
    tracer: Any = None
    step_events: bool = False
    history: HistoryScope | None = None

    @classmethod
    def of_step(cls, ctx: StepContext) -> RunOptions:
        """The options of a run inside workflow step ``ctx``: its stream, ids, runner and trace."""
        run = ctx.run
        return cls(
            ctx.emit if run.listening else None,
            ctx.event,
            run.runner.run_blocking,
            run.tracer,
            run.step_events,
            # the workflow run's session: an agent with history=N continues its conversation there
            HistoryScope.of_step(ctx),
        )


#: a run on its own: no enclosing stream, ids, runner or trace
STANDALONE = RunOptions()


class Runnable:
    """What agents and teams share: ``run``/``arun``/``print_response`` and running as a step.

    Subclasses implement :meth:`invoke`, the one run of the agent or team; everything
    else (sync and async entry points, streams, steps, team members) goes through it.
    """

    name: str
    _last_run_output: AgentRunOutput | None

    def _enclosing(self) -> RunOptions:
        """Inside a workflow step's code, an agent's events go to that run's stream, stamped
        with that step (its id, its nested_depth), and its spans join that run's trace."""
        ctx = current_step()
        return STANDALONE if ctx is None else RunOptions.of_step(ctx)

    def run(
        self,
        input: Any = None,
        *,
        stream: bool = False,
        stream_events: bool = False,
        session_id: str | None = None,
        images: Sequence[Any] | None = None,
        audio: Sequence[Any] | None = None,
        videos: Sequence[Any] | None = None,
        files: Sequence[Any] | None = None,
    ) -> Any:
        """Run once: an :class:`AgentRunOutput`, or with ``stream=True`` an iterator of events.
        With ``session_id`` the run joins that conversation (see ``history=``). ``images``,
        ``audio``, ``videos`` and ``files`` go with the input (parts, URLs, paths or bytes; Agno's media
        objects too): the user message is then the input's text and those parts."""
        return sync(
            self.arun(
                input,
                stream=stream,
                stream_events=stream_events,
                session_id=session_id,
                images=images,
                audio=audio,
                videos=videos,
                files=files,
            )
        )

    def arun(
        self,
        input: Any = None,
        *,
        stream: bool = False,
        stream_events: bool = False,
        session_id: str | None = None,
        images: Sequence[Any] | None = None,
        audio: Sequence[Any] | None = None,
        videos: Sequence[Any] | None = None,
        files: Sequence[Any] | None = None,
    ) -> Any:
        """``await agent.arun(x)``, or ``async for event in agent.arun(x, stream=True)``."""
        if images is not None or audio is not None or videos is not None or files is not None:
            from plait._parts import input_parts

            input = input_parts(input, f"{type(self).__name__} {self.name!r}", images, audio, files, videos)
        scope = None
        if session_id is not None:
            check_session_id(session_id, f"{type(self).__name__} {self.name!r}")
            enclosing = current_step()  # inside a step: the workflow's storage keeps it
            scope = (
                HistoryScope(session_id)
                if enclosing is None
                else HistoryScope(
                    session_id, enclosing.run.storage, True, f"{enclosing.frame.run_id}/{enclosing.step_id}"
                )
            )
        if stream or stream_events:
            return EventStream(
                lambda listener: self.invoke(
                    input,
                    RunOptions(
                        emit=listener if stream_events else _content(listener),
                        step_events=stream_events,
                        history=scope,
                    ),
                )
            )
        options = self._enclosing()
        return self.invoke(input, options if scope is None else replace(options, history=scope))

    def print_response(
        self,
        input: Any = None,
        *,
        stream: bool = False,
        markdown: bool = False,
        session_id: str | None = None,
        images: Sequence[Any] | None = None,
        audio: Sequence[Any] | None = None,
        videos: Sequence[Any] | None = None,
        files: Sequence[Any] | None = None,
    ) -> AgentRunOutput | None:
        """Run and print the answer for a person (streamed live with ``stream=True``, as
        Markdown with ``markdown=True``); takes :meth:`run`'s ``session_id`` and media."""
        from plait.console import print_run

        options = _print_options(session_id, images, audio, videos, files)
        output: AgentRunOutput | None = print_run(
            self, input, stream=stream, markdown=markdown, options=options
        )
        return output

    async def aprint_response(
        self,
        input: Any = None,
        *,
        stream: bool = False,
        markdown: bool = False,
        session_id: str | None = None,
        images: Sequence[Any] | None = None,
        audio: Sequence[Any] | None = None,
        videos: Sequence[Any] | None = None,
        files: Sequence[Any] | None = None,
    ) -> AgentRunOutput | None:
        """:meth:`print_response` from async code."""
        from plait.console import aprint_run

        options = _print_options(session_id, images, audio, videos, files)
        output: AgentRunOutput | None = await aprint_run(
            self, input, stream=stream, markdown=markdown, options=options
        )
        return output

    def get_history(self, session_id: str, *, storage: Any = None) -> list[Message]:
        """The conversation kept for ``session_id``: its user, assistant and tool messages,
        oldest first (``storage``: where a workflow keeps it, when not this agent's own)."""
        return sync(self.aget_history(session_id, storage=storage))

    async def aget_history(self, session_id: str, *, storage: Any = None) -> list[Message]:
        """Async form of :meth:`get_history`."""
        history, agent_id = self._conversation()
        store = None if storage is None else await _ready(storage)
        records = await history.records(session_id, agent_id, None, store)
        return [m for record in records for m in decode_messages(record, history.where)]

    def clear_history(self, session_id: str, *, storage: Any = None) -> None:
        """Forget the conversation kept for ``session_id``."""
        sync(self.aclear_history(session_id, storage=storage))

    async def aclear_history(self, session_id: str, *, storage: Any = None) -> None:
        """Async form of :meth:`clear_history`."""
        history, agent_id = self._conversation()
        await history.clear(session_id, agent_id, None if storage is None else await _ready(storage))

    def _conversation(self) -> tuple[Any, str]:
        """Whose conversation a session holds: (its AgentHistory, the agent id it is kept under)."""
        raise NotImplementedError

    def get_last_run_output(self) -> AgentRunOutput | None:
        """The most recent run's output in this process (the last to finish, if runs overlap)."""
        return self._last_run_output

    async def run_as_step(self, step_input: StepInput, ctx: StepContext) -> StepOutput:
        """Run as a workflow step: the previous content (or the input) is the message (with
        the run's dependencies after it when ``add_dependencies_to_context=True``), and the
        step's media (``step_input.images``...) its parts after it. Its output joins the
        workflow run's ``step_executor_runs``."""
        message = step_input.message
        if ctx.run.context_dependencies is not None:
            message = with_dependencies(message, ctx.run.context_dependencies)
        if carries_media(step_input):
            from plait._parts import input_parts  # the run's media, after the message (as Agno sends them)

            message = input_parts(message, f"{type(self).__name__} {self.name!r}", **step_input.media())
        result = await self.invoke(message, RunOptions.of_step(ctx))
        ctx.frame.executor_runs.append(result)
        return StepOutput(
            content=result.content,
            metrics=StepMetrics(
                input_tokens=result.usage.input_tokens,
                output_tokens=result.usage.output_tokens,
                cost=result.cost,
            ),
        )

    # -- execution -------------------------------------------------------------------

    async def invoke(self, input: Any, options: RunOptions = STANDALONE) -> AgentRunOutput:
        """One run with ``input`` as the message, joined to an enclosing run by ``options``."""
        raise NotImplementedError


async def _ready(spec: Any) -> Any:
    from plait.storage import resolve_storage

    storage = resolve_storage(spec)
    assert storage is not None
    await storage.setup()
    return storage


def _content(deliver: Callable[[Event], None] | None) -> Callable[[Event], None] | None:
    """What an agent's stream without ``stream_events`` delivers: its content."""
    if deliver is None:
        return None

    def emit(event: Event) -> None:
        if isinstance(event, RunContentEvent):
            deliver(event)

    return emit


def _print_options(
    session_id: str | None,
    images: Sequence[Any] | None,
    audio: Sequence[Any] | None,
    videos: Sequence[Any] | None,
    files: Sequence[Any] | None,
) -> dict[str, Any]:
    """The options print_response passes on to ``arun`` (those given)."""
    given = {"session_id": session_id, "images": images, "audio": audio, "videos": videos, "files": files}
    return {name: value for name, value in given.items() if value is not None}


def with_dependencies(message: Any, dependencies: dict[str, Any]) -> str:
    """An agent step's message with the run's dependencies added as Agno does with
    ``add_dependencies_to_context=True``: after the text, inside ``<additional context>``."""
    import json

    text = format_content(message)
    context = json.dumps(dependencies, indent=2, default=str)
    return f"{text}\n\n<additional context>\n{context}\n</additional context>"
