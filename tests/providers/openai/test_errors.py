"""Provider errors are classified into plait.errors, keep OpenAI's message, and retry as they should."""

from __future__ import annotations

import socket
from email.utils import formatdate

import pytest

from plait.errors import (
    AuthenticationError,
    BadRequestError,
    ContextOverflowError,
    ModelConnectionError,
    ModelError,
    ModelTimeoutError,
    RateLimitError,
    ServerError,
)
from plait.models import Message, ModelRequest, ModelResponse, ModelSettings, TextDelta, stream_with_retry
from plait.retry import RetryPolicy
from plait_openai import OpenAIModel
from plait_openai._errors import parse_retry_after
from tests.servers.openai_server import ErrorReply, OpenAIServer, Reply

REQUEST = ModelRequest(messages=[Message(role="user", content="Hi")])


async def call(model: OpenAIModel, streaming: bool) -> ModelResponse:
    if not streaming:
        return await model.complete(REQUEST)
    items = [item async for item in model.stream(REQUEST)]
    assert isinstance(items[-1], ModelResponse)
    return items[-1]


CASES = [
    (ErrorReply(429, "Rate limit reached for gpt-4o-mini", code="rate_limit_exceeded"), RateLimitError, True),
    (ErrorReply(500, "The server had an error while processing your request."), ServerError, True),
    (ErrorReply(502, "Bad gateway"), ServerError, True),
    (ErrorReply(503, "The engine is currently overloaded"), ServerError, True),
    (ErrorReply(504, "Gateway timeout"), ServerError, True),
    (ErrorReply(400, "Invalid value for 'temperature'", code="invalid_value"), BadRequestError, False),
    (
        ErrorReply(
            400, "This model's maximum context length is 128000 tokens.", code="context_length_exceeded"
        ),
        ContextOverflowError,
        False,
    ),
    (
        ErrorReply(401, "Incorrect API key provided: sk-wrong", code="invalid_api_key"),
        AuthenticationError,
        False,
    ),
    (ErrorReply(403, "You are not allowed to use this model"), AuthenticationError, False),
    (ErrorReply(404, "The model 'gpt-9' does not exist", code="model_not_found"), BadRequestError, False),
]


@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize(
    ("reply", "expected", "retryable"), CASES, ids=[f"{c[0].status}-{c[1].__name__}" for c in CASES]
)
async def test_http_errors_are_classified(
    model: OpenAIModel,
    openai_server: OpenAIServer,
    reply: ErrorReply,
    expected: type[ModelError],
    retryable: bool,
    streaming: bool,
) -> None:
    openai_server.enqueue(reply)
    with pytest.raises(expected) as caught:
        await call(model, streaming)
    error = caught.value
    assert type(error) is expected
    assert error.retryable is retryable
    assert error.status_code == reply.status
    assert error.provider == "openai"
    assert reply.message in str(error)  # the provider's own words
    assert "gpt-4o-mini" in str(error)
    assert len(openai_server.chat_requests) == 1  # the SDK did not retry on its own


async def test_context_overflow_recognized_by_message_alone(
    model: OpenAIModel, openai_server: OpenAIServer
) -> None:
    # vLLM and other compatible servers say it in words, without OpenAI's code.
    openai_server.enqueue(
        ErrorReply(400, "This model's maximum context length is 4096 tokens. However, you requested 5000")
    )
    with pytest.raises(ContextOverflowError):
        await model.complete(REQUEST)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "0.05"}, 0.05),
        ({"Retry-After": "2"}, 2.0),
        ({"retry-after-ms": "20", "Retry-After": "1"}, 0.02),
        ({}, None),
    ],
)
async def test_rate_limit_carries_retry_after(
    model: OpenAIModel, openai_server: OpenAIServer, headers: dict[str, str], expected: float | None
) -> None:
    openai_server.enqueue(ErrorReply(429, "Slow down", headers=headers))
    with pytest.raises(RateLimitError) as caught:
        await model.complete(REQUEST)
    assert caught.value.retry_after == expected


def test_retry_after_as_http_date() -> None:
    seconds = parse_retry_after({"retry-after": formatdate(timeval=None, usegmt=True)})
    assert seconds is not None and 0 <= seconds <= 1
    assert parse_retry_after({"retry-after": "soon"}) is None


async def test_exhausted_quota_is_not_retried(model: OpenAIModel, openai_server: OpenAIServer) -> None:
    openai_server.enqueue(
        ErrorReply(429, "You exceeded your current quota", code="insufficient_quota"), "never"
    )
    with pytest.raises(RateLimitError) as caught:
        async for _ in stream_with_retry(model, REQUEST):
            pass
    assert caught.value.retryable is False
    assert len(openai_server.chat_requests) == 1


async def test_stream_with_retry_waits_for_retry_after_then_succeeds(
    model: OpenAIModel, openai_server: OpenAIServer
) -> None:
    openai_server.enqueue(ErrorReply(429, "Slow down", headers={"Retry-After": "0.05"}), Reply("Finally."))
    policy = RetryPolicy(max_attempts=3, initial_delay=0.001, jitter=0)
    retries: list[tuple[int, ModelError, float]] = []

    items = [
        item
        async for item in stream_with_retry(
            model, REQUEST, policy=policy, on_retry=lambda *a: retries.append(a)
        )
    ]

    assert isinstance(items[-1], ModelResponse)
    assert items[-1].message.content == "Finally."
    [(attempt, error, delay)] = retries
    assert attempt == 1 and isinstance(error, RateLimitError) and delay == pytest.approx(0.05)
    first, second = (r for r in openai_server.requests if r.path.endswith("/chat/completions"))
    assert second.received_at - first.received_at >= 0.05


async def test_server_errors_are_retried(model: OpenAIModel, openai_server: OpenAIServer) -> None:
    openai_server.enqueue(ErrorReply(500, "boom"), ErrorReply(503, "overloaded"), Reply("ok"))
    items = [item async for item in stream_with_retry(model, REQUEST)]  # model's fast retry policy
    assert isinstance(items[-1], ModelResponse) and items[-1].message.content == "ok"
    assert len(openai_server.chat_requests) == 3


async def test_retries_give_up_after_max_attempts(model: OpenAIModel, openai_server: OpenAIServer) -> None:
    openai_server.enqueue(*[ErrorReply(500, f"boom {i}") for i in range(3)], "unused")
    with pytest.raises(ServerError, match="boom 2"):
        async for _ in stream_with_retry(model, REQUEST):
            pass
    assert openai_server.pending == 1


async def test_connection_dropped_mid_stream(model: OpenAIModel, openai_server: OpenAIServer) -> None:
    openai_server.enqueue(Reply("This answer will be cut off halfway through.", chunk_size=4, drop_after=4))
    seen: list[str] = []
    with pytest.raises(ModelConnectionError) as caught:
        async for item in model.stream(REQUEST):
            if isinstance(item, TextDelta):
                seen.append(item.text)
    assert seen  # part of the answer arrived before the drop
    assert caught.value.retryable
    assert "connection" in str(caught.value).lower()


async def test_dropped_stream_is_retried(model: OpenAIModel, openai_server: OpenAIServer) -> None:
    openai_server.enqueue(Reply("cut", drop_after=2), Reply("whole answer"))
    retries: list[int] = []
    items = [
        item async for item in stream_with_retry(model, REQUEST, on_retry=lambda n, e, d: retries.append(n))
    ]
    assert retries == [1]
    assert isinstance(items[-1], ModelResponse) and items[-1].message.content == "whole answer"


async def test_connection_dropped_before_any_response(
    model: OpenAIModel, openai_server: OpenAIServer
) -> None:
    openai_server.enqueue(Reply("never sent", drop_after=0))
    with pytest.raises(ModelConnectionError):
        await model.complete(REQUEST)


async def test_connection_refused() -> None:
    with socket.socket() as sock:  # a loopback port that nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with OpenAIModel("gpt-4o-mini", base_url=f"http://127.0.0.1:{port}/v1", api_key="k") as model:
        with pytest.raises(ModelConnectionError, match="gpt-4o-mini"):
            await model.complete(REQUEST)


@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
async def test_request_timeout_setting(openai_server: OpenAIServer, streaming: bool) -> None:
    openai_server.enqueue(Reply("too late", delay=0.5))
    async with OpenAIModel("gpt-4o-mini", base_url=openai_server.base_url, api_key="k") as model:
        request = ModelRequest(messages=REQUEST.messages, settings=ModelSettings(timeout=0.1))
        with pytest.raises(ModelTimeoutError) as caught:
            if streaming:
                async for _ in model.stream(request):
                    pass
            else:
                await model.complete(request)
    assert caught.value.retryable


async def test_model_timeout_option(openai_server: OpenAIServer) -> None:
    openai_server.enqueue(Reply("too late", delay=0.5))
    async with OpenAIModel("gpt-4o-mini", base_url=openai_server.base_url, api_key="k", timeout=0.1) as model:
        with pytest.raises(ModelTimeoutError):
            await model.complete(REQUEST)


async def test_invalid_tool_arguments_are_reported_on_the_call(
    model: OpenAIModel, openai_server: OpenAIServer
) -> None:
    from tests.servers.openai_server import ToolCallReply

    openai_server.enqueue(
        Reply(tool_calls=[ToolCallReply("search", '{"query": "unterminat')], finish_reason="length")
    )
    response = await model.complete(REQUEST)  # the model's mistake, for the agent to send back
    (call,) = response.message.tool_calls
    assert call.name == "search" and call.arguments == {}
    assert call.arguments_error is not None
    assert call.arguments_error.startswith(
        "the arguments for tool 'search' are not valid JSON (the answer was cut off: finish_reason 'length')"
    )


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            ErrorReply(500, "The server had an error while processing your request.", type="server_error"),
            ServerError,
        ),
        (ErrorReply(429, "Rate limit reached", type="rate_limit_exceeded"), RateLimitError),
        (ErrorReply(400, "Invalid tool output", type="invalid_request_error"), BadRequestError),
    ],
)
async def test_error_event_inside_a_stream(
    model: OpenAIModel, openai_server: OpenAIServer, error: ErrorReply, expected: type[ModelError]
) -> None:
    openai_server.enqueue(Reply("partial answer", drop_after=3, stream_error=error))
    with pytest.raises(expected, match="error during streaming: " + error.message):
        async for _ in model.stream(REQUEST):
            pass
