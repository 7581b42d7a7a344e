"""plait-litellm as a distribution: entry point, lazy import, pickling, event loops, an Agent end to end."""

from __future__ import annotations

import asyncio
import pickle
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from plait import Agent
from plait.models import Message, ModelRequest, get_model
from plait.plugins import Registry, build_registry, set_registry
from plait_litellm import LiteLLMModel
from tests.servers.openai_server import OpenAIServer, Reply, ToolCallReply

from .conftest import API_KEY, LITELLM_WARNINGS

pytestmark = LITELLM_WARNINGS

REQUEST = ModelRequest([Message("user", "ping")])


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    """A registry built from the installed entry points, installed as the process-wide one."""
    monkeypatch.delenv("PLAIT_LOAD_PLUGINS", raising=False)
    monkeypatch.delenv("PLAIT_DISABLE_PLUGINS", raising=False)
    registry = build_registry()
    old = set_registry(registry)
    yield registry
    set_registry(old)


async def test_get_model_resolves_through_the_entry_point(
    registry: Registry, openai_server: OpenAIServer
) -> None:
    assert registry.entries("model")["litellm"].plugin == "litellm"
    assert registry.plugins["litellm"].distribution == "plait-litellm"
    assert "register_models" in registry.plugins["litellm"].hooks
    assert not [error for error in registry.errors if error.name == "litellm"]

    model = get_model("litellm:openai/gpt-4o-mini", base_url=openai_server.base_url, api_key=API_KEY)

    assert isinstance(model, LiteLLMModel)
    assert (model.name, model.model, model.provider) == (
        "litellm:openai/gpt-4o-mini",
        "openai/gpt-4o-mini",
        "litellm",
    )
    async with model:
        assert (await model.complete(REQUEST)).message.content == "Echo: ping"


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_importing_the_package_does_not_import_litellm() -> None:
    result = run_python(
        """
        import sys
        import plait_litellm, plait_litellm.plugin
        from plait.plugins import build_registry
        build_registry()
        model = plait_litellm.LiteLLMModel("openai/gpt-4o-mini")
        model.name, repr(model)
        assert "litellm" not in sys.modules, "plait_litellm imported litellm"
        """
    )
    assert result.returncode == 0, result.stderr


def test_missing_litellm_names_the_package_to_install() -> None:
    result = run_python(
        """
        import asyncio, sys
        sys.modules["litellm"] = None  # as if litellm were not installed
        from plait.errors import MissingDependencyError
        from plait.models import Message, ModelRequest
        from plait_litellm import LiteLLMModel

        model = LiteLLMModel("openai/gpt-4o-mini", api_key="k")
        try:
            asyncio.run(model.complete(ModelRequest([Message("user", "hi")])))
        except MissingDependencyError as exc:
            assert "pip install plait-litellm" in str(exc), exc
        else:
            raise AssertionError("no MissingDependencyError")
        """
    )
    assert result.returncode == 0, result.stderr


def test_litellm_is_told_to_use_its_local_cost_map() -> None:
    result = run_python(
        """
        import asyncio, os
        from plait_litellm import LiteLLMModel
        assert LiteLLMModel("openai/gpt-4o-mini").supports_structured_output  # imports litellm
        assert os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
        import litellm
        assert litellm.suppress_debug_info is True
        """
    )
    assert result.returncode == 0, result.stderr


async def test_pickled_model_keeps_its_configuration(openai_server: OpenAIServer) -> None:
    model = LiteLLMModel(
        "openai/gpt-4o-mini",
        base_url=openai_server.base_url,
        api_key=API_KEY,
        timeout=7,
        extra_headers={"X-A": "1"},
    )
    async with model:
        await model.complete(REQUEST)  # litellm now holds live clients for this loop
        copy = pickle.loads(pickle.dumps(model))

        assert isinstance(copy, LiteLLMModel)
        assert (copy.model, copy.base_url, copy.api_key, copy.timeout) == (
            model.model,
            model.base_url,
            model.api_key,
            model.timeout,
        )
        assert copy.litellm_options == {"extra_headers": {"X-A": "1"}}
        assert copy.retry == model.retry
        assert (await copy.complete(REQUEST)).message.content == "Echo: ping"
    assert openai_server.last_request.headers["x-a"] == "1"


def test_one_model_across_several_event_loops(openai_server: OpenAIServer) -> None:
    """Each ``asyncio.run`` gets LiteLLM clients of its own, closed with its loop
    (filterwarnings=error turns a leaked connection into a failure)."""
    model = LiteLLMModel("openai/gpt-4o-mini", base_url=openai_server.base_url, api_key=API_KEY)

    async def ask(text: str) -> str | None:
        request = ModelRequest([Message("user", text)])
        items = [item async for item in model.stream(request)]
        return (await model.complete(request)).message.content if items else None

    assert asyncio.run(ask("one")) == "Echo: one"
    assert asyncio.run(ask("two")) == "Echo: two"
    assert len(openai_server.chat_requests) == 4


async def test_agent_with_a_tool_end_to_end(openai_server: OpenAIServer) -> None:
    calls: list[str] = []

    def get_weather(city: str) -> str:
        """Current weather in a city."""
        calls.append(city)
        return f"sunny in {city}"

    openai_server.enqueue(
        Reply(tool_calls=[ToolCallReply("get_weather", {"city": "Paris"}, id="call_1")]),
        "It is sunny in Paris.",
    )
    model = LiteLLMModel("openai/gpt-4o-mini", base_url=openai_server.base_url, api_key=API_KEY)
    agent = Agent(name="Weather", model=model, instructions="Answer briefly.", tools=[get_weather])

    async with model:
        result = await agent.arun("Weather in Paris?")

    assert str(result) == "It is sunny in Paris."
    assert calls == ["Paris"]
    second = openai_server.chat_requests[-1]
    assert second["messages"][0] == {"role": "system", "content": "Answer briefly."}
    assert second["messages"][-1] == {"role": "tool", "tool_call_id": "call_1", "content": "sunny in Paris"}
    assert second["tools"][0]["function"]["name"] == "get_weather"
    assert result.usage.requests == 2
