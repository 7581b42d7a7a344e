"""Between plait's model protocol and LiteLLM's OpenAI-shaped chat format.

Pure functions, no ``litellm`` import: plait messages, tools and settings
become ``litellm.acompletion`` keyword arguments; LiteLLM's responses and
stream chunks (OpenAI-shaped whatever the provider) become plait messages,
tool calls and usage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from plait.errors import BadRequestError, ModelError
from plait.models import Message, ModelRequest, ModelSettings, ToolCall, ToolDefinition, Usage

__all__ = [
    "PROVIDER",
    "ToolCallAccumulator",
    "completion_kwargs",
    "message_params",
    "parse_arguments",
    "tool_params",
    "usage_from",
]

PROVIDER = "litellm"
_TOOL_CHOICE_MODES = {"auto", "none", "required"}


def message_params(messages: list[Message]) -> list[dict[str, Any]]:
    """plait messages as OpenAI-format chat ``messages`` (LiteLLM translates them per provider)."""
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
                    provider=PROVIDER,
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
    """plait tool definitions as OpenAI-format ``tools``."""
    params = []
    for tool in tools:
        function: dict[str, Any] = {"name": tool.name, "parameters": tool.parameters}
        if tool.description:
            function["description"] = tool.description
        params.append({"type": "function", "function": function})
    return params


def _tool_choice(choice: str) -> str | dict[str, Any]:
    if choice in _TOOL_CHOICE_MODES:
        return choice
    return {"type": "function", "function": {"name": choice}}


def completion_kwargs(
    model: str, request: ModelRequest, defaults: ModelSettings, options: dict[str, Any]
) -> dict[str, Any]:
    """The ``litellm.acompletion`` keyword arguments for ``request``.

    ``options`` (the model's own: credentials, ``api_base``, LiteLLM options)
    come first; the request's settings override them, and ``settings.extra``
    goes last, as given, so any LiteLLM or provider parameter can be passed.
    A request's ``output_schema`` (a pydantic model class) is handed to LiteLLM
    as ``response_format``, which turns it into each provider's own form.
    """
    settings = defaults.merged(request.settings)
    kwargs: dict[str, Any] = {**options, "model": model, "messages": message_params(request.messages)}
    if request.tools:
        kwargs["tools"] = tool_params(request.tools)
    if request.tool_choice is not None:
        kwargs["tool_choice"] = _tool_choice(request.tool_choice)
    if request.output_schema is not None:
        kwargs["response_format"] = request.output_schema
    for name in ("temperature", "max_tokens", "top_p", "seed", "timeout"):
        value = getattr(settings, name)
        if value is not None:
            kwargs[name] = value
    if settings.stop is not None:
        kwargs["stop"] = list(settings.stop)
    kwargs.update(settings.extra)
    return kwargs


def parse_arguments(name: str, raw: str | None, finish_reason: str | None) -> dict[str, Any]:
    """A tool call's JSON arguments as a dict; a clear error when the model sent something else."""
    if not raw or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        hint = " (the answer was cut off: finish_reason 'length')" if finish_reason == "length" else ""
        raise ModelError(
            f"LiteLLM model returned invalid JSON arguments for tool {name!r}{hint}: {exc}: {raw[:200]!r}",
            provider=PROVIDER,
        ) from exc
    if not isinstance(value, dict):
        raise ModelError(
            f"LiteLLM model returned arguments for tool {name!r} that are not a JSON object: {raw[:200]!r}",
            provider=PROVIDER,
        )
    return value


def usage_from(usage: Any) -> Usage:
    """plait usage from LiteLLM's ``Usage`` (or ``None``); one request either way."""
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

    Deltas are keyed by ``index``; the id and name usually arrive once and the
    arguments in pieces. Some providers (through LiteLLM) send each call whole,
    reusing one index: a new id at a known index starts a new call.
    """

    _calls: list[_PartialCall] = field(default_factory=list)
    _by_index: dict[int, _PartialCall] = field(default_factory=dict)

    def add(self, delta: Any) -> None:
        """Take one OpenAI-shaped tool-call delta (``index``, ``id``, ``function.name/arguments``)."""
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
                arguments=parse_arguments(partial.name, "".join(partial.arguments), finish_reason),
            )
            for partial in self._calls
        ]
        self._calls.clear()
        self._by_index.clear()
        return calls
