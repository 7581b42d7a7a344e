"""Every model LiteLLM supports, for plait: ``get_model("litellm:anthropic/claude-sonnet-4-5")``.

Installed, it registers the ``litellm`` provider prefix, so
``plait.models.get_model("litellm:<provider>/<model>")`` and
``Agent(model="litellm:ollama/llama3")`` resolve to :class:`LiteLLMModel`.
Importing this package does not import ``litellm``; the first call does.
"""

from plait_litellm._model import LiteLLMModel

__all__ = ["LiteLLMModel"]

LiteLLMModel.__module__ = "plait_litellm"
