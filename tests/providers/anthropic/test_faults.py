"""A misbehaving server, byte by byte: a cut or garbled stream is never taken for a whole answer."""

from __future__ import annotations

import json

import pytest

from plait import Agent, Step, Workflow
from plait.errors import ModelConnectionError, ModelError
from plait.events import WorkflowCompletedEvent
from plait.models import Message, ModelRequest, ModelResponse, TextDelta, stream_with_retry
from plait_anthropic import AnthropicModel
from tests.servers.anthropic_server import AnthropicServer, Reply

REQUEST = ModelRequest(messages=[Message(role="user", content="Hi")])

ANSWER = "one two three four five six seven"

# The stream's events: message_start, content_block_start, ping, deltas..., so a
# cut after 5 is inside the text; with a close-delimited body a cut connection
# looks to the client exactly like the end of the body.
CUTS = {
    "chunked-clean-end": Reply.text(ANSWER, end_after=5),
    "close-delimited-end": Reply.text(ANSWER, end_after=5, framing="close"),
    "close-delimited-cut": Reply.text(ANSWER, drop_after=5, framing="close"),
    "before-message-stop": Reply.text(ANSWER, end_after=12, framing="close"),
}


@pytest.mark.parametrize("reply", CUTS.values(), ids=CUTS.keys())
async def test_a_stream_without_message_stop_is_a_connection_error(
    model: AnthropicModel, server: AnthropicServer, reply: Reply
) -> None:
    server.enqueue(reply)
    seen: list[str] = []
    with pytest.raises(ModelConnectionError, match="before message_stop") as caught:
        async for item in model.stream(REQUEST):
            assert isinstance(item, TextDelta), f"a cut stream yielded {item!r}"
            seen.append(item.text)
    assert caught.value.retryable and caught.value.provider == "anthropic"
    assert "claude-sonnet-4-5" in str(caught.value)
    assert "".join(seen) != ANSWER or reply.end_after == 12


async def test_a_cut_stream_is_retried_to_the_whole_answer(
    model: AnthropicModel, server: AnthropicServer
) -> None:
    server.enqueue(Reply.text(ANSWER, drop_after=5, framing="close"), Reply.text(ANSWER, framing="close"))
    restarts: list[int] = []
    items = [
        item async for item in stream_with_retry(model, REQUEST, on_retry=lambda n, e, d: restarts.append(n))
    ]
    assert restarts == [1]
    final = items[-1]
    assert isinstance(final, ModelResponse) and final.message.content == ANSWER


async def test_a_malformed_event_is_a_model_error_naming_provider_and_model(
    model: AnthropicModel, server: AnthropicServer
) -> None:
    server.enqueue(Reply.text(ANSWER, malformed_after=4))
    with pytest.raises(ModelError, match=r"Anthropic model 'claude-sonnet-4-5'.*not valid JSON") as caught:
        async for _ in model.stream(REQUEST):
            pass
    assert caught.value.provider == "anthropic"
    assert isinstance(caught.value.__cause__, json.JSONDecodeError)


async def test_a_malformed_body_is_a_model_error_naming_provider_and_model(
    model: AnthropicModel, server: AnthropicServer
) -> None:
    server.enqueue(Reply.text(ANSWER, malformed_after=40))
    with pytest.raises(ModelError, match=r"Anthropic model 'claude-sonnet-4-5'.*not valid JSON") as caught:
        await model.complete(REQUEST)
    assert caught.value.provider == "anthropic"


CITIES: list[str] = []


def get_weather(city: str) -> str:
    """Current weather in a city."""
    CITIES.append(city)
    return f"Sunny in {city}"


async def test_tool_input_cut_by_max_tokens_goes_back_to_the_model(server: AnthropicServer) -> None:
    CITIES.clear()
    server.enqueue(
        Reply.tool_use("get_weather", '{"city": "Par', id="toolu_1", stop_reason="max_tokens"),
        Reply.tool_use("get_weather", {"city": "Paris"}, id="toolu_2"),
        "It is sunny in Paris.",
    )
    async with AnthropicModel("claude-sonnet-4-5", api_key="sk-ant-k", base_url=server.base_url) as model:
        workflow = Workflow(
            name="w", steps=[Step(name="ask", agent=Agent(name="a", model=model, tools=[get_weather]))]
        )
        events = [event async for event in workflow.arun("Weather in Paris?", stream=True)]
    last = events[-1]
    assert isinstance(last, WorkflowCompletedEvent) and last.content == "It is sunny in Paris."
    assert CITIES == ["Paris"]
    second = server.requests[1].json["messages"]
    assert second[-2]["content"][-1] == {
        "type": "tool_use",
        "id": "toolu_1",
        "name": "get_weather",
        "input": {},
    }
    result = second[-1]["content"][0]
    assert result["type"] == "tool_result" and result["tool_use_id"] == "toolu_1"
    text = result["content"] if isinstance(result["content"], str) else result["content"][0]["text"]
    assert "the arguments for tool 'get_weather' are not valid JSON" in text
    assert '{"city": "Par' in text
