"""Fixtures: the local OpenAI and Anthropic wire-protocol servers, and LiteLLM models pointed at them.

Real ``litellm`` over real HTTP: ``openai/<model>`` with ``api_base`` talks Chat
Completions to the OpenAI server, ``anthropic/<model>`` talks Messages to the
Anthropic one. litellm is imported once, by the first test that calls a model.
"""

from __future__ import annotations

import gc
import warnings
from collections.abc import AsyncIterator, Iterator

import pytest

from plait.retry import RetryPolicy
from plait_litellm import LiteLLMModel
from tests.servers.anthropic_server import AnthropicServer, anthropic_server
from tests.servers.openai_server import OpenAIServer, openai_server

__all__ = [
    "LITELLM_WARNINGS",
    "anthropic_model",
    "anthropic_server",
    "fast_retry",
    "openai_model",
    "openai_server",
]

API_KEY = "test-key"

# Warnings raised inside litellm's stream handling (litellm 1.106, pydantic 2.11+),
# harmless, which `filterwarnings = error` would turn into failed streams (litellm
# wraps them as connection errors). Modules that call models mark themselves with
# them: `pytestmark = LITELLM_WARNINGS`.
LITELLM_WARNINGS = [
    # Its streaming types include a TypedDict with a `ReadOnly` item; the first
    # time pydantic builds a schema for it, pydantic says it will not enforce it.
    pytest.mark.filterwarnings(
        r"ignore:Item 'summary' on TypedDict class 'ChatCompletionReasoningItem' is using the `ReadOnly`"
        r" qualifier:UserWarning"
    ),
    # litellm.litellm_core_utils.model_response_utils.is_model_response_stream_empty
    # reads every attribute of each chunk, pydantic's deprecated instance ones included.
    pytest.mark.filterwarnings(
        r"ignore:Accessing the 'model_(computed_)?fields' attribute on the instance is deprecated"
        r":pydantic.warnings.PydanticDeprecatedSince211"
    ),
]

# Settings a developer's shell may carry; the tests must not see them.
_PROVIDER_ENV = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_API_BASE",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_API_BASE",
    "LITELLM_LOG",
)


@pytest.fixture(autouse=True)
def _clean_provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _PROVIDER_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fast_retry() -> RetryPolicy:
    """Retries without real waiting, unless the server asks for it (Retry-After)."""
    return RetryPolicy(max_attempts=3, initial_delay=0.001, max_delay=0.01, jitter=0)


@pytest.fixture
async def openai_model(openai_server: OpenAIServer, fast_retry: RetryPolicy) -> AsyncIterator[LiteLLMModel]:
    """``openai/gpt-4o-mini`` through LiteLLM, against the local OpenAI server."""
    async with LiteLLMModel(
        "openai/gpt-4o-mini", base_url=openai_server.base_url, api_key=API_KEY, retry=fast_retry, timeout=10
    ) as model:
        yield model


@pytest.fixture
async def anthropic_model(
    anthropic_server: AnthropicServer, fast_retry: RetryPolicy
) -> AsyncIterator[LiteLLMModel]:
    """``anthropic/claude-sonnet-4-5`` through LiteLLM, against the local Anthropic server."""
    async with LiteLLMModel(
        "anthropic/claude-sonnet-4-5",
        base_url=anthropic_server.base_url,
        api_key=API_KEY,
        retry=fast_retry,
        timeout=10,
    ) as model:
        yield model


@pytest.fixture(autouse=True)
def collect_litellm_leaks() -> Iterator[None]:
    """litellm 1.106 leaves aiohttp sessions and sockets of its own open (after some
    streaming errors). Collect them after each test, with their ResourceWarnings ignored,
    so they are not garbage-collected during, and blamed on, some later test."""
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
