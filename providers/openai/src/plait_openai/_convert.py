"""Between plait's model protocol and the Chat Completions wire format.

Pure functions, no SDK import: plait messages, tools, settings and output
schemas become request parameters. The message shape itself is shared with the
other Chat-Completions-shaped providers, in :mod:`plait.chat_format`.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from plait.chat_format import message_params, tool_choice_param, tool_params
from plait.models import ModelRequest, ModelSettings

__all__ = ["PROVIDER", "request_params", "response_format", "strict_json_schema"]

PROVIDER = "openai"


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
    params: dict[str, Any] = {"model": model, "messages": message_params(request.messages, provider=PROVIDER)}
    if request.tools:
        params["tools"] = tool_params(request.tools)
    if request.tool_choice is not None:
        params["tool_choice"] = tool_choice_param(request.tool_choice)
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
