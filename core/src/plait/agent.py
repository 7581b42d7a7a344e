"""Agents: a model with instructions, tools and an optional output schema.

An agent call is a small loop: ask the model; if it requests tools, run them
(concurrently, sync tools off the event loop) and ask again, up to
``max_tool_rounds``; with ``output_schema`` the final text is validated into the
pydantic model (natively where the provider supports it, else by asking for
JSON and re-asking once with the validation error). Every model and tool call
is a span and, when someone listens, an event. Agents hold no per-run state, so
one agent object may serve many concurrent runs and parallel branches.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, Literal, overload

from plait import _agent_calls as agent_calls
from plait._agent_calls import completed_fields
from plait._agno_options import agent_extras
from plait._budget import Budget, RunBudgets, active_meters, check_budget, open_meter, require_price
from plait._checks import check_model_string, check_number
from plait._context import current_step
from plait._history import AgentHistory, agent_history
from plait._ids import new_id
from plait._io import format_content
from plait._parts import has_media, message_parts
from plait._public import report_public_home
from plait._run_context import RunContext
from plait._runnable import STANDALONE, AgentRunOutput, OutputT, Runnable, RunOptions
from plait._tools import Tool, Toolset, run_tools, tool
from plait.errors import DefinitionError, PlaitError
from plait.events import (
    Event,
    RunCompletedEvent,
    RunErrorEvent,
    RunEvent,
    RunStartedEvent,
)
from plait.models import (
    DEFAULT_MODEL_ENV,
    FallbackModel,
    Message,
    Model,
    ModelRequest,
    ModelSettings,
    Usage,
    default_model,
    get_model,
)
from plait.retry import RetryPolicy
from plait.tracing import (
    agent_span,
    resolve_tracer,
    span,
    usage_attributes,
)

if TYPE_CHECKING:
    pass

__all__ = ["Agent", "AgentRunOutput", "RunEvent", "RunOptions", "Runnable", "Tool", "Toolset", "tool"]


class Agent(Runnable, Generic[OutputT]):
    """An AI assistant with a role.

    >>> Agent(name="Writer", model="openai:gpt-4o-mini", instructions="Write a polished article.")

    ``model`` is a :class:`~plait.models.Model` or a ``"provider:model"`` string
    resolved through the installed provider plugins (at first use). Without ``model=``
    (as Agno allows) each run uses the model named by ``$PLAIT_MODEL``, read when the
    run starts (:func:`plait.models.default_model`); neither is an error naming both.
    ``instructions`` is a string or a list of strings. ``tools`` are plain
    functions (sync or async), :class:`Tool` objects or :class:`Toolset` objects (an MCP
    server's tools, ``plait_mcp.MCPTools``), which each run opens as it starts and closes
    when it ends.

    For a type checker an agent is generic in what it produces:
    ``Agent(..., output_schema=Forecast)`` is an ``Agent[Forecast]``, whose
    ``agent.run(x).content`` is a ``Forecast``; without ``output_schema`` an
    ``Agent[str]``. A bare ``Agent`` annotation is ``Agent[Any]``.

    In a workflow run with storage (or under :func:`plait.testing.cassette`) the agent's model
    and tool calls are recorded, for replay and for resuming inside its tool loop;
    ``record=False`` leaves them out (a strict replay then stops at them).
    """

    @overload
    def __init__(
        self: Agent[str],
        name: str | None = None,
        model: Model | str | Sequence[Model | str] | None = None,
        instructions: str | Sequence[str] | None = None,
        *,
        description: str | None = None,
        role: str | None = None,
        tools: Sequence[Callable[..., Any] | Tool | Toolset] = (),
        output_schema: None = None,
        settings: ModelSettings | None = None,
        max_tool_rounds: int = 10,
        retry: RetryPolicy | None = None,
        tracer_provider: Any = None,
        id: str | None = None,
        budget: Budget | None = None,
        record: bool = True,
        history: bool | int | None = None,
        storage: Any = None,
        **unsupported: Any,
    ) -> None: ...

    @overload
    def __init__(
        self: Agent[OutputT],
        name: str | None = None,
        model: Model | str | Sequence[Model | str] | None = None,
        instructions: str | Sequence[str] | None = None,
        *,
        description: str | None = None,
        role: str | None = None,
        tools: Sequence[Callable[..., Any] | Tool | Toolset] = (),
        output_schema: type[OutputT],
        settings: ModelSettings | None = None,
        max_tool_rounds: int = 10,
        retry: RetryPolicy | None = None,
        tracer_provider: Any = None,
        id: str | None = None,
        budget: Budget | None = None,
        record: bool = True,
        history: bool | int | None = None,
        storage: Any = None,
        **unsupported: Any,
    ) -> None: ...

    def __init__(
        self,
        name: str | None = None,
        model: Model | str | Sequence[Model | str] | None = None,
        instructions: str | Sequence[str] | None = None,
        *,
        description: str | None = None,
        role: str | None = None,
        tools: Sequence[Callable[..., Any] | Tool | Toolset] = (),
        output_schema: type[OutputT] | None = None,
        settings: ModelSettings | None = None,
        max_tool_rounds: int = 10,
        retry: RetryPolicy | None = None,
        tracer_provider: Any = None,
        id: str | None = None,
        budget: Budget | None = None,
        record: bool = True,
        history: bool | int | None = None,
        storage: Any = None,
        **unsupported: Any,
    ) -> None:
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise DefinitionError(f"Agent: name must be a non-empty string, got {name!r}")
        label = name or "Agent"
        where = f"Agent {label!r}"
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise DefinitionError(f"{where}: retry must be a RetryPolicy(...), got {retry!r}")
        if settings is not None and not isinstance(settings, ModelSettings):
            raise DefinitionError(
                f"{where}: settings must be ModelSettings(temperature=..., max_tokens=...), got {settings!r}"
            )
        if (
            instructions is not None
            and not isinstance(instructions, str)
            and not (
                isinstance(instructions, (list, tuple)) and all(isinstance(i, str) for i in instructions)
            )
        ):
            raise DefinitionError(
                f"{where}: instructions must be a string or a list of strings, got {instructions!r}"
            )
        if isinstance(tools, (str, bytes)) or not isinstance(tools, (list, tuple)):
            raise DefinitionError(
                f"{where}: tools must be a list of functions, Tools or Toolsets, got {tools!r}"
            )
        #: how many past runs of a session a run sends (None: none) and where sessions are kept
        self.history_runs, self._history = agent_history(where, history, storage, unsupported)
        # Agno's other options: supported, accepted, warned about or refused (plait._agno_options)
        extra_instructions, retries = agent_extras(
            where, unsupported, has_output_schema=output_schema is not None
        )
        if retries is not None:
            if retry is not None:
                raise DefinitionError(f"{where}: give either retry= or retries= (Agno's), not both")
            retry = RetryPolicy.from_max_retries(retries) if retries > 0 else None
        if isinstance(model, (list, tuple)):  # provider policy: fallbacks (plait.models.FallbackModel)
            model = FallbackModel(*model)
        self.budget = check_budget(budget, where)
        if self.budget is not None and isinstance(model, Model) and not isinstance(model, FallbackModel):
            require_price(model, self.budget, where)
        if model is None:
            pass  # the default model ($PLAIT_MODEL), resolved when a run needs it
        elif isinstance(model, str):
            if ":" not in model:
                raise DefinitionError(
                    f"Agent {label!r}: model string must look like 'provider:model' (e.g. 'openai:gpt-4o-mini'), got {model!r}"
                )
            check_model_string(model, where)
        elif not isinstance(model, Model):
            raise DefinitionError(
                f"Agent {label!r}: model must be a plait Model or a 'provider:model' string, got {model!r}"
            )
        if output_schema is not None and not (
            isinstance(output_schema, type) and hasattr(output_schema, "model_validate_json")
        ):
            raise DefinitionError(
                f"Agent {label!r}: output_schema must be a pydantic model class, got {output_schema!r}"
            )
        check_number(max_tool_rounds, where, "max_tool_rounds", integer=True)
        if not isinstance(record, bool):
            raise DefinitionError(f"{where}: record must be True or False, got {record!r}")
        self.name = label
        self.id = id or label
        self._model_spec = model
        self._model: Model | None = model if isinstance(model, Model) else None
        #: how errors about the agent's model name it (a team's leader names its team)
        self._what = where
        #: whether runs emit Agno's RunStarted / RunCompleted / RunError (a team's leader does not:
        #: its team emits TeamRunStarted / TeamRunCompleted)
        self._run_events = True
        if isinstance(instructions, str) or instructions is None:
            self.instructions = [instructions] if instructions else []
        else:
            self.instructions = [str(i) for i in instructions]
        if description:  # Agno's system message starts with the description
            self.instructions.insert(0, description)
        self.instructions.extend(extra_instructions)
        self.description = description
        self.role = role
        self.tools: list[Tool] = []
        #: the toolsets (MCP servers...): their tools are known when a run opens them
        self.toolsets: list[Toolset] = []
        for given in tools:
            if not isinstance(given, Tool) and isinstance(given, Toolset):
                self.toolsets.append(given)
            else:
                self.tools.append(given if isinstance(given, Tool) else Tool(given))
        names = [t.name for t in self.tools]
        if len(set(names)) != len(names):
            raise DefinitionError(f"Agent {label!r}: two tools share a name: {names}")
        self._tools = {t.name: t for t in self.tools}
        self.output_schema: type[Any] | None = output_schema
        self.settings = settings
        self.max_tool_rounds = max_tool_rounds
        self.retry = retry
        self.tracer_provider = tracer_provider
        #: record this agent's model and tool calls in a run with storage (or a cassette)
        self.record = record
        self._last_run_output: AgentRunOutput | None = None

    def __repr__(self) -> str:
        return f"Agent({self.name!r})"

    if TYPE_CHECKING:  # Runnable's run/arun, as a type checker sees them on an Agent[OutputT]

        @overload
        def run(
            self,
            input: Any = None,
            *,
            stream: Literal[False] = False,
            stream_events: Literal[False] = False,
            session_id: str | None = None,
            images: Sequence[Any] | None = None,
            audio: Sequence[Any] | None = None,
            videos: Sequence[Any] | None = None,
            files: Sequence[Any] | None = None,
        ) -> AgentRunOutput[OutputT]: ...

        @overload
        def run(
            self,
            input: Any = None,
            *,
            stream: Literal[True],
            stream_events: bool = False,
            session_id: str | None = None,
            images: Sequence[Any] | None = None,
            audio: Sequence[Any] | None = None,
            videos: Sequence[Any] | None = None,
            files: Sequence[Any] | None = None,
        ) -> Iterator[Event]: ...

        @overload
        def run(
            self,
            input: Any = None,
            *,
            stream: bool = False,
            stream_events: Literal[True],
            session_id: str | None = None,
            images: Sequence[Any] | None = None,
            audio: Sequence[Any] | None = None,
            videos: Sequence[Any] | None = None,
            files: Sequence[Any] | None = None,
        ) -> Iterator[Event]: ...

        @overload
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
        ) -> AgentRunOutput[OutputT] | Iterator[Event]: ...

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
        ) -> Any: ...

        @overload
        def arun(
            self,
            input: Any = None,
            *,
            stream: Literal[False] = False,
            stream_events: Literal[False] = False,
            session_id: str | None = None,
            images: Sequence[Any] | None = None,
            audio: Sequence[Any] | None = None,
            videos: Sequence[Any] | None = None,
            files: Sequence[Any] | None = None,
        ) -> Coroutine[Any, Any, AgentRunOutput[OutputT]]: ...

        @overload
        def arun(
            self,
            input: Any = None,
            *,
            stream: Literal[True],
            stream_events: bool = False,
            session_id: str | None = None,
            images: Sequence[Any] | None = None,
            audio: Sequence[Any] | None = None,
            videos: Sequence[Any] | None = None,
            files: Sequence[Any] | None = None,
        ) -> AsyncIterator[Event]: ...

        @overload
        def arun(
            self,
            input: Any = None,
            *,
            stream: bool = False,
            stream_events: Literal[True],
            session_id: str | None = None,
            images: Sequence[Any] | None = None,
            audio: Sequence[Any] | None = None,
            videos: Sequence[Any] | None = None,
            files: Sequence[Any] | None = None,
        ) -> AsyncIterator[Event]: ...

        @overload
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
        ) -> Coroutine[Any, Any, AgentRunOutput[OutputT]] | AsyncIterator[Event]: ...

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
        ) -> Any: ...

    def _tool_context(self, run_id: str) -> RunContext:
        """What a tool that declares ``run_context`` (or ``session_state``) gets: the enclosing
        step's, or one of the agent's own run (one per run, so its tools share its state)."""
        ctx = current_step()
        return ctx.run_context() if ctx is not None else _standalone_context(self.name, run_id)

    def cache_identity(self) -> Any:
        """Model, instructions, settings, tools (their code and configuration too) and output
        schema: what decides the answer."""
        from plait._executors import code_identity

        if self._model_spec is None:  # the default model: named by $PLAIT_MODEL when asked
            model: Any = ["$PLAIT_MODEL", os.environ.get(DEFAULT_MODEL_ENV)]
            settings = repr(self.settings)
        else:
            model = self.model.name
            settings = repr(self.model.settings.merged(self.settings))
        return [
            self.name,
            model,
            self.instructions,
            settings,
            [
                [name, tool.description, code_identity(tool.fn, f"Agent {self.name!r} tool {name!r}")]
                for name, tool in sorted(self._tools.items())
            ],
            [toolset.cache_identity() for toolset in self.toolsets],
            None if self.output_schema is None else self.output_schema.model_json_schema(),
        ]

    @property
    def model(self) -> Model:
        """The agent's model; without ``model=``, the one ``$PLAIT_MODEL`` names now."""
        if self._model is None:
            if self._model_spec is None:
                return default_model(self._what)
            self._model = get_model(self._model_spec)
        return self._model

    def _conversation(self) -> tuple[AgentHistory, str]:
        return self._history, self.id

    def _messages(self, input: Any, model: Model, past: Sequence[Message] = ()) -> list[Message]:
        messages = [Message("system", text) for text in self._system_prompts(model)]
        messages.extend(past)  # the session's last runs (Agent(history=N)), before the new input
        # a part (an image, a file) or a list with one: sent as parts; anything else as text
        messages.append(Message("user", message_parts(input) if has_media(input) else format_content(input)))
        return messages

    def _system_prompts(self, model: Model | None = None) -> list[str]:
        prompts = list(self.instructions)
        if self.role:
            prompts.insert(0, f"Your role: {self.role}")
        if model is None:
            model = self.model
        if self.output_schema is not None and not model.supports_structured_output:
            schema = json.dumps(self.output_schema.model_json_schema())
            prompts.append(f"Reply with only a JSON object matching this JSON schema, no prose:\n{schema}")
        return prompts

    async def invoke(self, input: Any, options: RunOptions = STANDALONE) -> AgentRunOutput:
        run_id = new_id()
        model = self.model
        emit = options.emit
        tracer = options.tracer if options.tracer is not None else resolve_tracer(self.tracer_provider)
        event = options.make_event or (lambda cls, **fields: cls(run_id=run_id, **fields))
        blocking = options.run_blocking or _to_thread
        scope = options.history  # the run's session, if any (plait._history)
        past = [] if scope is None else await self._history.messages(scope, self.id)
        messages = self._messages(input, model, past)
        first_new = len(messages) - 1  # the input: what this run adds to the conversation starts here
        usage = Usage()
        started = time.perf_counter()
        run_events = emit is not None and options.step_events and self._run_events
        if run_events:
            assert emit is not None
            emit(
                event(
                    RunStartedEvent,
                    **self._run_fields(run_id),
                    model=model.name,
                    model_provider=model.provider,
                )
            )
        span_name, attributes = agent_span(self.name, model)
        # provider policy: the budgets in force (the run's, its steps', this agent's), or None
        own = None if self.budget is None else open_meter(self.budget, f"agent {self.name!r}")
        meters = active_meters(own)
        budgets = None if meters is None else RunBudgets(meters, self.name, emit, event)
        try:
            with span(tracer, span_name, attributes) as current:
                # the toolsets' tools too: open from here to the end of the run (plait._tools)
                async with run_tools(self._what, self._tools, self.toolsets) as tools:
                    wants_context = any(t.injects for t in tools.values())
                    tool_context = self._tool_context(run_id) if wants_context else None
                    content = await self._loop(
                        model, messages, usage, emit, event, blocking, tracer, tool_context, budgets, tools
                    )
                if current is not None:
                    current.set_attributes(usage_attributes(usage))
        except Exception as exc:
            if run_events:
                assert emit is not None
                emit(
                    event(
                        RunErrorEvent,
                        **self._run_fields(run_id),
                        error=str(exc),
                        error_type=type(exc).__name__,
                    )
                )
            raise
        result = AgentRunOutput(
            content=content,
            agent_name=self.name,
            run_id=run_id,
            model=model.name,
            messages=messages,
            usage=usage,
            duration=time.perf_counter() - started,
            cost=usage.cost,  # each call's, by its model's price (plait.models.price_response)
        )
        if scope is not None and (scope.explicit or self._history.enabled):
            await self._history.append(scope, self.id, run_id, messages[first_new:])
        if run_events:
            assert emit is not None
            emit(event(RunCompletedEvent, **self._run_fields(run_id), **completed_fields(result)))
        self._last_run_output = result
        return result

    def _run_fields(self, run_id: str) -> dict[str, Any]:
        return {"agent_id": self.id, "agent_name": self.name, "agent_run_id": run_id}

    async def _loop(
        self,
        model: Model,
        messages: list[Message],
        usage: Usage,
        emit: Callable[[Event], None] | None,
        event: Callable[..., Event],
        blocking: Callable[[Callable[[], Any]], Any],
        tracer: Any,
        tool_context: RunContext | None,
        budgets: RunBudgets | None = None,
        tools: dict[str, Tool] | None = None,
    ) -> Any:
        if tools is None:
            tools = self._tools
        definitions = [t.definition for t in tools.values()]
        settings = model.settings.merged(self.settings)
        native_schema = self.output_schema if model.supports_structured_output else None
        schema_retry_left = 1
        from plait._record import active as active_recorder  # loaded by the first agent run

        recorder = active_recorder(self)  # record / replay (plait._record); None: neither
        for _round in range(self.max_tool_rounds + 1):
            request = ModelRequest(list(messages), definitions, settings, native_schema)
            call_model: Any = functools.partial(agent_calls.call_model, self)
            if budgets is not None:  # reserved on every budget in force before a live call, settled after
                call_model = functools.partial(agent_calls.budgeted, budgets, call_model)
            live_before = 0 if budgets is None else budgets.live_calls
            if recorder is None:
                response = await call_model(model, request, emit, event, tracer)
            else:
                response = await recorder.model_call(self, model, request, emit, event, tracer, call_model)
            usage.add(response.usage)
            messages.append(response.message)
            calls = response.message.tool_calls
            if calls:
                if not tools:
                    raise PlaitError(
                        f"Agent {self.name!r}: the model asked for tools {[c.name for c in calls]}, but the agent has none"
                    )
                if budgets is not None and budgets.live_calls != live_before:
                    # the tool calls of a recorded answer (a resumed step) were counted when made
                    budgets.tools(len(calls))
                results = await asyncio.gather(
                    *(
                        agent_calls.call_tool(self, c, emit, event, blocking, tracer, tool_context, tools)
                        if recorder is None
                        else recorder.tool_call(
                            self,
                            c,
                            emit,
                            event,
                            tracer,
                            agent_calls.live_tool(self, c, event, blocking, tracer, tool_context, tools),
                        )
                        for c in calls
                    )
                )
                messages.extend(results)
                continue
            text = response.message.text
            if self.output_schema is None:
                return text
            try:
                return self.output_schema.model_validate_json(agent_calls.strip_fence(text))
            except ValueError as exc:
                if schema_retry_left == 0:
                    raise PlaitError(
                        f"Agent {self.name!r}: the model's reply does not match {self.output_schema.__name__}: {exc}"
                    ) from exc
                schema_retry_left -= 1
                messages.append(
                    Message(
                        "user", f"That reply was not valid: {exc}. Reply again with only the JSON object."
                    )
                )
        raise PlaitError(
            f"Agent {self.name!r}: the model was still calling tools after max_tool_rounds={self.max_tool_rounds}"
        )


def _standalone_context(agent_name: str, run_id: str) -> RunContext:
    return RunContext({}, run_id, run_id, "", "", "", agent_name, 0, None)


async def _to_thread(fn: Callable[[], Any]) -> Any:
    return await asyncio.to_thread(fn)


report_public_home(__name__, globals(), __all__)  # plait.agent.RunOptions, not plait._runnable.RunOptions
