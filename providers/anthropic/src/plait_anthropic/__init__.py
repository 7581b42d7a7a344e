"""Anthropic (Claude) models for plait.

Installed, it registers the ``anthropic`` provider prefix, so
``plait.models.get_model("anthropic:claude-sonnet-4-5")`` and
``Agent(model="anthropic:claude-sonnet-4-5")`` resolve to :class:`AnthropicModel`.
Importing this package does not import the ``anthropic`` SDK; the first call does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plait_anthropic._model import AnthropicModel

__all__ = ["AnthropicModel"]


def __getattr__(name: str) -> Any:
    # loaded on first use: registering the plugin (entry point) stays light
    if name == "AnthropicModel":
        from plait_anthropic._model import AnthropicModel

        AnthropicModel.__module__ = __name__
        return AnthropicModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
