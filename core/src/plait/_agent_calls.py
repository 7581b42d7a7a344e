"""What an agent's tool loop calls (plait.agent): one model call (retries, fallbacks, rate-limit
waits and its span and events), one tool call (its span, events, and its error back to the
model), and the small reporters and helpers around them."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from plait._io import format_content
from plait._limits import RateWait
from plait._model_calls import complete_with_retry, stream_with_retry
from plait._run_context import RunContext
from plait.errors import PlaitError, ToolsetError
from plait.events import (
    Event,
    ModelFallbackEvent,
    ModelRetryEvent,
    RateLimitWaitEvent,
    RunContentEvent,
    tool_call_completed,
    tool_call_started,
)
from plait.models import FallbackModel, Message, Model, ModelRequest, ModelResponse, TextDelta, ToolCall
from plait.tracing import (
    capture_content,
    chat_response_attributes,
    chat_span,
    record_error,
    resolve_meter,
    span,
    token_usage_points,
    tool_content_attributes,
    tool_span,
)

if TYPE_CHECKING:
    from plait._runnable import AgentRunOutput
    from plait._tools import Tool
    from plait.agent import Agent

__all__ = [
    "budgeted",
    "call_model",
    "call_tool",
    "completed_fields",
    "fallback_reporter",
    "live_tool",
    "strip_fence",
    "wait_reporter",
]


async def call_model(
    agent: Agent,
    model: Model,
    request: ModelRequest,
    emit: Callable[[Event], None] | None,
    event: Callable[..., Event],
    tracer: Any,
) -> ModelResponse:
    def on_retry(attempt: int, error: Exception, delay: float) -> None:
        if emit is not None:
            emit(
                event(ModelRetryEvent, agent_name=agent.name, attempt=attempt, delay=delay, error=str(error))
            )

    on_fallback = (
        None
        if emit is None or not isinstance(model, FallbackModel)
        else fallback_reporter(agent.name, emit, event)
    )
    on_wait = None if emit is None else wait_reporter(agent.name, emit, event)
    span_name, attributes = chat_span(model, request)
    with span(tracer, span_name, attributes, kind="CLIENT") as current:
        final: ModelResponse | None = None
        if emit is None:
            final = await complete_with_retry(model, request, policy=agent.retry, on_retry=on_retry)
        else:
            async for item in stream_with_retry(
                model,
                request,
                policy=agent.retry,
                on_retry=on_retry,
                on_fallback=on_fallback,
                on_wait=on_wait,
            ):
                if isinstance(item, TextDelta):
                    if item.text:
                        emit(event(RunContentEvent, content=item.text, agent_name=agent.name))
                elif isinstance(item, ModelResponse):
                    final = item
        if final is None:
            raise PlaitError(f"{model!r}: the stream ended without a final response")
        if current is not None:
            current.set_attributes(chat_response_attributes(final))
    meter = resolve_meter()
    if meter is not None:
        for value, point in token_usage_points(model, final.usage, final.answered_by):
            meter.token_usage.record(value, point)
    return final


async def call_tool(
    agent: Agent,
    call: ToolCall,
    emit: Callable[[Event], None] | None,
    event: Callable[..., Event],
    blocking: Callable[[Callable[[], Any]], Any],
    tracer: Any,
    tool_context: RunContext | None,
    tools: dict[str, Tool] | None = None,
) -> Message:
    if tools is None:
        tools = agent._tools
    if emit is not None:
        emit(tool_call_started(event, agent.name, call))
    span_name, attributes = tool_span(call)
    error: str | None = None
    fatal: ToolsetError | None = None
    result: Any = None
    target = tools.get(call.name)
    with span(tracer, span_name, attributes) as current:
        try:
            if target is None:
                raise PlaitError(f"no tool named {call.name!r} (tools: {', '.join(tools) or 'none'})")
            if call.arguments_error is not None:  # arguments that were not JSON: never call the tool
                raise ValueError(f"{call.arguments_error}; call the tool again with a JSON object")
            result = await target.call(call.arguments, blocking, tool_context)
        except Exception as exc:
            # The model sees the error and may correct itself; the span records it. A
            # toolset's broken connection is not the model's to fix: it stops the run.
            error = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, ToolsetError):
                fatal = exc
            if current is not None:
                record_error(current, exc)
        if current is not None and capture_content():
            current.set_attributes(tool_content_attributes(call.arguments, format_content(result)))
    if emit is not None:
        emit(tool_call_completed(event, agent.name, call, result, error))
    if fatal is not None:
        raise fatal
    content = f"Error: {error}" if error is not None else format_content(result)
    return Message("tool", content, tool_call_id=call.id, name=call.name, is_error=error is not None)


def fallback_reporter(
    agent_name: str, emit: Callable[[Event], None], event: Callable[..., Event]
) -> Callable[[Model, BaseException, Model], None]:
    """What a FallbackModel calls before passing a request on: a ModelFallbackEvent."""

    def report(failed: Model, error: BaseException, following: Model) -> None:
        emit(
            event(
                ModelFallbackEvent,
                agent_name=agent_name,
                failed_model=failed.name,
                error=str(error),
                error_type=type(error).__name__,
                next_model=following.name,
            )
        )

    return report


def wait_reporter(
    agent_name: str, emit: Callable[[Event], None], event: Callable[..., Event]
) -> Callable[[Model, RateWait], None]:
    """What a model call held by a rate limit calls as it starts waiting: a RateLimitWaitEvent."""

    def report(model: Model, wait: RateWait) -> None:
        emit(
            event(
                RateLimitWaitEvent,
                agent_name=agent_name,
                model=model.name,
                key=wait.key,
                limit=wait.limit,
                maximum=wait.maximum,
                seconds=wait.seconds,
                shared=wait.shared,
            )
        )

    return report


def live_tool(
    agent: Agent,
    call: ToolCall,
    event: Any,
    blocking: Any,
    tracer: Any,
    tool_context: RunContext | None,
    tools: dict[str, Tool],
) -> Callable[[Callable[[Event], None]], Coroutine[Any, Any, Message]]:
    """The tool call made for real, for a recorder: its events go to the emit it is given."""
    return lambda emit: call_tool(agent, call, emit, event, blocking, tracer, tool_context, tools)


async def budgeted(
    budgets: Any,
    call_model: Callable[..., Coroutine[Any, Any, ModelResponse]],
    model: Model,
    request: ModelRequest,
    emit: Callable[[Event], None] | None,
    event: Callable[..., Event],
    tracer: Any,
) -> ModelResponse:
    """A model call made for real under the run's budgets (reserved before, settled after)."""
    response: ModelResponse = await budgets.call(
        model, request, functools.partial(call_model, model, request, emit, event, tracer)
    )
    return response


def completed_fields(result: AgentRunOutput) -> dict[str, Any]:
    """What Agno's RunCompleted (and TeamRunCompleted) carries of an agent or team run's output."""
    content = result.content
    return {
        "content": content,
        "content_type": "str" if isinstance(content, str) or content is None else type(content).__name__,
        "input_tokens": result.usage.input_tokens,
        "output_tokens": result.usage.output_tokens,
        "duration": result.duration,
        "cost": result.cost,
    }


def strip_fence(text: str) -> str:
    """Models often wrap JSON in a Markdown code fence; take what is inside."""
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else ""
        stripped = stripped.rsplit("```", 1)[0]
    return stripped.strip()
