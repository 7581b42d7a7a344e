"""OpenAI models for plait: ``get_model("openai:gpt-4o-mini")`` or ``OpenAIModel(...)``.

Works with OpenAI's API and with any server that speaks its Chat Completions
protocol (vLLM, Ollama, llama.cpp, LiteLLM proxy) through ``base_url``.
Importing this package does not import the ``openai`` SDK.
"""

from plait_openai._model import OpenAIModel

__all__ = ["OpenAIModel"]

OpenAIModel.__module__ = "plait_openai"
