"""plait.Toolset: tools an agent's run opens as it starts and closes when it ends; Tool(parameters=)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest

from plait import Agent, PlaitError, Tool, Toolset, ToolsetError
from plait.errors import DefinitionError
from plait.models import Message, ModelRequest, ToolCall
from plait.testing import FunctionModel

SCHEMA = {"type": "object", "properties": {"first name": {"type": "string"}}, "required": ["first name"]}


class Counting:
    """A toolset whose one tool greets; it counts how often runs opened and closed it."""

    def __init__(self, fail_with: Exception | None = None) -> None:
        self.opened = 0
        self.closed = 0
        self.fail_with = fail_with

    @asynccontextmanager
    async def open(self) -> AsyncIterator[Sequence[Tool]]:
        self.opened += 1

        async def greet(**arguments: Any) -> str:
            if self.fail_with is not None:
                raise self.fail_with
            return f"hello {arguments['first name']} ({self.opened - self.closed} open)"

        try:
            yield [Tool(greet, name="greet", description="Greet someone.", parameters=SCHEMA)]
        finally:
            self.closed += 1

    def cache_identity(self) -> Any:
        return ["counting"]


def calling_greet(seen: list[ModelRequest]) -> FunctionModel:
    def reply(messages: list[Message], request: ModelRequest) -> Any:
        seen.append(request)
        if messages[-1].role == "user":
            # a key that is no Python identifier, and a value the schema does not check here
            return ToolCall("g", "greet", {"first name": "Ada"})
        return str(messages[-1].content)

    return FunctionModel(reply)


def test_each_run_opens_the_toolset_and_closes_it_after() -> None:
    toolset = Counting()
    assert isinstance(toolset, Toolset)
    seen: list[ModelRequest] = []
    agent = Agent(model=calling_greet(seen), tools=[toolset])
    assert agent.tools == [] and agent.toolsets == [toolset]
    assert agent.run("x").content == "hello Ada (1 open)"
    assert (toolset.opened, toolset.closed) == (1, 1)
    definition = seen[0].tools[0]
    assert (definition.name, definition.description, definition.parameters) == (
        "greet",
        "Greet someone.",
        SCHEMA,
    )

    async def concurrently() -> list[Any]:
        return await asyncio.gather(*(agent.arun("x") for _ in range(5)))

    outputs = asyncio.run(concurrently())
    assert len(outputs) == 5 and (toolset.opened, toolset.closed) == (6, 6)
    assert [["counting"]] in agent.cache_identity()


def test_a_tool_error_goes_to_the_model_but_a_toolset_error_stops_the_run() -> None:
    toolset = Counting(fail_with=ValueError("no such person"))
    agent = Agent(model=calling_greet([]), tools=[toolset])
    assert agent.run("x").content == "Error: ValueError: no such person"

    toolset = Counting(fail_with=ToolsetError("server 's' went away", toolset="s", tool="greet"))
    agent = Agent(model=calling_greet([]), tools=[toolset])
    with pytest.raises(ToolsetError, match="server 's' went away") as caught:
        agent.run("x")
    assert caught.value.tool == "greet"
    assert (toolset.opened, toolset.closed) == (1, 1)  # closed on the way out too


def test_a_toolset_must_give_tools_with_names_of_their_own() -> None:
    class Bad:
        @asynccontextmanager
        async def open(self) -> AsyncIterator[Sequence[Any]]:
            yield ["greet"]

        def cache_identity(self) -> Any:
            return None

    with pytest.raises(PlaitError, match=r"gave 'greet', expected plait\.Tool objects"):
        Agent(model=calling_greet([]), tools=[Bad()]).run("x")

    def greet(name: str) -> str:
        return name

    with pytest.raises(PlaitError, match="gives a tool named 'greet', a name the agent already has"):
        Agent(model=calling_greet([]), tools=[greet, Counting()]).run("x")


def test_tool_parameters_must_be_an_object_schema() -> None:
    async def fn(**arguments: Any) -> None:
        return None

    with pytest.raises(DefinitionError, match="parameters must be a JSON schema of an object"):
        Tool(fn, name="t", parameters={"type": "string"})
