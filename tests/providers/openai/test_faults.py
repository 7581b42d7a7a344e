"""A misbehaving server, byte by byte: a cut or garbled stream is never taken for a whole answer."""

from __future__ import annotations

import json

import pytest

from plait import Agent, Step, StepError, Workflow
from plait.errors import ModelConnectionError, ModelError, ServerError
from plait.events import WorkflowCompletedEvent
from plait.models import ModelResponse, TextDelta, stream_with_retry
from plait.retry import RetryPolicy
from plait_openai import OpenAIModel
from tests.providers.openai.test_errors import REQUEST, call
from tests.servers.openai_server import ErrorReply, OpenAIServer, Reply, ToolCallReply

ANSWER = "one two three four five six seven"


# Every way a stream can end before its finish reason: the body ends cleanly
# (chunked: its last chunk; close-delimited: the connection closes), or the
# connection is cut (which, without chunked encoding, looks just like an end).
CUTS = {
    "chunked-clean-end": Reply(ANSWER, end_after=3),
    "chunked-cut": Reply(ANSWER, drop_after=3),
    "close-delimited-end": Reply(ANSWER, end_after=3, framing="close"),
    "close-delimited-cut": Reply(ANSWER, drop_after=3, framing="close"),
    "tool-call-cut": Reply(tool_calls=[ToolCallReply("get_weather", {"city": "Paris"})], end_after=4),
}


@pytest.mark.parametrize("reply", CUTS.values(), ids=CUTS.keys())
async def test_a_stream_without_finish_reason_is_a_connection_error(
    model: OpenAIModel, openai_server: OpenAIServer, reply: Reply
) -> None:
    openai_server.enqueue(reply)
    seen: list[str] = []
    with pytest.raises(ModelConnectionError) as caught:
        async for item in model.stream(REQUEST):
            assert isinstance(item, TextDelta), f"a cut stream yielded {item!r}"
            seen.append(item.text)
    error = caught.value
    assert error.retryable
    assert error.provider == "openai"
    assert "gpt-4o-mini" in str(error)
    assert "".join(seen) != ANSWER


async def test_a_cut_stream_is_retried_to_the_whole_answer(
    model: OpenAIModel, openai_server: OpenAIServer
) -> None:
    openai_server.enqueue(Reply(ANSWER, end_after=3, framing="close"), Reply(ANSWER))
    restarts: list[int] = []
    items = [
        item async for item in stream_with_retry(model, REQUEST, on_retry=lambda n, e, d: restarts.append(n))
    ]
    assert restarts == [1]
    final = items[-1]
    assert isinstance(final, ModelResponse) and final.message.content == ANSWER


async def test_a_workflow_fed_a_cut_stream_fails_instead_of_completing(openai_server: OpenAIServer) -> None:
    openai_server.enqueue(Reply(ANSWER, end_after=3, framing="close"))
    policy = RetryPolicy(max_attempts=1)
    async with OpenAIModel(
        "gpt-4o-mini", base_url=openai_server.base_url, api_key="k", retry=policy
    ) as model:
        workflow = Workflow(name="w", steps=[Step(name="answer", agent=Agent(name="a", model=model))])
        events = []
        with pytest.raises(StepError) as caught:
            async for event in workflow.arun("Hi", stream=True):  # streaming: the agent reads the stream
                events.append(event)
    assert isinstance(caught.value.__cause__, ModelConnectionError)
    assert type(events[-1]).__name__ == "WorkflowErrorEvent"
    assert not any(isinstance(e, WorkflowCompletedEvent) for e in events)


@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
async def test_empty_choices_are_a_provider_error(
    model: OpenAIModel, openai_server: OpenAIServer, streaming: bool
) -> None:
    openai_server.enqueue(Reply(ANSWER, no_choices=True))
    with pytest.raises(ServerError, match=r"openai model 'gpt-4o-mini'.*no choices") as caught:
        await call(model, streaming)
    assert caught.value.provider == "openai"


async def test_a_malformed_chunk_is_a_model_error_naming_provider_and_model(
    model: OpenAIModel, openai_server: OpenAIServer
) -> None:
    openai_server.enqueue(Reply(ANSWER, malformed_after=2))
    with pytest.raises(ModelError, match=r"OpenAI model 'gpt-4o-mini'.*not valid JSON") as caught:
        async for _ in model.stream(REQUEST):
            pass
    assert caught.value.provider == "openai"
    assert isinstance(caught.value.__cause__, json.JSONDecodeError)


async def test_a_malformed_body_is_a_model_error_naming_provider_and_model(
    model: OpenAIModel, openai_server: OpenAIServer
) -> None:
    openai_server.enqueue(ErrorReply(200, body='{"id": "chatcmpl-1", "choices": [{"mess'))
    with pytest.raises(ModelError, match=r"OpenAI model 'gpt-4o-mini'.*not valid JSON") as caught:
        await model.complete(REQUEST)
    assert caught.value.provider == "openai"


CITIES: list[str] = []


def get_weather(city: str) -> str:
    """Current weather in a city."""
    CITIES.append(city)
    return f"Sunny in {city}"


@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize(
    ("arguments", "finish_reason", "expected"),
    [
        ('{"city": "Par', None, "not valid JSON"),
        ('{"city": "Par', "length", "not valid JSON (the answer was cut off: finish_reason 'length')"),
        ('["Paris"]', None, "not a JSON object"),
    ],
    ids=["unterminated", "cut-by-length", "not-an-object"],
)
async def test_invalid_tool_arguments_go_back_to_the_model(
    openai_server: OpenAIServer, streaming: bool, arguments: str, finish_reason: str | None, expected: str
) -> None:
    CITIES.clear()
    openai_server.enqueue(
        Reply(tool_calls=[ToolCallReply("get_weather", arguments, id="call_1")], finish_reason=finish_reason),
        Reply(tool_calls=[ToolCallReply("get_weather", {"city": "Paris"}, id="call_2")]),
        "It is sunny in Paris.",
    )
    async with OpenAIModel("gpt-4o-mini", base_url=openai_server.base_url, api_key="k") as model:
        agent = Agent(name="weather", model=model, tools=[get_weather])
        workflow = Workflow(name="w", steps=[Step(name="ask", agent=agent)])
        if streaming:
            events = [event async for event in workflow.arun("Weather in Paris?", stream=True)]
            last = events[-1]
            assert isinstance(last, WorkflowCompletedEvent) and last.status == "COMPLETED"
            content = last.content
        else:
            run = await workflow.arun("Weather in Paris?")
            assert run.status == "COMPLETED"
            content = run.content
    assert content == "It is sunny in Paris."
    assert CITIES == ["Paris"]  # the tool ran only with valid arguments
    second = openai_server.chat_requests[1]["messages"]
    sent_call = second[-2]["tool_calls"][0]
    assert sent_call["id"] == "call_1" and json.loads(sent_call["function"]["arguments"]) == {}
    tool_message = second[-1]
    assert tool_message["role"] == "tool" and tool_message["tool_call_id"] == "call_1"
    assert tool_message["content"].startswith("Error: ")
    assert f"arguments for tool 'get_weather' are {expected}" in tool_message["content"]
    assert arguments in tool_message["content"]  # the model sees what it sent
