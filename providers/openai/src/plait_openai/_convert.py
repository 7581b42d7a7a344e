"""Between plait's model protocol and the Chat Completions wire format.

Pure functions, no SDK import: plait messages, tools, settings and output
schemas become request parameters; completion objects and stream chunks become
plait messages, tool calls and usage.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any

from plait.errors import BadRequestError, ModelError
from plait.models import Message, ModelRequest, ModelSettings, ToolCall, ToolDefinition, Usage

__all__ = [
    "ToolCallAccumulator",
    "message_params",
    "parse_arguments",
    "request_params",
    "response_format",
    "strict_json_schema",
    "tool_params",
    "usage_from",
]

PROVIDER = "openai"
_TOOL_CHOICE_MODES = {"auto", "none", "required"}


def message_params(messages: list[Message]) -> list[dict[str, Any]]:
    """plait messages as Chat Completions ``messages``."""
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
    """plait tool definitions as Chat Completions ``tools``."""
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


def strict_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` that OpenAI's strict structured outputs accept.

    Strict mode wants every object closed (``additionalProperties: false``) with
    every property required (optional fields stay nullable through ``anyOf``),
    no ``null`` defaults, and no keywords beside a ``$ref``, so those refs are inlined.
    """
    root = copy.deepcopy(schema)

    def resolve(ref: str) -> dict[str, Any]:
        target: Any = root
        for key in ref.removeprefix("#/").split("/"):
            target = target[key]
        return copy.deepcopy(target)  # type: ignore[no-any-return]

    def visit(node: Any) -> Any:
        if isinstance(node, list):
            return [visit(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node and len(node) > 1:
            ref = node.pop("$ref")
            node = {**resolve(ref), **node}
        if node.get("default", ...) is None:
            del node["default"]
        for key, value in list(node.items()):
            if (key == "properties" and isinstance(value, dict)) or (
                key in ("$defs", "definitions") and isinstance(value, dict)
            ):
                node[key] = {name: visit(sub) for name, sub in value.items()}
            elif isinstance(value, (dict, list)):
                node[key] = visit(value)
        if node.get("type") == "object" or "properties" in node:
            node["additionalProperties"] = False
            node["required"] = list(node.get("properties", {}))
        return node

    return visit(root)  # type: ignore[no-any-return]


def _schema_of(output_schema: type[Any]) -> dict[str, Any]:
    model_json_schema = getattr(output_schema, "model_json_schema", None)
    if callable(model_json_schema):
        return model_json_schema()  # type: ignore[no-any-return]
    from pydantic import TypeAdapter

    return TypeAdapter(output_schema).json_schema()


def response_format(output_schema: type[Any]) -> dict[str, Any]:
    """``response_format`` asking for JSON that fits ``output_schema`` (a pydantic model class)."""
    name = re.sub(r"[^a-zA-Z0-9_-]", "_", getattr(output_schema, "__name__", "output"))[:64] or "output"
    json_schema = {"name": name, "schema": strict_json_schema(_schema_of(output_schema)), "strict": True}
    return {"type": "json_schema", "json_schema": json_schema}


def request_params(
    model: str, request: ModelRequest, defaults: ModelSettings, *, max_tokens_param: str
) -> tuple[dict[str, Any], float | None]:
    """The ``chat.completions.create`` keyword arguments for ``request``, and the request timeout.

    ``settings.extra`` goes into the JSON body as given (``extra_body``), so any
    parameter the SDK or an OpenAI-compatible server knows can be passed.
    """
    settings = defaults.merged(request.settings)
    params: dict[str, Any] = {"model": model, "messages": message_params(request.messages)}
    if request.tools:
        params["tools"] = tool_params(request.tools)
    if request.tool_choice is not None:
        params["tool_choice"] = _tool_choice(request.tool_choice)
    if request.output_schema is not None:
        params["response_format"] = response_format(request.output_schema)
    if settings.temperature is not None:
        params["temperature"] = settings.temperature
    if settings.max_tokens is not None:
        params[max_tokens_param] = settings.max_tokens
    if settings.top_p is not None:
        params["top_p"] = settings.top_p
    if settings.stop is not None:
        params["stop"] = list(settings.stop)
    if settings.seed is not None:
        params["seed"] = settings.seed
    if settings.extra:
        params["extra_body"] = dict(settings.extra)
    return params, settings.timeout


def parse_arguments(name: str, raw: str | None, finish_reason: str | None) -> dict[str, Any]:
    """A tool call's JSON arguments as a dict; a clear error when the model sent something else."""
    if not raw or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        hint = " (the answer was cut off: finish_reason 'length')" if finish_reason == "length" else ""
        raise ModelError(
            f"OpenAI model returned invalid JSON arguments for tool {name!r}{hint}: {exc}: {raw[:200]!r}",
            provider=PROVIDER,
        ) from exc
    if not isinstance(value, dict):
        raise ModelError(
            f"OpenAI model returned arguments for tool {name!r} that are not a JSON object: {raw[:200]!r}",
            provider=PROVIDER,
        )
    return value


def usage_from(usage: Any) -> Usage:
    """plait usage from an SDK ``CompletionUsage`` (or ``None``); one request either way."""
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
    """Reassembles tool calls from stream deltas, keyed by their ``index``."""

    _calls: dict[int, _PartialCall] = field(default_factory=dict)

    def add(self, delta: Any) -> None:
        """Take one ``ChoiceDeltaToolCall``: its id and name arrive once, its arguments in pieces."""
        call = self._calls.setdefault(delta.index, _PartialCall())
        if delta.id:
            call.id = delta.id
        function = delta.function
        if function is not None:
            if function.name:
                call.name += function.name
            if function.arguments:
                call.arguments.append(function.arguments)

    def finish(self, finish_reason: str | None) -> list[ToolCall]:
        """Every call received so far, in index order, with parsed arguments."""
        calls = [
            ToolCall(
                id=partial.id,
                name=partial.name,
                arguments=parse_arguments(partial.name, "".join(partial.arguments), finish_reason),
            )
            for _, partial in sorted(self._calls.items())
        ]
        self._calls.clear()
        return calls
