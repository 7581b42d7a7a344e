"""Every model LiteLLM supports, for plait: ``get_model("litellm:anthropic/claude-sonnet-4-5")``.

Installed, it registers the ``litellm`` provider prefix, so
``plait.models.get_model("litellm:<provider>/<model>")`` and
``Agent(model="litellm:ollama/llama3")`` resolve to :class:`LiteLLMModel`.
Importing this package does not import ``litellm``; the first call does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plait_litellm._model import LiteLLMModel

__all__ = ["LiteLLMModel"]


def __getattr__(name: str) -> Any:
    # loaded on first use: registering the plugin (entry point) stays light
    if name == "LiteLLMModel":
        from plait_litellm._model import LiteLLMModel

        LiteLLMModel.__module__ = __name__
        return LiteLLMModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
