"""OpenAI models for plait: ``get_model("openai:gpt-4o-mini")`` or ``OpenAIModel(...)``.

Works with OpenAI's API and with any server that speaks its Chat Completions
protocol (vLLM, Ollama, llama.cpp, LiteLLM proxy) through ``base_url``.
Importing this package does not import the ``openai`` SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plait_openai._model import OpenAIModel

__all__ = ["OpenAIModel"]


def __getattr__(name: str) -> Any:
    # loaded on first use: registering the plugin (entry point) stays light
    if name == "OpenAIModel":
        from plait_openai._model import OpenAIModel

        OpenAIModel.__module__ = __name__
        return OpenAIModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
