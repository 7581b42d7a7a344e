"""LiteLLMModel with ``anthropic/<model>``: litellm translates to the Messages API of the local server."""

from __future__ import annotations

from plait.models import (
    Message,
    ModelRequest,
    ModelResponse,
    TextDelta,
    ToolCall,
    ToolCallPart,
    ToolDefinition,
    Usage,
)
from plait_litellm import LiteLLMModel
from tests.servers.anthropic_server import AnthropicServer, Reply, TextBlock, ToolUseBlock

from .conftest import API_KEY, LITELLM_WARNINGS

pytestmark = LITELLM_WARNINGS

WEATHER = ToolDefinition(
    name="get_weather",
    description="Current weather in a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def ask(text: str, **options: object) -> ModelRequest:
    return ModelRequest(messages=[Message(role="user", content=text)], **options)  # type: ignore[arg-type]


async def test_complete_speaks_the_messages_api(
    anthropic_model: LiteLLMModel, anthropic_server: AnthropicServer
) -> None:
    anthropic_server.enqueue(Reply.text("Hello from Claude", usage=(11, 4)))

    response = await anthropic_model.complete(
        ModelRequest([Message("system", "Be brief."), Message("user", "Hi")])
    )

    assert response.message == Message(role="assistant", content="Hello from Claude")
    assert response.usage == Usage(input_tokens=11, output_tokens=4, requests=1)
    assert response.finish_reason == "stop"
    assert response.response_id
    assert (response.model, response.provider) == ("claude-sonnet-4-5", "litellm")
    sent = anthropic_server.last_request
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == API_KEY
    assert sent.json["model"] == "claude-sonnet-4-5"
    assert sent.json["system"] in ("Be brief.", [{"type": "text", "text": "Be brief."}])
    assert [m["role"] for m in sent.json["messages"]] == ["user"]


async def test_stream_yields_deltas_usage_and_one_response(
    anthropic_model: LiteLLMModel, anthropic_server: AnthropicServer
) -> None:
    anthropic_server.enqueue(Reply.text("The quick brown fox jumps", usage=(9, 5)))

    items = [item async for item in anthropic_model.stream(ask("Tell me"))]

    deltas = [item.text for item in items if isinstance(item, TextDelta)]
    assert len(deltas) > 1
    assert "".join(deltas) == "The quick brown fox jumps"
    assert sum(isinstance(item, ModelResponse) for item in items) == 1
    final = items[-1]
    assert isinstance(final, ModelResponse)
    assert final.message.content == "The quick brown fox jumps"
    assert final.usage == Usage(input_tokens=9, output_tokens=5, requests=1)
    assert final.finish_reason == "stop"
    assert (final.model, final.provider) == ("claude-sonnet-4-5", "litellm")
    assert anthropic_server.last_request.json["stream"] is True


async def test_streamed_tool_use_is_reassembled(
    anthropic_model: LiteLLMModel, anthropic_server: AnthropicServer
) -> None:
    anthropic_server.enqueue(
        Reply(
            content=[
                TextBlock("Checking."),
                ToolUseBlock("get_weather", {"city": "Paris"}, id="toolu_a"),
                ToolUseBlock("get_weather", {"city": "Rome, Italy"}, id="toolu_b"),
            ]
        )
    )

    items = [item async for item in anthropic_model.stream(ask("Paris and Rome?", tools=[WEATHER]))]

    calls = [item.call for item in items if isinstance(item, ToolCallPart)]
    assert calls == [
        ToolCall("toolu_a", "get_weather", {"city": "Paris"}),
        ToolCall("toolu_b", "get_weather", {"city": "Rome, Italy"}),
    ]
    final = items[-1]
    assert isinstance(final, ModelResponse)
    assert final.message.tool_calls == calls
    assert final.message.content == "Checking."
    assert final.finish_reason == "tool_calls"
    [tool] = anthropic_server.last_request.json["tools"]
    assert (tool["name"], tool["input_schema"]) == ("get_weather", WEATHER.parameters)


async def test_tool_round_trip_without_streaming(
    anthropic_model: LiteLLMModel, anthropic_server: AnthropicServer
) -> None:
    anthropic_server.enqueue(Reply.tool_use("get_weather", {"city": "Oslo"}, id="toolu_1"), "Cloudy in Oslo.")

    first = await anthropic_model.complete(ask("Oslo?", tools=[WEATHER]))
    assert first.message.tool_calls == [ToolCall("toolu_1", "get_weather", {"city": "Oslo"})]
    assert first.finish_reason == "tool_calls"

    second = await anthropic_model.complete(
        ModelRequest(
            [
                Message("user", "Oslo?"),
                first.message,
                Message("tool", "cloudy, 4 C", tool_call_id="toolu_1"),
            ],
            tools=[WEATHER],
        )
    )

    assert second.message.content == "Cloudy in Oslo."
    # The server (like the real API) rejects a tool_use not answered by a tool_result.
    answer = anthropic_server.last_request.json["messages"][-1]
    assert answer["role"] == "user"
    assert answer["content"][0]["type"] == "tool_result"
    assert answer["content"][0]["tool_use_id"] == "toolu_1"
