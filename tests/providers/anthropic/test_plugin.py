"""Packaging: the entry point, lazy SDK import, pickling and configuration errors."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from plait.errors import AuthenticationError
from plait.models import Message, ModelRequest, get_model
from plait.plugins import Registry, build_registry, set_registry
from plait_anthropic import AnthropicModel
from tests.servers.anthropic_server import AnthropicServer

from .conftest import API_KEY

REQUEST = ModelRequest([Message("user", "Hello")])


@pytest.fixture
def registry() -> Iterator[Registry]:
    """A registry built from the installed entry points, installed as the process-wide one."""
    registry = build_registry()
    old = set_registry(registry)
    yield registry
    set_registry(old)


async def test_get_model_resolves_through_the_entry_point(
    registry: Registry, server: AnthropicServer
) -> None:
    entry = registry.entries("model")["anthropic"]
    assert entry.plugin == "anthropic"
    assert registry.plugins["anthropic"].distribution == "plait-anthropic"
    assert "register_models" in registry.plugins["anthropic"].hooks

    model = get_model("anthropic:claude-sonnet-4-5", base_url=server.base_url, api_key=API_KEY, max_tokens=77)

    assert isinstance(model, AnthropicModel)
    assert model.name == "anthropic:claude-sonnet-4-5"
    async with model:
        response = await model.complete(REQUEST)
    assert response.message.content == "Echo: Hello"
    assert server.last_request.json["model"] == "claude-sonnet-4-5"
    assert server.last_request.json["max_tokens"] == 77


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60, check=False
    )


def test_importing_the_package_does_not_import_the_sdk() -> None:
    result = run_python(
        """
        import sys
        import plait_anthropic, plait_anthropic.plugin
        model = plait_anthropic.AnthropicModel("claude-sonnet-4-5")
        assert "anthropic" not in sys.modules, "plait_anthropic imported the anthropic SDK"
        assert "httpx" not in sys.modules, "plait_anthropic imported httpx"
        """
    )
    assert result.returncode == 0, result.stderr


def test_missing_sdk_names_the_package_to_install() -> None:
    result = run_python(
        """
        import asyncio, sys
        sys.modules["anthropic"] = None  # as if the SDK were not installed
        from plait.errors import MissingDependencyError
        from plait.models import Message, ModelRequest
        from plait_anthropic import AnthropicModel

        model = AnthropicModel("claude-sonnet-4-5", api_key="k")
        try:
            asyncio.run(model.complete(ModelRequest([Message("user", "hi")])))
        except MissingDependencyError as exc:
            print(exc)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "pip install plait-anthropic" in result.stdout


async def test_pickling_after_use_drops_the_client(model: AnthropicModel, server: AnthropicServer) -> None:
    await model.complete(REQUEST)
    assert model._client is not None

    clone = pickle.loads(pickle.dumps(model))

    assert clone._client is None
    assert (clone.model, clone.base_url, clone.api_key, clone.timeout) == (
        model.model,
        model.base_url,
        model.api_key,
        model.timeout,
    )
    async with clone:
        assert (await clone.complete(REQUEST)).message.content == "Echo: Hello"
    assert len(server.requests) == 2


async def test_environment_variables_configure_the_client(
    server: AnthropicServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-env")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
    model = AnthropicModel("claude-sonnet-4-5")
    async with model:
        await model.complete(REQUEST)
    assert server.last_request.headers["x-api-key"] == "sk-ant-from-env"
    # The key is read in the process that uses the model, never stored in it.
    assert b"sk-ant-from-env" not in pickle.dumps(model)


async def test_missing_api_key_says_how_to_set_one(
    monkeypatch: pytest.MonkeyPatch, server: AnthropicServer
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    model = AnthropicModel("claude-sonnet-4-5", base_url=server.base_url)

    with pytest.raises(AuthenticationError) as info:
        await model.complete(REQUEST)
    with pytest.raises(AuthenticationError):
        [item async for item in model.stream(REQUEST)]

    message = str(info.value)
    assert "ANTHROPIC_API_KEY" in message and "api_key=" in message
    assert not info.value.retryable
    assert server.requests == []


def test_model_name_is_validated() -> None:
    from plait.errors import DefinitionError

    with pytest.raises(DefinitionError, match="non-empty string"):
        AnthropicModel("")


def test_repr_does_not_show_the_key() -> None:
    model = AnthropicModel("claude-sonnet-4-5", api_key="sk-ant-secret")
    assert repr(model) == "AnthropicModel('claude-sonnet-4-5')"
    assert model.provider == "anthropic" and model.supports_structured_output is False
