"""A misbehaving server, byte by byte, through LiteLLM on both wire protocols: a cut or garbled
answer is never taken for a whole one, and only real connection failures are connection errors."""

from __future__ import annotations

import pytest

from plait import Agent, Step, Workflow
from plait.errors import ModelConnectionError, ModelError, ServerError
from plait.events import WorkflowCompletedEvent
from plait.models import Message, ModelRequest, TextDelta
from plait_litellm import LiteLLMModel
from tests.servers import anthropic_server as anthropic
from tests.servers.anthropic_server import AnthropicServer
from tests.servers.openai_server import OpenAIServer, Reply, ToolCallReply

from .conftest import API_KEY, LITELLM_WARNINGS

pytestmark = LITELLM_WARNINGS

REQUEST = ModelRequest(messages=[Message(role="user", content="Hi")])

ANSWER = "one two three four five six seven"

OPENAI_CUTS = {
    "chunked-clean-end": Reply(ANSWER, end_after=3),
    "close-delimited-end": Reply(ANSWER, end_after=3, framing="close"),
    "close-delimited-cut": Reply(ANSWER, drop_after=3, framing="close"),
    "tool-call-cut": Reply(tool_calls=[ToolCallReply("get_weather", {"city": "Paris"})], end_after=4),
}
ANTHROPIC_CUTS = {
    "chunked-clean-end": anthropic.Reply.text(ANSWER, end_after=5),
    "close-delimited-end": anthropic.Reply.text(ANSWER, end_after=5, framing="close"),
    "close-delimited-cut": anthropic.Reply.text(ANSWER, drop_after=5, framing="close"),
}


async def assert_cut(model: LiteLLMModel) -> None:
    seen: list[str] = []
    with pytest.raises(ModelConnectionError) as caught:
        async for item in model.stream(REQUEST):
            assert isinstance(item, TextDelta), f"a cut stream yielded {item!r}"
            seen.append(item.text)
    assert caught.value.retryable and caught.value.provider == "litellm"
    assert model.model in str(caught.value)
    assert "".join(seen) != ANSWER


@pytest.mark.parametrize("reply", OPENAI_CUTS.values(), ids=OPENAI_CUTS.keys())
async def test_openai_protocol_stream_without_finish_reason_is_a_connection_error(
    openai_model: LiteLLMModel, openai_server: OpenAIServer, reply: Reply
) -> None:
    openai_server.enqueue(reply)
    await assert_cut(openai_model)


@pytest.mark.parametrize("reply", ANTHROPIC_CUTS.values(), ids=ANTHROPIC_CUTS.keys())
async def test_anthropic_protocol_stream_without_message_stop_is_a_connection_error(
    anthropic_model: LiteLLMModel, anthropic_server: AnthropicServer, reply: anthropic.Reply
) -> None:
    anthropic_server.enqueue(reply)
    await assert_cut(anthropic_model)


@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
async def test_empty_choices_are_a_provider_error(
    openai_model: LiteLLMModel, openai_server: OpenAIServer, streaming: bool
) -> None:
    openai_server.enqueue(Reply(ANSWER, no_choices=True))
    with pytest.raises(ModelError, match="openai/gpt-4o-mini") as caught:
        if streaming:
            async for _ in openai_model.stream(REQUEST):
                pass
        else:
            await openai_model.complete(REQUEST)
    # streaming: LiteLLM itself reports a stream that never finished, a connection error
    assert type(caught.value) is (ModelConnectionError if streaming else ServerError)
    assert caught.value.provider == "litellm"


async def test_a_malformed_chunk_is_a_model_error_not_a_connection_error(
    openai_model: LiteLLMModel, openai_server: OpenAIServer
) -> None:
    openai_server.enqueue(Reply(ANSWER, malformed_after=2))
    with pytest.raises(
        ModelError, match=r"openai/gpt-4o-mini.*JSONDecodeError: Unterminated string"
    ) as caught:
        async for _ in openai_model.stream(REQUEST):
            pass
    assert not isinstance(caught.value, ModelConnectionError)
    assert caught.value.provider == "litellm"


async def test_any_other_failure_inside_litellm_keeps_its_type_and_message(
    openai_server: OpenAIServer,
) -> None:
    # A bad option makes litellm itself raise TypeError, which it wraps as an
    # "APIConnectionError": nothing was wrong with any connection.
    async with LiteLLMModel(
        "openai/gpt-4o-mini", base_url=openai_server.base_url, api_key=API_KEY, extra_headers=5
    ) as model:
        with pytest.raises(ModelError) as caught:
            await model.complete(REQUEST)
    error = caught.value
    assert type(error) is ModelError and not error.retryable
    assert "TypeError: 'int' object is not iterable" in str(error)
    assert "connection" not in str(error).lower()
    assert isinstance(error.__cause__, TypeError)
    assert openai_server.chat_requests == []


async def test_real_connection_failures_stay_connection_errors(openai_server: OpenAIServer) -> None:
    openai_server.enqueue(Reply(ANSWER, drop_after=3))
    async with LiteLLMModel(
        "openai/gpt-4o-mini", base_url=openai_server.base_url, api_key=API_KEY, timeout=10
    ) as model:
        with pytest.raises(ModelConnectionError):
            async for _ in model.stream(REQUEST):
                pass
    async with LiteLLMModel(
        "openai/gpt-4o-mini", base_url="http://127.0.0.1:9/v1", api_key=API_KEY, timeout=5
    ) as model:
        with pytest.raises(ModelConnectionError):
            await model.complete(REQUEST)


CITIES: list[str] = []


def get_weather(city: str) -> str:
    """Current weather in a city."""
    CITIES.append(city)
    return f"Sunny in {city}"


@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
async def test_invalid_tool_arguments_go_back_to_the_model(
    openai_model: LiteLLMModel, openai_server: OpenAIServer, streaming: bool
) -> None:
    CITIES.clear()
    openai_server.enqueue(
        Reply(tool_calls=[ToolCallReply("get_weather", '{"city": "Par', id="call_1")]),
        Reply(tool_calls=[ToolCallReply("get_weather", {"city": "Paris"}, id="call_2")]),
        "It is sunny in Paris.",
    )
    workflow = Workflow(
        name="w", steps=[Step(name="ask", agent=Agent(name="a", model=openai_model, tools=[get_weather]))]
    )
    if streaming:
        last = [event async for event in workflow.arun("Weather in Paris?", stream=True)][-1]
        assert isinstance(last, WorkflowCompletedEvent)
        content = last.content
    else:
        content = (await workflow.arun("Weather in Paris?")).content
    assert content == "It is sunny in Paris."
    assert CITIES == ["Paris"]
    tool_message = openai_server.chat_requests[1]["messages"][-1]
    assert tool_message["role"] == "tool" and tool_message["tool_call_id"] == "call_1"
    assert "the arguments for tool 'get_weather' are not valid JSON" in tool_message["content"]
