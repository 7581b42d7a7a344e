"""The plait plugin: registers the ``anthropic:`` model prefix (entry point ``anthropic``)."""

from __future__ import annotations

from typing import Any

from plait.hookspecs import hookimpl
from plait_anthropic import AnthropicModel

__all__ = ["register_models"]


def create_model(model_name: str, **options: Any) -> AnthropicModel:
    """``anthropic:<model_name>`` with :class:`AnthropicModel`'s keyword options."""
    return AnthropicModel(model_name, **options)


@hookimpl
def register_models(register: Any) -> None:
    register("anthropic", create_model)
