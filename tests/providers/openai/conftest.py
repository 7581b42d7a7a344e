"""Fixtures for the OpenAI provider tests: a local OpenAI server and a model pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from plait.retry import RetryPolicy
from plait_openai import OpenAIModel
from tests.servers.openai_server import OpenAIServer, openai_server

__all__ = ["openai_server"]

# Settings a developer's shell may carry; the tests must not see them.
_OPENAI_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "OPENAI_ADMIN_KEY")


@pytest.fixture(autouse=True)
def _clean_openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _OPENAI_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fast_retry() -> RetryPolicy:
    """Retries without real waiting, unless the server asks for it (Retry-After)."""
    return RetryPolicy(max_attempts=3, initial_delay=0.001, max_delay=0.01, jitter=0)


@pytest.fixture
async def model(openai_server: OpenAIServer, fast_retry: RetryPolicy) -> AsyncIterator[OpenAIModel]:
    async with OpenAIModel(
        "gpt-4o-mini", base_url=openai_server.base_url, api_key="test-key", retry=fast_retry
    ) as model:
        yield model
