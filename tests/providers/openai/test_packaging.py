"""plait-openai as a distribution: entry point, lazy SDK import, credentials, pickling, event loops."""

from __future__ import annotations

import asyncio
import pickle
import subprocess
import sys
from collections.abc import Iterator

import pytest

from plait.errors import AuthenticationError, MissingDependencyError
from plait.models import Message, ModelRequest, get_model
from plait.plugins import build_registry, set_registry
from plait_openai import OpenAIModel
from tests.servers.openai_server import OpenAIServer

REQUEST = ModelRequest(messages=[Message(role="user", content="ping")])


@pytest.fixture
def registry_from_entry_points(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("PLAIT_LOAD_PLUGINS", raising=False)
    monkeypatch.delenv("PLAIT_DISABLE_PLUGINS", raising=False)
    old = set_registry(build_registry())
    yield
    set_registry(old)


@pytest.mark.usefixtures("registry_from_entry_points")
async def test_get_model_resolves_through_the_entry_point(openai_server: OpenAIServer) -> None:
    model = get_model("openai:gpt-4o-mini", base_url=openai_server.base_url, api_key="test-key")
    assert isinstance(model, OpenAIModel)
    assert (model.name, model.model) == ("openai:gpt-4o-mini", "gpt-4o-mini")
    async with model:
        assert (await model.complete(REQUEST)).message.content == "Echo: ping"


def test_the_plugin_is_listed_with_its_distribution() -> None:
    registry = build_registry()
    entry = registry.entries("model")["openai"]
    assert entry.plugin == "openai"
    info = registry.plugins["openai"]
    assert info.distribution == "plait-openai"
    assert "register_models" in info.hooks
    assert not [error for error in registry.errors if error.name == "openai"]


def test_importing_the_package_does_not_import_the_sdk() -> None:
    code = (
        "import sys, plait_openai, plait_openai.plugin\n"
        "from plait_openai import OpenAIModel\n"
        "OpenAIModel('gpt-4o-mini')\n"
        "assert 'openai' not in sys.modules, 'openai was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


async def test_missing_sdk_gives_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)  # what `import openai` sees when it is not installed
    model = OpenAIModel("gpt-4o-mini", api_key="k")
    with pytest.raises(MissingDependencyError, match="pip install plait-openai"):
        await model.complete(REQUEST)


async def test_missing_api_key_says_what_to_do() -> None:
    model = OpenAIModel("gpt-4o-mini")
    with pytest.raises(AuthenticationError) as caught:
        await model.complete(REQUEST)
    assert "OPENAI_API_KEY" in str(caught.value)
    assert "api_key=" in str(caught.value)
    assert caught.value.retryable is False


async def test_standard_environment_variables(
    openai_server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    async with OpenAIModel("gpt-4o-mini") as model:
        assert (await model.complete(REQUEST)).message.content == "Echo: ping"
    assert openai_server.last_request.headers["authorization"] == "Bearer sk-from-env"


async def test_pickled_model_builds_its_own_client(model: OpenAIModel, openai_server: OpenAIServer) -> None:
    await model.complete(REQUEST)  # the original now holds a live client

    copy = pickle.loads(pickle.dumps(model))

    assert isinstance(copy, OpenAIModel)
    assert copy._clients is None  # the client was not pickled
    assert (copy.model, copy.base_url, copy.api_key) == (model.model, model.base_url, model.api_key)
    assert copy.retry == model.retry
    async with copy:
        assert (await copy.complete(REQUEST)).message.content == "Echo: ping"
        assert copy._clients is not None and model._clients is not None
        [copy_client] = [entry.client for entry in copy._clients.values()]
        [original_client] = [entry.client for entry in model._clients.values()]
        assert copy_client is not original_client
    assert (await model.complete(REQUEST)).message.content == "Echo: ping"


def test_one_model_across_several_event_loops(openai_server: OpenAIServer) -> None:
    """Each ``asyncio.run`` gets a client of its own, closed with its loop (filterwarnings=error
    turns an unclosed connection into a failure)."""
    model = OpenAIModel("gpt-4o-mini", base_url=openai_server.base_url, api_key="k")

    async def ask(text: str) -> str | None:
        request = ModelRequest(messages=[Message(role="user", content=text)])
        return (await model.complete(request)).message.content

    assert asyncio.run(ask("one")) == "Echo: one"
    assert asyncio.run(ask("two")) == "Echo: two"
    assert model._clients == {}  # both closed when their loops shut down


async def test_aclose_then_reuse(openai_server: OpenAIServer) -> None:
    model = OpenAIModel("gpt-4o-mini", base_url=openai_server.base_url, api_key="k")
    await model.aclose()  # nothing built yet: a no-op
    await model.complete(REQUEST)
    await model.aclose()
    assert model._clients == {}
    async with model:
        assert (await model.complete(REQUEST)).message.content == "Echo: ping"
