"""The ``openai`` entry point: registers the ``openai:`` model prefix."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plait.hookspecs import hookimpl

if TYPE_CHECKING:
    from plait_openai._model import OpenAIModel

__all__ = ["register_models"]


def create_model(model_name: str, **options: Any) -> OpenAIModel:
    """``openai:<model_name>``: options are :class:`~plait_openai.OpenAIModel`'s keyword arguments."""
    from plait_openai._model import OpenAIModel

    return OpenAIModel(model_name, **options)


@hookimpl
def register_models(register: Any) -> None:
    register("openai", create_model)
