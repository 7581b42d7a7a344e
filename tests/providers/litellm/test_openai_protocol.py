"""LiteLLMModel with ``openai/<model>``: real litellm over HTTP to the local OpenAI-protocol server."""

from __future__ import annotations

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
from plait_litellm import LiteLLMModel
from tests.servers.openai_server import OpenAIServer, Reply, ToolCallReply

from .conftest import API_KEY, LITELLM_WARNINGS

pytestmark = LITELLM_WARNINGS


def ask(text: str, **options: object) -> ModelRequest:
    return ModelRequest(messages=[Message(role="user", content=text)], **options)  # type: ignore[arg-type]


async def collect(model: LiteLLMModel, request: ModelRequest) -> list[ModelStreamEvent]:
    return [item async for item in model.stream(request)]


WEATHER = ToolDefinition(
    name="get_weather",
    description="Current weather in a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


async def test_complete_returns_text_usage_and_metadata(
    openai_model: LiteLLMModel, openai_server: OpenAIServer
) -> None:
    openai_server.enqueue(Reply("Hello there!", usage=(12, 3)))

    response = await openai_model.complete(ask("Hi"))

    assert response.message == Message(role="assistant", content="Hello there!")
    assert response.usage == Usage(input_tokens=12, output_tokens=3, requests=1)
    assert response.finish_reason == "stop"
    assert response.response_id and response.response_id.startswith("chatcmpl-")
    assert (response.model, response.provider) == ("gpt-4o-mini", "litellm")
    sent = openai_server.last_request
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.json["model"] == "gpt-4o-mini"
    assert sent.json["messages"] == [{"role": "user", "content": "Hi"}]
    assert not sent.json.get("stream")
    assert len(openai_server.chat_requests) == 1


async def test_stream_yields_deltas_then_one_response(
    openai_model: LiteLLMModel, openai_server: OpenAIServer
) -> None:
    openai_server.enqueue(Reply("The quick brown fox", usage=(7, 4), chunk_size=5))

    items = await collect(openai_model, ask("Tell me"))

    deltas = [item.text for item in items if isinstance(item, TextDelta)]
    assert len(deltas) > 1
    assert "".join(deltas) == "The quick brown fox"
    assert isinstance(items[-1], ModelResponse)
    assert sum(isinstance(item, ModelResponse) for item in items) == 1
    response = items[-1]
    assert response.message.content == "The quick brown fox"
    assert response.usage == Usage(input_tokens=7, output_tokens=4, requests=1)
    assert response.finish_reason == "stop"
    assert response.response_id and response.response_id.startswith("chatcmpl-")
    assert (response.model, response.provider) == ("gpt-4o-mini", "litellm")
    sent = openai_server.last_request.json
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}


async def test_streamed_tool_calls_are_reassembled(
    openai_model: LiteLLMModel, openai_server: OpenAIServer
) -> None:
    openai_server.enqueue(
        Reply(
            "Checking.",
            tool_calls=[
                ToolCallReply("get_weather", {"city": "Paris"}, id="call_a"),
                ToolCallReply("get_weather", {"city": "Rome, Italy"}, id="call_b"),
            ],
            chunk_size=3,  # arguments arrive in many fragments
        )
    )

    items = await collect(openai_model, ask("Weather in Paris and Rome?", tools=[WEATHER]))

    calls = [item.call for item in items if isinstance(item, ToolCallPart)]
    assert calls == [
        ToolCall("call_a", "get_weather", {"city": "Paris"}),
        ToolCall("call_b", "get_weather", {"city": "Rome, Italy"}),
    ]
    final = items[-1]
    assert isinstance(final, ModelResponse)
    assert final.message.tool_calls == calls
    assert final.message.content == "Checking."
    assert final.finish_reason == "tool_calls"
    sent = openai_server.last_request.json
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather in a city.",
                "parameters": WEATHER.parameters,
            },
        }
    ]


async def test_complete_returns_tool_calls(openai_model: LiteLLMModel, openai_server: OpenAIServer) -> None:
    openai_server.enqueue(Reply(tool_calls=[ToolCallReply("get_weather", {"city": "Oslo"}, id="call_1")]))

    response = await openai_model.complete(ask("Oslo?", tools=[WEATHER], tool_choice="get_weather"))

    assert response.message.tool_calls == [ToolCall("call_1", "get_weather", {"city": "Oslo"})]
    assert response.finish_reason == "tool_calls"
    assert openai_server.last_request.json["tool_choice"] == {
        "type": "function",
        "function": {"name": "get_weather"},
    }


async def test_tool_results_go_back_in_openai_format(
    openai_model: LiteLLMModel, openai_server: OpenAIServer
) -> None:
    call = ToolCall("call_1", "get_weather", {"city": "Oslo"})
    request = ModelRequest(
        messages=[
            Message("system", "Be brief."),
            Message("user", "Oslo?"),
            Message("assistant", None, tool_calls=[call]),
            Message("tool", "cloudy, 4 C", tool_call_id="call_1"),
        ],
        tools=[WEATHER],
    )

    response = await openai_model.complete(request)

    assert response.message.content == "Echo: Oslo?"
    assert openai_server.last_request.json["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Oslo?"},
        {
            "role": "assistant",  # litellm leaves out the empty content
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "cloudy, 4 C"},
    ]


async def test_settings_and_options_reach_the_request(openai_server: OpenAIServer) -> None:
    model = LiteLLMModel(
        "openai/gpt-4o-mini",
        base_url=openai_server.base_url,
        api_key=API_KEY,
        settings=ModelSettings(temperature=0.1, max_tokens=50, extra={"user": "from-model"}),
        extra_headers={"X-Trace": "abc"},  # a litellm option, passed with every call
    )
    async with model:
        await model.complete(
            ask("Hi", settings=ModelSettings(temperature=0.7, top_p=0.9, stop=("END",), seed=3))
        )

    sent = openai_server.last_request
    assert sent.json["temperature"] == 0.7  # the request's own wins
    assert sent.json["max_tokens"] == 50
    assert (sent.json["top_p"], sent.json["stop"], sent.json["seed"]) == (0.9, ["END"], 3)
    assert sent.json["user"] == "from-model"
    assert sent.headers["x-trace"] == "abc"


class City(BaseModel):
    name: str
    population: int


async def test_structured_output_is_native_when_litellm_says_so(
    openai_model: LiteLLMModel, openai_server: OpenAIServer
) -> None:
    assert openai_model.supports_structured_output is True  # gpt-4o-mini in LiteLLM's model map

    response = await openai_model.complete(ask("Oslo", output_schema=City))

    response_format = openai_server.last_request.json["response_format"]
    assert response_format["type"] == "json_schema"
    assert set(response_format["json_schema"]["schema"]["properties"]) == {"name", "population"}
    assert City.model_validate_json(response.message.content or "") == City(name="Oslo", population=0)


def test_structured_output_is_not_claimed_for_unknown_models() -> None:
    assert LiteLLMModel("ollama/some-local-model").supports_structured_output is False
