"""The OpenAI Chat Completions message shape, for the providers that speak it.

OpenAI, LiteLLM, vLLM, Ollama and most gateways take and return chat messages
in this one shape. These pure functions (no SDK import) convert plait messages
and tools into it, and rebuild tool calls and usage from responses and stream
chunks (any object with the SDK's attribute names).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from plait.errors import BadRequestError, ModelError
from plait.models import Message, ToolCall, ToolDefinition, Usage

__all__ = [
    "ToolCallAccumulator",
    "message_params",
    "parse_arguments",
    "tool_choice_param",
    "tool_params",
    "usage_from",
]

_TOOL_CHOICE_MODES = {"auto", "none", "required"}


def message_params(messages: list[Message], *, provider: str) -> list[dict[str, Any]]:
    """plait messages as chat ``messages``."""
    params: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        param: dict[str, Any] = {"role": message.role}
        if message.role == "assistant":
            param["content"] = message.content
            if message.tool_calls:
                param["tool_calls"] = [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                    }
                    for call in message.tool_calls
                ]
            elif message.content is None:
                param["content"] = ""
        elif message.role == "tool":
            if not message.tool_call_id:
                raise BadRequestError(
                    f"message {index}: a 'tool' message needs the tool_call_id of the call it answers, got None",
                    provider=provider,
                )
            param["tool_call_id"] = message.tool_call_id
            param["content"] = message.content or ""
        else:
            param["content"] = message.content or ""
        if message.name and message.role in ("system", "user", "assistant"):
            param["name"] = message.name
        params.append(param)
    return params


def tool_params(tools: list[ToolDefinition]) -> list[dict[str, Any]]:
    """plait tool definitions as chat ``tools``."""
    params = []
    for tool in tools:
        function: dict[str, Any] = {"name": tool.name, "parameters": tool.parameters}
        if tool.description:
            function["description"] = tool.description
        params.append({"type": "function", "function": function})
    return params


def tool_choice_param(choice: str) -> str | dict[str, Any]:
    """``"auto"``, ``"none"``, ``"required"``, or a tool's name (force that tool)."""
    if choice in _TOOL_CHOICE_MODES:
        return choice
    return {"type": "function", "function": {"name": choice}}


def parse_arguments(
    name: str, raw: str | None, finish_reason: str | None, *, provider: str
) -> dict[str, Any]:
    """A tool call's JSON arguments as a dict; a clear error when the model sent something else."""
    if not raw or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        hint = " (the answer was cut off: finish_reason 'length')" if finish_reason == "length" else ""
        raise ModelError(
            f"{provider} model returned invalid JSON arguments for tool {name!r}{hint}: {exc}: {raw[:200]!r}",
            provider=provider,
        ) from exc
    if not isinstance(value, dict):
        raise ModelError(
            f"{provider} model returned arguments for tool {name!r} that are not a JSON object: {raw[:200]!r}",
            provider=provider,
        )
    return value


def usage_from(usage: Any) -> Usage:
    """plait usage from a response's ``usage`` (``prompt_tokens``/``completion_tokens``, or None)."""
    if usage is None:
        return Usage(requests=1)
    return Usage(
        input_tokens=getattr(usage, "prompt_tokens", 0) or 0,
        output_tokens=getattr(usage, "completion_tokens", 0) or 0,
        requests=1,
    )


@dataclass(slots=True)
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ToolCallAccumulator:
    """Reassembles tool calls from stream deltas.

    Deltas are keyed by ``index``; the id and name arrive once and the arguments in
    pieces. Some providers send each call whole, reusing one index: a new id at a
    known index starts a new call.
    """

    provider: str
    _calls: list[_PartialCall] = field(default_factory=list)
    _by_index: dict[int, _PartialCall] = field(default_factory=dict)

    def add(self, delta: Any) -> None:
        """Take one tool-call delta (``index``, ``id``, ``function.name`` / ``function.arguments``)."""
        index = getattr(delta, "index", None)
        key = index if isinstance(index, int) else len(self._calls)
        call = self._by_index.get(key)
        if call is None or (delta.id and call.id and delta.id != call.id):
            call = self._by_index[key] = _PartialCall()
            self._calls.append(call)
        if delta.id:
            call.id = delta.id
        function = delta.function
        if function is not None:
            if function.name and not call.name:
                call.name = function.name
            if function.arguments:
                call.arguments.append(function.arguments)

    def finish(self, finish_reason: str | None) -> list[ToolCall]:
        """Every call received so far, in arrival order, with parsed arguments."""
        calls = [
            ToolCall(
                id=partial.id,
                name=partial.name,
                arguments=parse_arguments(
                    partial.name, "".join(partial.arguments), finish_reason, provider=self.provider
                ),
            )
            for partial in self._calls
        ]
        self._calls.clear()
        self._by_index.clear()
        return calls
