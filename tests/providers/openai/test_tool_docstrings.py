"""Tool parameters described as their authors wrote them, as the OpenAI server receives them:
Google, NumPy and Sphinx docstrings, ``Field(description=...)`` winning over the docstring,
pydantic-model parameters keeping their fields' descriptions, injected parameters left out,
and a docstring that cannot be parsed leaving the tool working."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field

from plait import Agent, RunContext
from plait_openai import OpenAIModel
from tests.servers.openai_server import OpenAIServer, Reply, ToolCallReply


def google(city: str, unit: str = "C", session_state: dict[str, Any] | None = None) -> str:
    """Current weather in a city.

    Args:
        city: The city to look up, e.g. "Paris".
        unit (str): "C" or "F".
        session_state: injected by plait, never shown to the model.
    """
    return f"sunny in {city} ({unit})"


def numpy_style(city: str, unit: str = "C") -> str:
    """Current weather in a city.

    Parameters
    ----------
    city : str
        The city to look up, e.g. "Paris".
    unit : str
        "C" or "F".
    """
    return f"sunny in {city} ({unit})"


def sphinx(city: str, unit: str = "C", run_context: RunContext | None = None) -> str:
    """Current weather in a city.

    :param city: The city to look up, e.g. "Paris".
    :param unit: "C" or "F".
    :param run_context: injected by plait.
    """
    return f"sunny in {city} ({unit})"


async def _schema_sent(server: OpenAIServer, fn: Any) -> dict[str, Any]:
    """The one tool the server received for an agent with tool ``fn``, after a call of it."""
    server.enqueue(Reply(tool_calls=[ToolCallReply(fn.__name__, {"city": "Paris"})]), "done")
    async with OpenAIModel("gpt-4o-mini", base_url=server.base_url, api_key="k") as model:
        result = await Agent(model=model, tools=[fn]).arun("weather?")
    assert result.content == "done"
    assert server.chat_requests[1]["messages"][-1]["content"] == "sunny in Paris (C)"  # the tool ran
    [sent] = server.chat_requests[0]["tools"]
    function: dict[str, Any] = sent["function"]
    return function


@pytest.mark.parametrize("fn", [google, numpy_style, sphinx], ids=["google", "numpy", "sphinx"])
async def test_each_docstring_style_describes_the_parameters(openai_server: OpenAIServer, fn: Any) -> None:
    function = await _schema_sent(openai_server, fn)
    assert function["description"] == "Current weather in a city."  # the Args section is not repeated
    properties = function["parameters"]["properties"]
    assert properties["city"]["description"] == 'The city to look up, e.g. "Paris".'
    assert properties["unit"]["description"] == '"C" or "F".'
    assert set(properties) == {"city", "unit"}  # run_context / session_state are plait's to fill
    assert function["parameters"]["required"] == ["city"]


class Place(BaseModel):
    """Where to look."""

    city: str = Field(description="the city's English name")
    country: str | None = None


def explicit(
    city: Annotated[str, Field(description="from Field, not the docstring")],
    place: Place | None = None,
    unit: str = Field("C", description="from the default's Field"),
) -> str:
    """Weather.

    Args:
        city: from the docstring
        place: a place, in detail
        unit: from the docstring too
    """
    return f"sunny in {city} ({unit})"


async def test_explicit_descriptions_win_and_models_keep_theirs(openai_server: OpenAIServer) -> None:
    function = await _schema_sent(openai_server, explicit)
    parameters = function["parameters"]
    properties = parameters["properties"]
    assert properties["city"]["description"] == "from Field, not the docstring"
    assert properties["unit"]["description"] == "from the default's Field"
    assert properties["place"]["description"] == "a place, in detail"
    assert parameters["$defs"]["Place"]["properties"]["city"]["description"] == "the city's English name"


def malformed(city: str, unit: str = "C") -> str:
    """Weather.

    Args:
    city: not indented, so Google style finds no parameters here

    :param city the city (no colon: not Sphinx either)
    """
    return f"sunny in {city} ({unit})"


async def test_a_docstring_that_does_not_parse_leaves_the_tool_working(openai_server: OpenAIServer) -> None:
    function = await _schema_sent(openai_server, malformed)
    assert function["description"].startswith("Weather.")  # described by its text as written
    assert set(function["parameters"]["properties"]) == {"city", "unit"}


def test_a_docstring_parser_error_is_not_the_tools_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import docstring_parser

    from plait import Tool

    def refuse(text: str) -> None:
        raise docstring_parser.ParseError("cannot read this")

    monkeypatch.setattr(docstring_parser, "parse", refuse)
    definition = Tool(google).definition
    assert definition.description.startswith("Current weather in a city.\n\nArgs:")  # as written
    assert "description" not in definition.parameters["properties"]["city"]


def test_a_schema_is_built_once_and_each_definition_is_the_caller_s_own() -> None:
    from plait._tools import Tool

    def lookup(n: int) -> str:
        """Look up item n."""
        return str(n)

    tool = Tool(lookup)
    first, second = tool.definition, tool.definition
    assert first.parameters == second.parameters and first.parameters["required"] == ["n"]
    first.parameters["properties"]["n"]["type"] = "changed"  # a provider that edits what it got
    assert tool.definition.parameters["properties"]["n"]["type"] == "integer"
    # a schema given as it is, even an empty one, is used as it is
    assert Tool(lookup, parameters={}).definition.parameters == {}
    given = {"type": "object", "properties": {"n": {"type": "integer"}}}
    assert Tool(lookup, parameters=given).definition.parameters == given
