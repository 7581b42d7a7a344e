"""OpenAIModel against a local OpenAI server: text, streaming, tool calls, structured output, settings."""

from __future__ import annotations

import json

from pydantic import BaseModel

from plait.models import (
    Message,
    ModelRequest,
    ModelResponse,
    ModelSettings,
    ModelStreamEvent,
    TextDelta,
    ToolCall,
    ToolCallPart,
    ToolDefinition,
    Usage,
)
from plait_openai import OpenAIModel
from tests.servers.openai_server import OpenAIServer, Reply, ToolCallReply


def ask(text: str, **options: object) -> ModelRequest:
    return ModelRequest(messages=[Message(role="user", content=text)], **options)  # type: ignore[arg-type]


async def collect(model: OpenAIModel, request: ModelRequest) -> list[ModelStreamEvent]:
    return [item async for item in model.stream(request)]


WEATHER = ToolDefinition(
    name="get_weather",
    description="Current weather in a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


async def test_complete_returns_text_usage_and_metadata(
    model: OpenAIModel, openai_server: OpenAIServer
) -> None:
    openai_server.enqueue(Reply("Hello there!", usage=(12, 3)))

    response = await model.complete(ask("Hi"))

    assert response.message == Message(role="assistant", content="Hello there!")
    assert response.usage == Usage(input_tokens=12, output_tokens=3, requests=1)
    assert response.finish_reason == "stop"
    assert response.response_id and response.response_id.startswith("chatcmpl-")
    assert (response.model, response.provider) == ("gpt-4o-mini", "openai")
    sent = openai_server.last_request
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer test-key"
    assert sent.json["model"] == "gpt-4o-mini"
    assert sent.json["messages"] == [{"role": "user", "content": "Hi"}]
    assert not sent.json.get("stream")


async def test_stream_yields_deltas_then_one_response(
    model: OpenAIModel, openai_server: OpenAIServer
) -> None:
    openai_server.enqueue(Reply("Streaming works, piece by piece.", usage=(7, 6), chunk_size=5))

    items = await collect(model, ask("Stream please"))

    deltas = [item for item in items if isinstance(item, TextDelta)]
    assert len(deltas) > 3
    assert "".join(d.text for d in deltas) == "Streaming works, piece by piece."
    assert isinstance(items[-1], ModelResponse)
    assert sum(isinstance(item, ModelResponse) for item in items) == 1
    response = items[-1]
    assert response.message == Message(role="assistant", content="Streaming works, piece by piece.")
    assert response.usage == Usage(input_tokens=7, output_tokens=6, requests=1)
    assert response.finish_reason == "stop"
    assert response.response_id and response.provider == "openai"
    body = openai_server.last_request.json
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


async def test_unscripted_server_echoes_the_last_user_message(model: OpenAIModel) -> None:
    request = ModelRequest(
        messages=[
            Message(role="system", content="Be brief."),
            Message(role="user", content="first"),
            Message(role="assistant", content="ok"),
            Message(role="user", content="second"),
        ]
    )
    assert (await model.complete(request)).message.content == "Echo: second"
    streamed = await collect(model, request)
    assert isinstance(streamed[-1], ModelResponse)
    assert streamed[-1].message.content == "Echo: second"


async def test_streamed_tool_call_fragments_are_reassembled(
    model: OpenAIModel, openai_server: OpenAIServer
) -> None:
    openai_server.enqueue(
        Reply(
            tool_calls=[
                ToolCallReply("get_weather", {"city": "Paris", "unit": "celsius"}, id="call_weather"),
                ToolCallReply("get_time", {"timezone": "Europe/Paris"}, id="call_time"),
            ],
            chunk_size=4,  # arguments arrive in many fragments
            usage=(20, 9),
        )
    )

    items = await collect(model, ask("Weather and time in Paris?", tools=[WEATHER]))

    parts = [item.call for item in items if isinstance(item, ToolCallPart)]
    assert parts == [
        ToolCall(id="call_weather", name="get_weather", arguments={"city": "Paris", "unit": "celsius"}),
        ToolCall(id="call_time", name="get_time", arguments={"timezone": "Europe/Paris"}),
    ]
    assert not any(isinstance(item, TextDelta) for item in items)
    response = items[-1]
    assert isinstance(response, ModelResponse)
    assert response.message.tool_calls == parts
    assert response.message.content is None
    assert response.finish_reason == "tool_calls"
    assert response.usage == Usage(input_tokens=20, output_tokens=9, requests=1)
    assert openai_server.last_request.json["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather in a city.",
                "parameters": WEATHER.parameters,
            },
        }
    ]


async def test_tool_result_round_trip_is_serialized(model: OpenAIModel, openai_server: OpenAIServer) -> None:
    openai_server.enqueue(Reply(tool_calls=[ToolCallReply("get_weather", {"city": "Paris"}, id="call_1")]))
    first = await model.complete(ask("Weather in Paris?", tools=[WEATHER]))
    assert first.message.tool_calls == [
        ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"})
    ]

    openai_server.enqueue(Reply("It is sunny in Paris."))
    history = [
        Message(role="user", content="Weather in Paris?"),
        first.message,
        Message(role="tool", content='{"sky": "sunny"}', tool_call_id="call_1", name="get_weather"),
    ]
    second = await model.complete(ModelRequest(messages=history, tools=[WEATHER]))

    assert second.message.content == "It is sunny in Paris."
    user, assistant, tool = openai_server.last_request.json["messages"]
    assert user == {"role": "user", "content": "Weather in Paris?"}
    assert assistant["role"] == "assistant"
    assert assistant["content"] is None
    [call] = assistant["tool_calls"]
    assert call["id"] == "call_1" and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert isinstance(call["function"]["arguments"], str)  # JSON text on the wire, not an object
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert tool == {"role": "tool", "tool_call_id": "call_1", "content": '{"sky": "sunny"}'}


async def test_tool_choice(model: OpenAIModel, openai_server: OpenAIServer) -> None:
    await model.complete(ask("x", tools=[WEATHER], tool_choice="required"))
    assert openai_server.last_request.json["tool_choice"] == "required"
    await model.complete(ask("x", tools=[WEATHER], tool_choice="get_weather"))
    assert openai_server.last_request.json["tool_choice"] == {
        "type": "function",
        "function": {"name": "get_weather"},
    }


class Address(BaseModel):
    """Where someone lives."""

    city: str
    postcode: str | None = None


class Person(BaseModel):
    name: str
    age: int
    home: Address
    nicknames: list[str] = []


async def test_structured_output_sends_a_strict_json_schema(
    model: OpenAIModel, openai_server: OpenAIServer
) -> None:
    response = await model.complete(ask("Describe Ada", output_schema=Person))

    response_format = openai_server.last_request.json["response_format"]
    assert response_format["type"] == "json_schema"
    spec = response_format["json_schema"]
    assert spec["name"] == "Person" and spec["strict"] is True
    schema = spec["schema"]
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["name", "age", "home", "nicknames"]
    address = schema["$defs"]["Address"]
    assert address["additionalProperties"] is False
    assert address["required"] == ["city", "postcode"]  # optional fields stay nullable, not omittable
    assert "default" not in address["properties"]["postcode"]
    # The unscripted server answers with JSON fitting the schema; the text is returned as is.
    assert Person.model_validate_json(response.message.content or "").home.city == "Describe Ada"


def test_strict_schema_inlines_refs_with_siblings() -> None:
    from plait_openai._convert import strict_json_schema

    schema = {
        "type": "object",
        "properties": {"home": {"$ref": "#/$defs/Address", "description": "Where"}},
        "$defs": {"Address": {"type": "object", "properties": {"city": {"type": "string"}}}},
    }
    strict = strict_json_schema(schema)
    assert strict["properties"]["home"] == {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "description": "Where",
        "additionalProperties": False,
        "required": ["city"],
    }
    assert "additionalProperties" not in schema  # the input is left alone


async def test_settings_merge_model_defaults_under_request_settings(
    openai_server: OpenAIServer,
) -> None:
    defaults = ModelSettings(temperature=0.2, max_tokens=100, seed=7, extra={"user": "default-user"})
    async with OpenAIModel(
        "gpt-4o-mini", base_url=openai_server.base_url, api_key="k", settings=defaults
    ) as model:
        settings = ModelSettings(
            temperature=0.7, top_p=0.9, stop=("END",), extra={"user": "u-1", "logprobs": True}
        )
        await model.complete(ask("x", settings=settings))
        await collect(model, ask("y", settings=settings))

    for body in openai_server.chat_requests:
        assert body["temperature"] == 0.7
        assert body["top_p"] == 0.9
        assert body["max_tokens"] == 100  # OpenAI-compatible servers get max_tokens
        assert body["seed"] == 7
        assert body["stop"] == ["END"]
        assert body["user"] == "u-1"
        assert body["logprobs"] is True


async def test_client_options_reach_the_server(openai_server: OpenAIServer) -> None:
    async with OpenAIModel(
        "gpt-4o",
        base_url=openai_server.base_url,
        api_key="sk-abc",
        organization="org-plait",
        default_headers={"X-Trace": "t-1"},
    ) as model:
        response = await model.complete(ask("x"))
    assert response.model == "gpt-4o"
    headers = openai_server.last_request.headers
    assert headers["authorization"] == "Bearer sk-abc"
    assert headers["openai-organization"] == "org-plait"
    assert headers["x-trace"] == "t-1"
    assert headers.get("x-stainless-retry-count", "0") == "0"


async def test_stop_early_closes_cleanly(model: OpenAIModel, openai_server: OpenAIServer) -> None:
    """A consumer that stops reading mid-stream leaves no open response behind (no ResourceWarning)."""
    openai_server.enqueue(Reply("many small pieces of text", chunk_size=2))
    stream = model.stream(ask("x"))
    first = await anext(stream)
    assert isinstance(first, TextDelta)
    await stream.aclose()  # type: ignore[attr-defined]
    # The model still works afterwards.
    assert (await model.complete(ask("again"))).message.content == "Echo: again"
