"""Extended thinking and tool errors (issue #20, item 5): thinking and redacted thinking blocks
are kept on the assistant message and sent back, unchanged, on the next turn of a tool loop (the
local server, like the API, refuses a tool loop with thinking on that drops them or alters their
signature); a tool's error goes back as a ``tool_result`` with ``is_error``; a cassette replays
the reasoning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from plait import Agent
from plait.errors import BadRequestError
from plait.models import Message, ModelRequest, ModelResponse, ModelSettings, Reasoning
from plait.testing import cassette
from plait_anthropic import AnthropicModel
from tests.servers.anthropic_server import (
    AnthropicServer,
    RedactedThinkingBlock,
    Reply,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
    signature_of,
)

THINKING = ModelSettings(extra={"thinking": {"type": "enabled", "budget_tokens": 1024}})
PLAN = "The user wants the weather in Paris; I should call get_weather."


def get_weather(city: str) -> str:
    """The weather in a city."""
    if city != "Paris":
        raise ValueError(f"no weather station in {city}")
    return "sunny, 21 C"


def thinking_then_tool(city: str = "Paris") -> Reply:
    return Reply(content=[ThinkingBlock(PLAN), ToolUseBlock("get_weather", {"city": city}, id="toolu_1")])


@pytest.mark.parametrize("streamed", [False, True])
async def test_thinking_blocks_go_back_with_the_tool_results(
    model: AnthropicModel, server: AnthropicServer, streamed: bool
) -> None:
    server.enqueue(thinking_then_tool(), Reply.text("It is sunny in Paris."))
    agent = Agent(name="Weather", model=model, tools=[get_weather], settings=THINKING)
    if streamed:
        text = "".join([e.content async for e in agent.arun("Weather in Paris?", stream=True)])
        assert text == "It is sunny in Paris."
    else:
        assert (await agent.arun("Weather in Paris?")).content == "It is sunny in Paris."
    assert len(server.requests) == 2  # the second was accepted: the thinking came back intact
    assistant = server.requests[1].json["messages"][1]
    assert assistant == {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": PLAN, "signature": signature_of(PLAN)},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        ],
    }
    result = server.requests[1].json["messages"][2]["content"][0]
    assert result == {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny, 21 C"}


async def test_the_reasoning_is_on_the_assistant_message(
    model: AnthropicModel, server: AnthropicServer
) -> None:
    server.enqueue(
        Reply(content=[ThinkingBlock(PLAN), RedactedThinkingBlock("ENCRYPTED=="), TextBlock("Sunny.")]),
        Reply(content=[ThinkingBlock(PLAN), RedactedThinkingBlock("ENCRYPTED=="), TextBlock("Sunny.")]),
    )
    request = ModelRequest([Message("user", "Weather?")], settings=THINKING)
    expected = [
        Reasoning(PLAN, signature=signature_of(PLAN), provider="anthropic"),
        Reasoning(redacted="ENCRYPTED==", provider="anthropic"),
    ]
    assert (await model.complete(request)).message.reasoning == expected
    streamed = [item async for item in model.stream(request)][-1]
    assert isinstance(streamed, ModelResponse)
    assert streamed.message.reasoning == expected
    assert streamed.message.content == "Sunny."


async def test_redacted_thinking_goes_back_as_it_came(model: AnthropicModel, server: AnthropicServer) -> None:
    server.enqueue(
        Reply(content=[RedactedThinkingBlock("ENCRYPTED=="), ToolUseBlock("get_weather", {"city": "Paris"})]),
        "Sunny.",
    )
    agent = Agent(name="Weather", model=model, tools=[get_weather], settings=THINKING)
    assert (await agent.arun("Weather?")).content == "Sunny."
    blocks = server.requests[1].json["messages"][1]["content"]
    assert blocks[0] == {"type": "redacted_thinking", "data": "ENCRYPTED=="}


async def test_dropped_or_altered_thinking_is_refused_by_the_server(
    model: AnthropicModel, server: AnthropicServer
) -> None:
    """The server's check is the API's: what the tests above rely on fails when it should."""
    call = Message("assistant", tool_calls=[], reasoning=[])
    from plait.models import ToolCall

    call.tool_calls.append(ToolCall("toolu_1", "get_weather", {"city": "Paris"}))
    answer = Message("tool", "sunny", tool_call_id="toolu_1")
    messages = [Message("user", "Weather?"), call, answer]
    with pytest.raises(BadRequestError, match="must start with a thinking block"):
        await model.complete(ModelRequest(messages, settings=THINKING))
    call.reasoning.append(Reasoning(PLAN, signature="forged", provider="anthropic"))
    with pytest.raises(BadRequestError, match="Invalid `signature`"):
        await model.complete(ModelRequest(messages, settings=THINKING))
    call.reasoning[0] = Reasoning(PLAN, signature=signature_of(PLAN), provider="other")  # not Anthropic's
    with pytest.raises(BadRequestError, match="must start with a thinking block"):
        await model.complete(ModelRequest(messages, settings=THINKING))


async def test_a_tool_error_is_a_tool_result_with_is_error(
    model: AnthropicModel, server: AnthropicServer
) -> None:
    server.enqueue(thinking_then_tool("Atlantis"), "There is no weather station there.")
    agent = Agent(name="Weather", model=model, tools=[get_weather], settings=THINKING)
    result = await agent.arun("Weather in Atlantis?")
    assert result.content == "There is no weather station there."
    sent = server.requests[1].json["messages"][2]["content"][0]
    assert sent == {
        "type": "tool_result",
        "tool_use_id": "toolu_1",
        "content": "Error: ValueError: no weather station in Atlantis",
        "is_error": True,
    }
    tool_message = next(m for m in result.messages if m.role == "tool")
    assert tool_message.is_error is True


async def test_a_cassette_replays_the_reasoning(server: AnthropicServer, tmp_path: Path) -> None:
    async def run(mode: str) -> Any:
        async with AnthropicModel(
            "claude-sonnet-4-5", api_key="k", base_url=server.base_url, timeout=10
        ) as model:
            agent = Agent(name="Weather", model=model, tools=[get_weather], settings=THINKING)
            async with cassette(path, mode=mode):
                return await agent.arun("Weather in Paris?")

    server.enqueue(thinking_then_tool(), "Sunny.")
    path = tmp_path / "thinking.jsonl"
    first = await run("once")
    again = await run("replay")  # a replay sends nothing
    assert len(server.requests) == 2
    assert again.content == first.content == "Sunny."
    assert [m.reasoning for m in again.messages] == [m.reasoning for m in first.messages]
    assert any(m.reasoning for m in again.messages)
