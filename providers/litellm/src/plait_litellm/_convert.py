"""Between plait's model protocol and LiteLLM's OpenAI-shaped chat format.

Pure functions, no ``litellm`` import: plait messages, tools and settings
become ``litellm.acompletion`` keyword arguments; LiteLLM's responses and
stream chunks (OpenAI-shaped whatever the provider) become plait messages,
tool calls and usage.
"""

from __future__ import annotations

from typing import Any

from plait.chat_format import message_params, tool_choice_param, tool_params
from plait.models import ModelRequest, ModelSettings

__all__ = ["PROVIDER", "completion_kwargs"]

PROVIDER = "litellm"


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
    kwargs: dict[str, Any] = {
        **options,
        "model": model,
        "messages": message_params(request.messages, provider=PROVIDER, thinking_blocks=True),
    }
    if request.tools:
        kwargs["tools"] = tool_params(request.tools)
    if request.tool_choice is not None:
        kwargs["tool_choice"] = tool_choice_param(request.tool_choice)
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
