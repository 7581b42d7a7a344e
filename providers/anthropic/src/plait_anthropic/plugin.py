"""The plait plugin: registers the ``anthropic:`` model prefix (entry point ``anthropic``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plait.hookspecs import hookimpl

if TYPE_CHECKING:
    from plait_anthropic._model import AnthropicModel

__all__ = ["register_models"]


def create_model(model_name: str, **options: Any) -> AnthropicModel:
    """``anthropic:<model_name>`` with :class:`AnthropicModel`'s keyword options."""
    from plait_anthropic._model import AnthropicModel

    return AnthropicModel(model_name, **options)


@hookimpl
def register_models(register: Any) -> None:
    register("anthropic", create_model)
