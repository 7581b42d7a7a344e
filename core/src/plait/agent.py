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
import inspect
import json
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, overload

from opentelemetry.trace import SpanKind
from typing_extensions import TypeVar  # a TypeVar with a default (typing's has one from 3.13)

from plait._agno_options import agent_extras
from plait._checks import check_number
from plait._engine import RunContext, current_step
from plait._ids import new_id
from plait._io import StepInput, StepMetrics, StepOutput, format_content
from plait._sync import astream, run_sync
from plait._sync import stream as stream_sync
from plait.errors import DefinitionError, PlaitError
from plait.events import (
    Event,
    ModelRetryEvent,
    RunContentEvent,
    ToolCallCompletedEvent,
    ToolCallStartedEvent,
)
from plait.models import (
    Message,
    Model,
    ModelRequest,
    ModelResponse,
    ModelSettings,
    TextDelta,
    ToolCall,
    ToolDefinition,
    Usage,
    complete_with_retry,
    get_model,
    stream_with_retry,
)
from plait.retry import RetryPolicy
from plait.tracing import ATTR, capture_content, record_error, resolve_meter, resolve_tracer, span, truncate

if TYPE_CHECKING:
    from plait._engine import StepContext

__all__ = ["Agent", "AgentRunOutput", "Runnable", "Tool", "tool"]

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


class Tool:
    """A typed Python function the model may call; its JSON schema comes from the signature.

    >>> def get_weather(city: str, unit: str = "C") -> str:
    ...     '''Current weather in a city.'''
    """

    def __init__(
        self, fn: Callable[..., Any], *, name: str | None = None, description: str | None = None
    ) -> None:
        if not callable(fn):
            raise DefinitionError(f"Tool: expected a function, got {fn!r}")
        from pydantic import create_model

        self.fn = fn
        self.name: str = name or str(getattr(fn, "__name__", type(fn).__name__))
        self.description = description or inspect.getdoc(fn) or ""
        signature = inspect.signature(fn)
        fields: dict[str, Any] = {}
        #: the tool declares ``run_context``: plait passes it, the model never sees it
        self.wants_run_context = "run_context" in signature.parameters
        for param in signature.parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or param.name == "run_context":
                continue
            annotation = param.annotation if param.annotation is not param.empty else Any
            default = param.default if param.default is not param.empty else ...
            fields[param.name] = (annotation, default)
        self._arguments = create_model(f"{self.name}_arguments", **fields)
        self.is_async = inspect.iscoroutinefunction(fn)

    @property
    def definition(self) -> ToolDefinition:
        schema = self._arguments.model_json_schema()
        schema.pop("title", None)
        return ToolDefinition(self.name, self.description, schema)

    async def call(
        self,
        arguments: dict[str, Any],
        run_blocking: Callable[[Callable[[], Any]], Any],
        run_context: RunContext | None = None,
    ) -> Any:
        validated = self._arguments.model_validate(arguments)
        kwargs = {name: getattr(validated, name) for name in type(validated).model_fields}
        if self.wants_run_context:
            kwargs["run_context"] = run_context
        if self.is_async:
            return await self.fn(**kwargs)
        return await run_blocking(lambda: self.fn(**kwargs))


def tool(
    fn: Callable[..., Any] | None = None, *, name: str | None = None, description: str | None = None
) -> Any:
    """Decorator form of :class:`Tool`: ``@tool`` or ``@tool(name="search")``."""
    if fn is None:
        return lambda f: Tool(f, name=name, description=description)
    return Tool(fn, name=name, description=description)


class Runnable:
    """What agents and teams share: ``run``/``arun``/``print_response`` and running as a step.

    Subclasses implement ``_run(input, emit=..., make_event=..., run_blocking=..., tracer=...)``.
    """

    name: str
    _last_run_output: AgentRunOutput | None

    def _enclosing(self) -> dict[str, Any]:
        """Inside a workflow step's code, an agent's events go to that run's stream, stamped
        with that step (its id, its nested_depth), and its spans join that run's trace."""
        ctx = current_step()
        if ctx is None:
            return {}
        return {
            "emit": ctx.emit if ctx.run.listening else None,
            "make_event": ctx.event,
            "run_blocking": ctx.run.runner.run_blocking,
            "tracer": ctx.run.tracer,
        }

    def run(self, input: Any = None, *, stream: bool = False, stream_events: bool = False) -> Any:
        """Run once: an :class:`AgentRunOutput`, or with ``stream=True`` an iterator of events."""
        if stream or stream_events:
            return stream_sync(self._starter(input, stream_events))
        return run_sync(self._run(input, **{"emit": None, **self._enclosing()}))

    def arun(self, input: Any = None, *, stream: bool = False, stream_events: bool = False) -> Any:
        """``await agent.arun(x)``, or ``async for event in agent.arun(x, stream=True)``."""
        if stream or stream_events:
            return astream(self._starter(input, stream_events))
        return self._run(input, **{"emit": None, **self._enclosing()})

    def print_response(
        self, input: Any = None, *, stream: bool = False, markdown: bool = False
    ) -> AgentRunOutput | None:
        from plait.console import print_run

        output: AgentRunOutput | None = print_run(self, input, stream=stream, markdown=markdown, options={})
        return output

    def get_last_run_output(self) -> AgentRunOutput | None:
        """The most recent run's output in this process (the last to finish, if runs overlap)."""
        return self._last_run_output

    async def run_as_step(self, step_input: StepInput, ctx: StepContext) -> StepOutput:
        """Run as a workflow step: the previous content (or the input) is the message."""
        result = await self._run(
            step_input.message,
            emit=ctx.emit if ctx.run.listening else None,
            make_event=ctx.event,
            run_blocking=ctx.run.runner.run_blocking,
            tracer=ctx.run.tracer,
        )
        return StepOutput(
            content=result.content,
            metrics=StepMetrics(
                input_tokens=result.usage.input_tokens,
                output_tokens=result.usage.output_tokens,
                cost=result.cost,
            ),
        )

    # -- execution -------------------------------------------------------------------

    def _starter(self, input: Any, stream_events: bool) -> Callable[[Callable[[Event], None]], Any]:
        def start(deliver: Callable[[Event], None]) -> Any:
            def emit(event: Event) -> None:
                if stream_events or isinstance(event, RunContentEvent):
                    deliver(event)

            return self._run(input, emit=emit)

        return start

    async def _run(
        self,
        input: Any,
        *,
        emit: Callable[[Event], None] | None,
        make_event: Callable[..., Event] | None = None,
        run_blocking: Callable[[Callable[[], Any]], Any] | None = None,
        tracer: Any = None,
    ) -> AgentRunOutput:
        raise NotImplementedError


class Agent(Runnable, Generic[OutputT]):
    """An AI assistant with a role.

    >>> Agent(name="Writer", model="openai:gpt-4o-mini", instructions="Write a polished article.")

    ``model`` is a :class:`~plait.models.Model` or a ``"provider:model"`` string
    resolved through the installed provider plugins (at first use).
    ``instructions`` is a string or a list of strings. ``tools`` are plain
    functions (sync or async) or :class:`Tool` objects.

    For a type checker an agent is generic in what it produces:
    ``Agent(..., output_schema=Forecast)`` is an ``Agent[Forecast]``, whose
    ``agent.run(x).content`` is a ``Forecast``; without ``output_schema`` an
    ``Agent[str]``. A bare ``Agent`` annotation is ``Agent[Any]``.
    """

    @overload
    def __init__(
        self: Agent[str],
        name: str | None = None,
        model: Model | str | None = None,
        instructions: str | Sequence[str] | None = None,
        *,
        description: str | None = None,
        role: str | None = None,
        tools: Sequence[Callable[..., Any] | Tool] = (),
        output_schema: None = None,
        settings: ModelSettings | None = None,
        max_tool_rounds: int = 10,
        retry: RetryPolicy | None = None,
        tracer_provider: Any = None,
        id: str | None = None,
        **unsupported: Any,
    ) -> None: ...

    @overload
    def __init__(
        self: Agent[OutputT],
        name: str | None = None,
        model: Model | str | None = None,
        instructions: str | Sequence[str] | None = None,
        *,
        description: str | None = None,
        role: str | None = None,
        tools: Sequence[Callable[..., Any] | Tool] = (),
        output_schema: type[OutputT],
        settings: ModelSettings | None = None,
        max_tool_rounds: int = 10,
        retry: RetryPolicy | None = None,
        tracer_provider: Any = None,
        id: str | None = None,
        **unsupported: Any,
    ) -> None: ...

    def __init__(
        self,
        name: str | None = None,
        model: Model | str | None = None,
        instructions: str | Sequence[str] | None = None,
        *,
        description: str | None = None,
        role: str | None = None,
        tools: Sequence[Callable[..., Any] | Tool] = (),
        output_schema: type[OutputT] | None = None,
        settings: ModelSettings | None = None,
        max_tool_rounds: int = 10,
        retry: RetryPolicy | None = None,
        tracer_provider: Any = None,
        id: str | None = None,
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
            raise DefinitionError(f"{where}: tools must be a list of functions or Tools, got {tools!r}")
        # Agno's other options: supported, accepted, warned about or refused (plait._agno_options)
        extra_instructions, retries = agent_extras(
            where, unsupported, has_output_schema=output_schema is not None
        )
        if retries is not None:
            if retry is not None:
                raise DefinitionError(f"{where}: give either retry= or retries= (Agno's), not both")
            retry = RetryPolicy.from_max_retries(retries) if retries > 0 else None
        if model is None:
            raise DefinitionError(f"Agent {label!r}: expected model= (a Model or a 'provider:model' string)")
        if isinstance(model, str):
            if ":" not in model:
                raise DefinitionError(
                    f"Agent {label!r}: model string must look like 'provider:model' (e.g. 'openai:gpt-4o-mini'), got {model!r}"
                )
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
        self.name = label
        self.id = id or label
        self._model_spec = model
        self._model: Model | None = model if isinstance(model, Model) else None
        if isinstance(instructions, str) or instructions is None:
            self.instructions = [instructions] if instructions else []
        else:
            self.instructions = [str(i) for i in instructions]
        if description:  # Agno's system message starts with the description
            self.instructions.insert(0, description)
        self.instructions.extend(extra_instructions)
        self.description = description
        self.role = role
        self.tools = [t if isinstance(t, Tool) else Tool(t) for t in tools]
        names = [t.name for t in self.tools]
        if len(set(names)) != len(names):
            raise DefinitionError(f"Agent {label!r}: two tools share a name: {names}")
        self._tools = {t.name: t for t in self.tools}
        self.output_schema: type[Any] | None = output_schema
        self.settings = settings
        self.max_tool_rounds = max_tool_rounds
        self.retry = retry
        self.tracer_provider = tracer_provider
        self._last_run_output: AgentRunOutput | None = None

    def __repr__(self) -> str:
        return f"Agent({self.name!r})"

    if TYPE_CHECKING:  # Runnable's run/arun, as a type checker sees them on an Agent[OutputT]

        @overload
        def run(
            self, input: Any = None, *, stream: Literal[False] = False, stream_events: Literal[False] = False
        ) -> AgentRunOutput[OutputT]: ...

        @overload
        def run(
            self, input: Any = None, *, stream: Literal[True], stream_events: bool = False
        ) -> Iterator[Event]: ...

        @overload
        def run(
            self, input: Any = None, *, stream: bool = False, stream_events: Literal[True]
        ) -> Iterator[Event]: ...

        @overload
        def run(
            self, input: Any = None, *, stream: bool = False, stream_events: bool = False
        ) -> AgentRunOutput[OutputT] | Iterator[Event]: ...

        def run(self, input: Any = None, *, stream: bool = False, stream_events: bool = False) -> Any: ...

        @overload
        def arun(
            self, input: Any = None, *, stream: Literal[False] = False, stream_events: Literal[False] = False
        ) -> Coroutine[Any, Any, AgentRunOutput[OutputT]]: ...

        @overload
        def arun(
            self, input: Any = None, *, stream: Literal[True], stream_events: bool = False
        ) -> AsyncIterator[Event]: ...

        @overload
        def arun(
            self, input: Any = None, *, stream: bool = False, stream_events: Literal[True]
        ) -> AsyncIterator[Event]: ...

        @overload
        def arun(
            self, input: Any = None, *, stream: bool = False, stream_events: bool = False
        ) -> Coroutine[Any, Any, AgentRunOutput[OutputT]] | AsyncIterator[Event]: ...

        def arun(self, input: Any = None, *, stream: bool = False, stream_events: bool = False) -> Any: ...

    def _tool_context(self) -> RunContext:
        """What a tool that declares ``run_context`` gets: the enclosing step's, or one of its own."""
        ctx = current_step()
        return ctx.run_context() if ctx is not None else _standalone_context(self.name)

    def cache_identity(self) -> Any:
        """Model, instructions, settings, tools (their code and configuration too) and output
        schema: what decides the answer."""
        from plait._executors import code_identity

        return [
            self.name,
            self.model.name,
            self.instructions,
            repr(self.model.settings.merged(self.settings)),
            [
                [name, tool.description, code_identity(tool.fn, f"Agent {self.name!r} tool {name!r}")]
                for name, tool in sorted(self._tools.items())
            ],
            None if self.output_schema is None else self.output_schema.model_json_schema(),
        ]

    @property
    def model(self) -> Model:
        if self._model is None:
            self._model = get_model(self._model_spec)
        return self._model

    def _messages(self, input: Any) -> list[Message]:
        messages = [Message("system", text) for text in self._system_prompts()]
        messages.append(Message("user", format_content(input)))
        return messages

    def _system_prompts(self) -> list[str]:
        prompts = list(self.instructions)
        if self.role:
            prompts.insert(0, f"Your role: {self.role}")
        if self.output_schema is not None and not self.model.supports_structured_output:
            schema = json.dumps(self.output_schema.model_json_schema())
            prompts.append(f"Reply with only a JSON object matching this JSON schema, no prose:\n{schema}")
        return prompts

    async def _run(
        self,
        input: Any,
        *,
        emit: Callable[[Event], None] | None,
        make_event: Callable[..., Event] | None = None,
        run_blocking: Callable[[Callable[[], Any]], Any] | None = None,
        tracer: Any = None,
    ) -> AgentRunOutput:
        run_id = new_id()
        model = self.model
        tracer = tracer if tracer is not None else resolve_tracer(self.tracer_provider)
        event = make_event or (lambda cls, **fields: cls(run_id=run_id, **fields))
        blocking = run_blocking or _to_thread
        messages = self._messages(input)
        usage = Usage()
        started = time.perf_counter()
        attributes = {
            ATTR.OPERATION: "invoke_agent",
            ATTR.AGENT_NAME: self.name,
            ATTR.REQUEST_MODEL: model.model,
            ATTR.PROVIDER: model.provider,
            ATTR.SPAN_KIND: "AGENT",
        }
        with span(tracer, f"invoke_agent {self.name}", attributes) as current:
            content = await self._loop(model, messages, usage, emit, event, blocking, tracer)
            if current is not None:
                current.set_attributes(
                    {ATTR.INPUT_TOKENS: usage.input_tokens, ATTR.OUTPUT_TOKENS: usage.output_tokens}
                )
        result = AgentRunOutput(
            content=content,
            agent_name=self.name,
            run_id=run_id,
            model=model.name,
            messages=messages,
            usage=usage,
            duration=time.perf_counter() - started,
            cost=model.pricing.cost(usage) if model.pricing is not None else None,
        )
        self._last_run_output = result
        return result

    async def _loop(
        self,
        model: Model,
        messages: list[Message],
        usage: Usage,
        emit: Callable[[Event], None] | None,
        event: Callable[..., Event],
        blocking: Callable[[Callable[[], Any]], Any],
        tracer: Any,
    ) -> Any:
        definitions = [t.definition for t in self.tools]
        settings = model.settings.merged(self.settings)
        native_schema = self.output_schema if model.supports_structured_output else None
        schema_retry_left = 1
        for _round in range(self.max_tool_rounds + 1):
            request = ModelRequest(list(messages), definitions, settings, native_schema)
            response = await self._call_model(model, request, emit, event, tracer)
            usage.add(response.usage)
            messages.append(response.message)
            calls = response.message.tool_calls
            if calls:
                if not self.tools:
                    raise PlaitError(
                        f"Agent {self.name!r}: the model asked for tools {[c.name for c in calls]}, but the agent has none"
                    )
                results = await asyncio.gather(
                    *(self._call_tool(c, emit, event, blocking, tracer) for c in calls)
                )
                messages.extend(results)
                continue
            text = response.message.content or ""
            if self.output_schema is None:
                return text
            try:
                return self.output_schema.model_validate_json(_strip_fence(text))
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

    async def _call_model(
        self,
        model: Model,
        request: ModelRequest,
        emit: Callable[[Event], None] | None,
        event: Callable[..., Event],
        tracer: Any,
    ) -> ModelResponse:
        def on_retry(attempt: int, error: Exception, delay: float) -> None:
            if emit is not None:
                emit(
                    event(
                        ModelRetryEvent, agent_name=self.name, attempt=attempt, delay=delay, error=str(error)
                    )
                )

        attributes = {
            ATTR.OPERATION: "chat",
            ATTR.PROVIDER: model.provider,
            ATTR.REQUEST_MODEL: model.model,
            ATTR.SPAN_KIND: "LLM",
            **_request_attributes(request),
        }
        with span(tracer, f"chat {model.model}", attributes, kind=SpanKind.CLIENT) as current:
            final: ModelResponse | None = None
            if emit is None:
                final = await complete_with_retry(model, request, policy=self.retry, on_retry=on_retry)
            else:
                async for item in stream_with_retry(model, request, policy=self.retry, on_retry=on_retry):
                    if isinstance(item, TextDelta):
                        if item.text:
                            emit(event(RunContentEvent, content=item.text, agent_name=self.name))
                    elif isinstance(item, ModelResponse):
                        final = item
            if final is None:
                raise PlaitError(f"{model!r}: the stream ended without a final response")
            if current is not None:
                current.set_attributes(_response_attributes(final))
        meter = resolve_meter()
        if meter is not None:
            base = {ATTR.OPERATION: "chat", ATTR.PROVIDER: model.provider, ATTR.REQUEST_MODEL: model.model}
            meter.token_usage.record(final.usage.input_tokens, {**base, "gen_ai.token.type": "input"})
            meter.token_usage.record(final.usage.output_tokens, {**base, "gen_ai.token.type": "output"})
        return final

    async def _call_tool(
        self,
        call: ToolCall,
        emit: Callable[[Event], None] | None,
        event: Callable[..., Event],
        blocking: Callable[[Callable[[], Any]], Any],
        tracer: Any,
    ) -> Message:
        if emit is not None:
            emit(
                event(
                    ToolCallStartedEvent,
                    agent_name=self.name,
                    tool_name=call.name,
                    tool_call_id=call.id,
                    arguments=call.arguments,
                )
            )
        attributes = {
            ATTR.OPERATION: "execute_tool",
            ATTR.TOOL_NAME: call.name,
            ATTR.TOOL_TYPE: "function",
            ATTR.TOOL_CALL_ID: call.id,
            ATTR.SPAN_KIND: "TOOL",
        }
        error: str | None = None
        result: Any = None
        target = self._tools.get(call.name)
        with span(tracer, f"execute_tool {call.name}", attributes) as current:
            try:
                if target is None:
                    raise PlaitError(
                        f"no tool named {call.name!r} (tools: {', '.join(self._tools) or 'none'})"
                    )
                if call.arguments_error is not None:  # arguments that were not JSON: never call the tool
                    raise ValueError(f"{call.arguments_error}; call the tool again with a JSON object")
                result = await target.call(
                    call.arguments, blocking, self._tool_context() if target.wants_run_context else None
                )
            except Exception as exc:
                # The model sees the error and may correct itself; the span records it.
                error = f"{type(exc).__name__}: {exc}"
                if current is not None:
                    record_error(current, exc)
            if current is not None and capture_content():
                current.set_attributes(
                    {
                        "gen_ai.tool.call.arguments": truncate(json.dumps(call.arguments, default=str)),
                        "gen_ai.tool.call.result": truncate(format_content(result)),
                    }
                )
        if emit is not None:
            emit(
                event(
                    ToolCallCompletedEvent,
                    agent_name=self.name,
                    tool_name=call.name,
                    tool_call_id=call.id,
                    result=result,
                    error=error,
                )
            )
        content = f"Error: {error}" if error is not None else format_content(result)
        return Message("tool", content, tool_call_id=call.id, name=call.name)


def _standalone_context(agent_name: str) -> RunContext:
    run_id = new_id()
    return RunContext({}, run_id, run_id, "", "", "", agent_name, 0, None)


def _response_attributes(response: ModelResponse) -> dict[str, Any]:
    """GenAI response attributes of a model call; the completion only when capture is on."""
    attributes: dict[str, Any] = {
        ATTR.INPUT_TOKENS: response.usage.input_tokens,
        ATTR.OUTPUT_TOKENS: response.usage.output_tokens,
    }
    if response.model:
        attributes[ATTR.RESPONSE_MODEL] = response.model
    if response.response_id:
        attributes[ATTR.RESPONSE_ID] = response.response_id
    if response.finish_reason:
        attributes[ATTR.FINISH_REASONS] = [response.finish_reason]
    if capture_content():
        attributes["gen_ai.output.messages"] = truncate(_messages_json([response.message]))
    return attributes


def _request_attributes(request: ModelRequest) -> dict[str, Any]:
    """GenAI request attributes of a model call; the prompt only when capture is on."""
    settings = request.settings
    attributes: dict[str, Any] = {}
    for name, value in (
        ("gen_ai.request.temperature", settings.temperature),
        ("gen_ai.request.max_tokens", settings.max_tokens),
        ("gen_ai.request.top_p", settings.top_p),
        ("gen_ai.request.seed", settings.seed),
    ):
        if value is not None:
            attributes[name] = value
    if capture_content():
        attributes["gen_ai.input.messages"] = truncate(_messages_json(request.messages))
    return attributes


def _messages_json(messages: list[Message]) -> str:
    return json.dumps(
        [
            {
                "role": m.role,
                "content": m.content,
                **(
                    {
                        "tool_calls": [
                            {"id": c.id, "name": c.name, "arguments": c.arguments} for c in m.tool_calls
                        ]
                    }
                    if m.tool_calls
                    else {}
                ),
            }
            for m in messages
        ],
        default=str,
        ensure_ascii=False,
    )


async def _to_thread(fn: Callable[[], Any]) -> Any:
    return await asyncio.to_thread(fn)


def _strip_fence(text: str) -> str:
    """Models often wrap JSON in a Markdown code fence; take what is inside."""
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else ""
        stripped = stripped.rsplit("```", 1)[0]
    return stripped.strip()
