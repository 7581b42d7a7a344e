"""The ``litellm`` entry point: registers the ``litellm:`` model prefix."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plait.hookspecs import hookimpl

if TYPE_CHECKING:
    from plait_litellm._model import LiteLLMModel

__all__ = ["register_models"]


def create_model(model_name: str, **options: Any) -> LiteLLMModel:
    """``litellm:<provider>/<model>``: options are :class:`~plait_litellm.LiteLLMModel`'s keyword arguments."""
    from plait_litellm._model import LiteLLMModel

    return LiteLLMModel(model_name, **options)


@hookimpl
def register_models(register: Any) -> None:
    register("litellm", create_model)
