"""Fixtures: a local Anthropic wire-protocol server and a model pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from plait.retry import RetryPolicy
from plait_anthropic import AnthropicModel
from tests.servers.anthropic_server import AnthropicServer, anthropic_server

__all__ = ["anthropic_server", "model", "server"]

API_KEY = "sk-ant-test-key"


@pytest.fixture
def server(anthropic_server: AnthropicServer) -> AnthropicServer:
    """The running server, under a short name."""
    return anthropic_server


@pytest.fixture
async def model(server: AnthropicServer) -> AsyncIterator[AnthropicModel]:
    """An AnthropicModel talking to ``server``, with tiny retry delays; closed afterwards."""
    model = AnthropicModel(
        "claude-sonnet-4-5",
        api_key=API_KEY,
        base_url=server.base_url,
        retry=RetryPolicy(max_attempts=3, initial_delay=0.001, jitter=0),
        timeout=10,
    )
    async with model:
        yield model
