"""Tool calls: streamed as JSON fragments, reassembled, and answered with tool_result blocks."""

from __future__ import annotations

from plait.models import (
    Message,
    ModelRequest,
    ModelResponse,
    TextDelta,
    ToolCall,
    ToolCallPart,
    ToolDefinition,
)
from plait_anthropic import AnthropicModel
from tests.servers.anthropic_server import AnthropicServer, Reply, TextBlock, ToolUseBlock

WEATHER = ToolDefinition("get_weather", "Weather of a city", {"type": "object", "properties": {}})
ARGUMENTS = {"city": "Paris", "units": "celsius", "days": [1, 2, 3], "detail": {"wind": True}}


async def test_streamed_tool_call_is_reassembled_from_fragments(
    model: AnthropicModel, server: AnthropicServer
) -> None:
    server.enqueue(Reply.tool_use("get_weather", ARGUMENTS, id="toolu_1", text="Let me check."))

    items = [item async for item in model.stream(ModelRequest([Message("user", "Paris?")], tools=[WEATHER]))]

    assert "".join(i.text for i in items if isinstance(i, TextDelta)) == "Let me check."
    parts = [i for i in items if isinstance(i, ToolCallPart)]
    assert parts == [ToolCallPart(ToolCall("toolu_1", "get_weather", ARGUMENTS))]
    final = items[-1]
    assert isinstance(final, ModelResponse)
    assert final.message == Message(
        role="assistant", content="Let me check.", tool_calls=[ToolCall("toolu_1", "get_weather", ARGUMENTS)]
    )
    assert final.finish_reason == "tool_use"
    # The tool call is yielded once its block is complete, before the final response.
    assert items.index(parts[0]) < len(items) - 1


async def test_complete_returns_tool_calls(model: AnthropicModel, server: AnthropicServer) -> None:
    server.enqueue(Reply.tool_use("get_weather", ARGUMENTS, id="toolu_9"))

    response = await model.complete(ModelRequest([Message("user", "Paris?")], tools=[WEATHER]))

    assert response.message.content is None
    assert response.message.tool_calls == [ToolCall("toolu_9", "get_weather", ARGUMENTS)]
    assert response.finish_reason == "tool_use"


async def test_several_tool_calls_and_empty_arguments(model: AnthropicModel, server: AnthropicServer) -> None:
    server.enqueue(
        Reply(
            content=[
                ToolUseBlock("get_weather", {"city": "Oslo"}, id="toolu_a"),
                ToolUseBlock("get_time", {}, id="toolu_b"),
            ]
        )
    )

    items = [item async for item in model.stream(ModelRequest([Message("user", "Oslo?")], tools=[WEATHER]))]

    assert [i.call for i in items if isinstance(i, ToolCallPart)] == [
        ToolCall("toolu_a", "get_weather", {"city": "Oslo"}),
        ToolCall("toolu_b", "get_time", {}),
    ]


async def test_tool_results_are_sent_as_tool_result_blocks(
    model: AnthropicModel, server: AnthropicServer
) -> None:
    calls = [ToolCall("toolu_a", "get_weather", {"city": "Oslo"}), ToolCall("toolu_b", "get_time", {})]
    conversation = [
        Message("system", "Use tools."),
        Message("user", "Weather and time in Oslo?"),
        Message("assistant", "Checking.", tool_calls=calls),
        Message("tool", "cloudy, 4 C", tool_call_id="toolu_a", name="get_weather"),
        Message("tool", "10:42", tool_call_id="toolu_b", name="get_time"),
    ]
    server.enqueue("Cloudy and 4 C at 10:42.")

    items = [item async for item in model.stream(ModelRequest(conversation, tools=[WEATHER]))]

    assert isinstance(items[-1], ModelResponse)
    assert items[-1].message.content == "Cloudy and 4 C at 10:42."
    body = server.last_request.json
    assert body["system"] == "Use tools."
    assert body["messages"] == [
        {"role": "user", "content": "Weather and time in Oslo?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Oslo"}},
                {"type": "tool_use", "id": "toolu_b", "name": "get_time", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_a", "content": "cloudy, 4 C"},
                {"type": "tool_result", "tool_use_id": "toolu_b", "content": "10:42"},
            ],
        },
    ]


async def test_a_user_message_after_tool_results_joins_their_turn(
    model: AnthropicModel, server: AnthropicServer
) -> None:
    call = ToolCall("toolu_a", "get_weather", {"city": "Oslo"})
    await model.complete(
        ModelRequest(
            [
                Message("user", "Oslo?"),
                Message("assistant", None, tool_calls=[call]),
                Message("tool", "cloudy", tool_call_id="toolu_a"),
                Message("user", "And tomorrow?"),
            ]
        )
    )

    messages = server.last_request.json["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Oslo"}}],
    }
    assert messages[2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_a", "content": "cloudy"},
            {"type": "text", "text": "And tomorrow?"},
        ],
    }


async def test_text_after_a_tool_call_in_one_reply(model: AnthropicModel, server: AnthropicServer) -> None:
    server.enqueue(Reply(content=[TextBlock("A"), ToolUseBlock("noop", {}, id="toolu_x"), TextBlock("B")]))

    response = await model.complete(ModelRequest([Message("user", "go")]))

    assert response.message.content == "AB"
    assert response.message.tool_calls == [ToolCall("toolu_x", "noop", {})]
