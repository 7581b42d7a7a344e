"""Anthropic (Claude) models for plait.

Installed, it registers the ``anthropic`` provider prefix, so
``plait.models.get_model("anthropic:claude-sonnet-4-5")`` and
``Agent(model="anthropic:claude-sonnet-4-5")`` resolve to :class:`AnthropicModel`.
Importing this package does not import the ``anthropic`` SDK; the first call does.
"""

from plait_anthropic._model import AnthropicModel

__all__ = ["AnthropicModel"]

AnthropicModel.__module__ = "plait_anthropic"
