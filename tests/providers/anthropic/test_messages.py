"""Text answers, streamed and not, and how requests are put on the wire."""

from __future__ import annotations

import pytest

from plait.models import (
    Message,
    ModelRequest,
    ModelResponse,
    ModelSettings,
    ModelStreamEvent,
    TextDelta,
    ToolCallPart,
    ToolDefinition,
    Usage,
)
from plait_anthropic import AnthropicModel
from tests.servers.anthropic_server import AnthropicServer, Reply

from .conftest import API_KEY


def ask(*messages: Message, **options: object) -> ModelRequest:
    return ModelRequest(list(messages), **options)  # type: ignore[arg-type]


async def collect(model: AnthropicModel, request: ModelRequest) -> list[ModelStreamEvent]:
    return [item async for item in model.stream(request)]


async def test_complete_returns_text_usage_and_metadata(
    model: AnthropicModel, server: AnthropicServer
) -> None:
    server.enqueue(Reply.text("Hello there.", usage=(11, 3)))

    response = await model.complete(ask(Message("user", "Hi")))

    assert response.message == Message(role="assistant", content="Hello there.")
    assert response.usage == Usage(input_tokens=11, output_tokens=3, requests=1)
    assert response.finish_reason == "end_turn"
    assert response.response_id and response.response_id.startswith("msg_")
    assert response.model == "claude-sonnet-4-5"
    assert response.provider == "anthropic"
    sent = server.last_request
    assert sent.path == "/v1/messages"
    assert "stream" not in sent.json
    assert sent.json["messages"] == [{"role": "user", "content": "Hi"}]


async def test_stream_yields_deltas_then_one_response(model: AnthropicModel, server: AnthropicServer) -> None:
    server.enqueue(Reply.text("The quick brown fox", usage=(7, 4), stop_reason="max_tokens"))

    items = await collect(model, ask(Message("user", "Go")))

    deltas = [item for item in items if isinstance(item, TextDelta)]
    assert len(deltas) > 1, "the server streams word by word"
    assert "".join(d.text for d in deltas) == "The quick brown fox"
    assert isinstance(items[-1], ModelResponse)
    assert sum(isinstance(item, ModelResponse) for item in items) == 1
    final = items[-1]
    assert final.message.content == "The quick brown fox"
    assert final.usage == Usage(7, 4, 1)
    assert final.finish_reason == "max_tokens"
    assert final.provider == "anthropic"
    assert final.response_id and final.model == "claude-sonnet-4-5"
    assert server.last_request.json["stream"] is True


async def test_unscripted_server_echoes_the_last_user_message(model: AnthropicModel) -> None:
    response = await model.complete(ask(Message("user", "ping")))
    assert response.message.content == "Echo: ping"
    streamed = await collect(model, ask(Message("user", "pong")))
    assert isinstance(streamed[-1], ModelResponse) and streamed[-1].message.content == "Echo: pong"


async def test_handler_answers_from_the_request(model: AnthropicModel, server: AnthropicServer) -> None:
    server.handler = lambda body: f"{len(body['messages'])} messages, model {body['model']}"
    response = await model.complete(
        ask(Message("user", "a"), Message("assistant", "b"), Message("user", "c"))
    )
    assert response.message.content == "3 messages, model claude-sonnet-4-5"


async def test_system_messages_go_to_the_top_level_system_parameter(
    model: AnthropicModel, server: AnthropicServer
) -> None:
    await model.complete(
        ask(
            Message("system", "You are terse."),
            Message("system", "Answer in French."),
            Message("user", "Hello"),
        )
    )

    body = server.last_request.json
    assert body["system"] == "You are terse.\n\nAnswer in French."
    assert body["messages"] == [{"role": "user", "content": "Hello"}]


async def test_no_system_parameter_without_system_messages(
    model: AnthropicModel, server: AnthropicServer
) -> None:
    await model.complete(ask(Message("user", "Hello")))
    assert "system" not in server.last_request.json


async def test_sdk_headers_reach_the_server(server: AnthropicServer) -> None:
    async with AnthropicModel(
        "claude-haiku-4-5", api_key=API_KEY, base_url=server.base_url, default_headers={"x-team": "plait"}
    ) as model:
        await model.complete(ask(Message("user", "Hi")))

    headers = server.last_request.headers
    assert headers["x-api-key"] == API_KEY
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["x-team"] == "plait"
    assert headers["x-stainless-retry-count"] == "0"


async def test_settings_are_sent_request_over_model(server: AnthropicServer) -> None:
    model_settings = ModelSettings(temperature=0.1, top_p=0.5, max_tokens=300, extra={"top_k": 5})
    async with AnthropicModel(
        "claude-sonnet-4-5", api_key=API_KEY, base_url=server.base_url, settings=model_settings
    ) as model:
        await model.complete(
            ask(
                Message("user", "Hi"),
                settings=ModelSettings(
                    temperature=0.7, stop=("END",), seed=3, timeout=5, extra={"metadata": {}}
                ),
            )
        )

    body = server.last_request.json
    assert body["temperature"] == 0.7
    assert body["top_p"] == 0.5
    assert body["max_tokens"] == 300
    assert body["stop_sequences"] == ["END"]
    assert body["top_k"] == 5
    assert body["metadata"] == {}
    assert "seed" not in body and "timeout" not in body


@pytest.mark.parametrize(
    ("constructor", "model_setting", "request_setting", "expected"),
    [
        (4096, None, None, 4096),
        (2000, None, None, 2000),
        (2000, 1000, None, 1000),
        (2000, 1000, 500, 500),
    ],
)
async def test_max_tokens_is_always_sent(
    server: AnthropicServer,
    constructor: int,
    model_setting: int | None,
    request_setting: int | None,
    expected: int,
) -> None:
    async with AnthropicModel(
        "claude-sonnet-4-5",
        api_key=API_KEY,
        base_url=server.base_url,
        max_tokens=constructor,
        settings=ModelSettings(max_tokens=model_setting),
    ) as model:
        await model.complete(ask(Message("user", "Hi"), settings=ModelSettings(max_tokens=request_setting)))
    assert server.last_request.json["max_tokens"] == expected


async def test_tools_and_tool_choice_are_sent(model: AnthropicModel, server: AnthropicServer) -> None:
    weather = ToolDefinition(
        "get_weather",
        "Current weather of a city",
        {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    )
    await model.complete(ask(Message("user", "Weather?"), tools=[weather, ToolDefinition("noop")]))
    body = server.last_request.json
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather of a city",
            "input_schema": weather.parameters,
        },
        {"name": "noop", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in body

    for choice, expected in [
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        ("get_weather", {"type": "tool", "name": "get_weather"}),
    ]:
        await model.complete(ask(Message("user", "Weather?"), tools=[weather], tool_choice=choice))
        assert server.last_request.json["tool_choice"] == expected


async def test_stream_results_match_complete(model: AnthropicModel, server: AnthropicServer) -> None:
    server.enqueue(Reply.text("Same answer", usage=(2, 2)), Reply.text("Same answer", usage=(2, 2)))
    request = ask(Message("user", "q"))
    completed = await model.complete(request)
    streamed = (await collect(model, request))[-1]
    assert isinstance(streamed, ModelResponse)
    assert (streamed.message, streamed.usage, streamed.finish_reason) == (
        completed.message,
        completed.usage,
        completed.finish_reason,
    )
    assert not [item for item in await collect(model, request) if isinstance(item, ToolCallPart)]
