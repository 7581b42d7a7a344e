"""Anthropic responses as plait responses: a whole message, or a stream of events.

Usage counts every input token the request was billed for: ``input_tokens``
plus the prompt-cache reads and writes, which the API reports separately.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from plait.errors import ModelConnectionError
from plait.models import (
    Message,
    ModelResponse,
    ModelStreamEvent,
    Reasoning,
    TextDelta,
    ToolCall,
    ToolCallPart,
    Usage,
)

__all__ = ["StreamAccumulator", "response_from_message"]

PROVIDER = "anthropic"


def response_from_message(message: Any) -> ModelResponse:
    """A plait response from a non-streaming ``anthropic.types.Message``."""
    texts: list[str] = []
    calls: list[ToolCall] = []
    reasoning: list[Reasoning] = []
    for block in message.content:
        if block.type == "text":
            texts.append(block.text)
        elif block.type == "tool_use":
            calls.append(ToolCall(id=block.id, name=block.name, arguments=dict(block.input or {})))
        elif block.type == "thinking":
            reasoning.append(Reasoning(block.thinking, signature=block.signature, provider=PROVIDER))
        elif block.type == "redacted_thinking":
            reasoning.append(Reasoning(redacted=block.data, provider=PROVIDER))
    return ModelResponse(
        message=Message("assistant", "".join(texts) or None, calls, reasoning=reasoning),
        usage=Usage(_input_tokens(message.usage), message.usage.output_tokens or 0, requests=1),
        finish_reason=message.stop_reason,
        response_id=message.id,
        model=message.model,
        provider=PROVIDER,
    )


class StreamAccumulator:
    """Turns raw stream events into plait stream items, keeping what the final response needs.

    Feed each event to :meth:`feed`; it yields text deltas at once and a tool call
    when its block stops (its JSON arguments arrive in fragments until then).
    :meth:`finish` returns the final response, or raises if the stream was cut
    before ``message_stop``.
    """

    def __init__(self, model: str) -> None:
        self.requested_model = model
        self.response_id: str | None = None
        self.model: str | None = None
        self.input_tokens = 0
        self.output_tokens = 0
        self.stop_reason: str | None = None
        self.stopped = False
        self._texts: list[str] = []
        self._calls: list[ToolCall] = []
        self._open_tools: dict[int, tuple[str, str, list[str], dict[str, Any]]] = {}
        #: thinking blocks being streamed, by index: their text and signature pieces
        self._open_thinking: dict[int, tuple[list[str], list[str]]] = {}
        self._reasoning: list[Reasoning] = []

    def feed(self, event: Any) -> Iterator[ModelStreamEvent]:
        kind = event.type
        if kind == "message_start":
            message = event.message
            self.response_id, self.model = message.id, message.model
            self.input_tokens = _input_tokens(message.usage)
            self.output_tokens = message.usage.output_tokens or 0
        elif kind == "content_block_start":
            block = event.content_block
            if block.type == "text" and block.text:
                self._texts.append(block.text)
                yield TextDelta(block.text)
            elif block.type == "tool_use":
                self._open_tools[event.index] = (block.id, block.name, [], dict(block.input or {}))
            elif block.type == "thinking":
                self._open_thinking[event.index] = ([block.thinking or ""], [block.signature or ""])
            elif block.type == "redacted_thinking":
                self._reasoning.append(Reasoning(redacted=block.data, provider=PROVIDER))
        elif kind == "content_block_delta":
            delta = event.delta
            if delta.type == "text_delta":
                self._texts.append(delta.text)
                yield TextDelta(delta.text)
            elif delta.type == "input_json_delta" and event.index in self._open_tools:
                self._open_tools[event.index][2].append(delta.partial_json)
            elif delta.type == "thinking_delta" and event.index in self._open_thinking:
                self._open_thinking[event.index][0].append(delta.thinking)
            elif delta.type == "signature_delta" and event.index in self._open_thinking:
                self._open_thinking[event.index][1].append(delta.signature)
        elif kind == "content_block_stop":
            thinking = self._open_thinking.pop(event.index, None)
            if thinking is not None:
                text, signature = ("".join(pieces) for pieces in thinking)
                self._reasoning.append(Reasoning(text, signature=signature or None, provider=PROVIDER))
            tool = self._open_tools.pop(event.index, None)
            if tool is not None:
                call = _tool_call(*tool)
                self._calls.append(call)
                yield ToolCallPart(call)
        elif kind == "message_delta":
            self.stop_reason = event.delta.stop_reason or self.stop_reason
            usage = event.usage
            self.output_tokens = usage.output_tokens or self.output_tokens
            # Newer API versions repeat the (cumulative) input counts here.
            if getattr(usage, "input_tokens", None) is not None:
                self.input_tokens = _input_tokens(usage)
        elif kind == "message_stop":
            self.stopped = True

    def finish(self) -> ModelResponse:
        if not self.stopped:
            raise ModelConnectionError(
                f"Anthropic model {self.requested_model!r}: the stream ended before message_stop "
                "(the connection was closed early): the answer is incomplete",
                provider=PROVIDER,
            )
        return ModelResponse(
            message=Message(
                "assistant", "".join(self._texts) or None, list(self._calls), reasoning=list(self._reasoning)
            ),
            usage=Usage(self.input_tokens, self.output_tokens, requests=1),
            finish_reason=self.stop_reason,
            response_id=self.response_id,
            model=self.model,
            provider=PROVIDER,
        )


def _tool_call(call_id: str, name: str, fragments: list[str], initial: dict[str, Any]) -> ToolCall:
    raw = "".join(fragments)
    if not raw.strip():
        return ToolCall(id=call_id, name=name, arguments=initial)
    # Invalid JSON (an input cut off by max_tokens) goes back to the model as the tool's error.
    return ToolCall.from_json(call_id, name, raw)


def _input_tokens(usage: Any) -> int:
    return sum(
        getattr(usage, name, None) or 0
        for name in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )
