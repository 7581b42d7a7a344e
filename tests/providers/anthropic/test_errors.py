"""Provider failures, classified into plait.errors and retried by stream_with_retry."""

from __future__ import annotations

import socket

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
from plait.models import (
    Message,
    ModelRequest,
    ModelResponse,
    ModelSettings,
    ModelStreamEvent,
    TextDelta,
    ToolCall,
    stream_with_retry,
)
from plait.retry import RetryPolicy
from plait_anthropic import AnthropicModel
from tests.servers.anthropic_server import AnthropicServer, Reply

from .conftest import API_KEY

REQUEST = ModelRequest([Message("user", "Hello")])
FAST = RetryPolicy(max_attempts=3, initial_delay=0.001, jitter=0)


async def consume(model: AnthropicModel) -> list[ModelStreamEvent]:
    return [item async for item in model.stream(REQUEST)]


Retries = list[tuple[int, ModelError, float]]


async def retried(model: AnthropicModel) -> tuple[list[ModelStreamEvent], Retries]:
    """Stream through ``stream_with_retry``; returns the items and each ``on_retry`` call."""
    retries: Retries = []
    items = [
        item
        async for item in stream_with_retry(
            model, REQUEST, policy=FAST, on_retry=lambda n, e, d: retries.append((n, e, d))
        )
    ]
    return items, retries


@pytest.mark.parametrize("streaming", [False, True])
async def test_rate_limit_is_classified_with_retry_after(
    model: AnthropicModel, server: AnthropicServer, streaming: bool
) -> None:
    server.enqueue(
        Reply.error(
            429,
            "rate_limit_error",
            "Number of requests exceeded your rate limit",
            headers={"retry-after": "7"},
        )
    )

    with pytest.raises(RateLimitError) as info:
        await (consume(model) if streaming else model.complete(REQUEST))

    error = info.value
    assert error.retryable
    assert error.retry_after == 7.0
    assert error.status_code == 429
    assert error.provider == "anthropic"
    assert "Number of requests exceeded your rate limit" in str(error)
    assert "rate_limit_error" in str(error)
    assert "request id req_" in str(error)
    assert len(server.requests) == 1, "the SDK's own retries are off"


async def test_rate_limit_is_retried_after_retry_after(
    model: AnthropicModel, server: AnthropicServer
) -> None:
    server.enqueue(
        Reply.error(429, "rate_limit_error", "slow down", headers={"retry-after": "0.02"}),
        Reply.text("Finally.", usage=(3, 1)),
    )

    items, retries = await retried(model)

    assert [(n, type(e), d) for n, e, d in retries] == [(1, RateLimitError, 0.02)]
    assert isinstance(items[-1], ModelResponse) and items[-1].message.content == "Finally."
    assert len(server.requests) == 2


async def test_retry_after_as_http_date(model: AnthropicModel, server: AnthropicServer) -> None:
    server.enqueue(
        Reply.error(
            429, "rate_limit_error", "slow down", headers={"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}
        )
    )
    with pytest.raises(RateLimitError) as info:
        await model.complete(REQUEST)
    assert info.value.retry_after == 0.0  # a date in the past: retry now


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (500, "api_error"),
        (502, "api_error"),
        (503, "api_error"),
        (504, "timeout_error"),
        (529, "overloaded_error"),
    ],
)
async def test_server_errors_are_retried(
    model: AnthropicModel, server: AnthropicServer, status: int, error_type: str
) -> None:
    server.enqueue(Reply.error(status, error_type, "Overloaded"), "recovered")

    items, retries = await retried(model)

    assert len(retries) == 1
    error = retries[0][1]
    assert type(error) is ServerError and error.status_code == status and "Overloaded" in str(error)
    assert isinstance(items[-1], ModelResponse) and items[-1].message.content == "recovered"


async def test_server_errors_give_up_after_the_policy(model: AnthropicModel, server: AnthropicServer) -> None:
    server.enqueue(*[Reply.error(529, "overloaded_error", "Overloaded")] * 3)
    with pytest.raises(ServerError, match="Overloaded"):
        await retried(model)
    assert len(server.requests) == 3


async def test_bad_request_is_not_retried(model: AnthropicModel, server: AnthropicServer) -> None:
    server.enqueue(Reply.error(400, "invalid_request_error", "temperature: range: 0..1"))

    with pytest.raises(BadRequestError) as info:
        await retried(model)

    assert type(info.value) is BadRequestError
    assert not info.value.retryable
    assert "temperature: range: 0..1" in str(info.value)
    assert len(server.requests) == 1


async def test_invalid_request_is_rejected_by_the_server_like_the_api(
    model: AnthropicModel, server: AnthropicServer
) -> None:
    # A tool_use that no tool_result answers: the real API refuses this with a 400.
    request = ModelRequest(
        [
            Message("user", "q"),
            Message("assistant", None, tool_calls=[ToolCall("toolu_z", "f")]),
            Message("user", "?"),
        ]
    )
    with pytest.raises(BadRequestError, match="toolu_z"):
        await model.complete(request)


@pytest.mark.parametrize(
    "message",
    [
        "prompt is too long: 208310 tokens > 200000 maximum",
        "input length and `max_tokens` exceed context limit: 197485 + 8192 > 200000",
    ],
)
async def test_prompt_too_long_is_a_context_overflow(
    model: AnthropicModel, server: AnthropicServer, message: str
) -> None:
    server.enqueue(Reply.error(400, "invalid_request_error", message))

    with pytest.raises(ContextOverflowError) as info:
        await model.complete(REQUEST)

    assert isinstance(info.value, BadRequestError) and not info.value.retryable
    assert message in str(info.value)


@pytest.mark.parametrize("status", [401, 403])
async def test_authentication_errors(model: AnthropicModel, server: AnthropicServer, status: int) -> None:
    error_type = "authentication_error" if status == 401 else "permission_error"
    server.enqueue(Reply.error(status, error_type, "invalid x-api-key"))

    with pytest.raises(AuthenticationError, match="invalid x-api-key") as info:
        await retried(model)

    assert info.value.status_code == status and not info.value.retryable


async def test_wrong_api_key_against_a_keyed_server() -> None:
    with AnthropicServer(api_key="right") as server:
        async with AnthropicModel("claude-sonnet-4-5", api_key="wrong", base_url=server.base_url) as model:
            with pytest.raises(AuthenticationError, match="401"):
                await model.complete(REQUEST)
        async with AnthropicModel("claude-sonnet-4-5", api_key="right", base_url=server.base_url) as model:
            assert (await model.complete(REQUEST)).message.content == "Echo: Hello"


@pytest.mark.parametrize(
    ("error_type", "expected"),
    [
        ("overloaded_error", ServerError),
        ("api_error", ServerError),
        ("rate_limit_error", RateLimitError),
        ("invalid_request_error", BadRequestError),
        ("authentication_error", AuthenticationError),
    ],
)
async def test_sse_error_event_mid_stream(
    model: AnthropicModel, server: AnthropicServer, error_type: str, expected: type[ModelError]
) -> None:
    server.enqueue(Reply.text("partial answer here", stream_error=(error_type, "Something went wrong")))

    seen: list[ModelStreamEvent] = []
    with pytest.raises(expected) as info:
        async for item in model.stream(REQUEST):
            seen.append(item)

    assert type(info.value) is expected
    assert "Something went wrong" in str(info.value) and error_type in str(info.value)
    assert "".join(i.text for i in seen if isinstance(i, TextDelta)) == "partial answer here"
    assert not any(isinstance(i, ModelResponse) for i in seen)


async def test_sse_overloaded_error_is_retried(model: AnthropicModel, server: AnthropicServer) -> None:
    server.enqueue(
        Reply.text("half", stream_error=("overloaded_error", "Overloaded"), stream_error_after=1),
        "whole answer",
    )

    items, retries = await retried(model)

    assert [type(e) for _, e, _ in retries] == [ServerError]
    assert isinstance(items[-1], ModelResponse) and items[-1].message.content == "whole answer"


async def test_dropped_connection_mid_stream(model: AnthropicModel, server: AnthropicServer) -> None:
    server.enqueue(Reply.text("one two three four five six", drop_after=5))

    seen: list[ModelStreamEvent] = []
    with pytest.raises(ModelConnectionError) as info:
        async for item in model.stream(REQUEST):
            seen.append(item)

    assert info.value.retryable and info.value.provider == "anthropic"
    assert [i.text for i in seen if isinstance(i, TextDelta)] == ["one ", "two "]


async def test_dropped_connection_is_retried(model: AnthropicModel, server: AnthropicServer) -> None:
    server.enqueue(Reply.text("cut short", drop_after=3), "complete")

    items, retries = await retried(model)

    assert [type(e) for _, e, _ in retries] == [ModelConnectionError]
    assert isinstance(items[-1], ModelResponse) and items[-1].message.content == "complete"


async def test_stream_ending_before_message_stop(model: AnthropicModel, server: AnthropicServer) -> None:
    # A body that ends cleanly but early (a proxy giving up) is a failure, not a short answer.
    server.enqueue(Reply.text("one two three", end_after=4), "complete")

    with pytest.raises(ModelConnectionError, match="before message_stop"):
        await consume(model)
    items, _ = await retried(model)
    assert isinstance(items[-1], ModelResponse) and items[-1].message.content == "complete"


async def test_sse_error_before_any_content(model: AnthropicModel, server: AnthropicServer) -> None:
    server.enqueue(Reply.text("abc", stream_error=("overloaded_error", "Overloaded"), stream_error_after=0))
    with pytest.raises(ServerError, match="Overloaded"):
        await consume(model)


async def test_timeout(server: AnthropicServer) -> None:
    server.enqueue(Reply.text("too late", delay=5))
    async with AnthropicModel(
        "claude-sonnet-4-5", api_key=API_KEY, base_url=server.base_url, timeout=0.2
    ) as model:
        with pytest.raises(ModelTimeoutError) as info:
            await model.complete(REQUEST)
    assert info.value.retryable


async def test_request_timeout_setting(model: AnthropicModel, server: AnthropicServer) -> None:
    server.enqueue(Reply.text("too late", delay=5))
    request = ModelRequest([Message("user", "x")], settings=ModelSettings(timeout=0.2))
    with pytest.raises(ModelTimeoutError):
        [item async for item in model.stream(request)]


async def test_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with AnthropicModel(
        "claude-sonnet-4-5", api_key=API_KEY, base_url=f"http://127.0.0.1:{port}"
    ) as model:
        with pytest.raises(ModelConnectionError, match="Connection"):
            await model.complete(REQUEST)
        with pytest.raises(ModelConnectionError):
            await consume(model)


async def test_complete_with_retry_retries_the_non_streaming_call(
    model: AnthropicModel, server: AnthropicServer
) -> None:
    from plait.models import complete_with_retry

    server.enqueue(
        Reply.error(529, "overloaded_error", "Overloaded"),
        Reply.error(429, "rate_limit_error", "slow down", headers={"retry-after": "0"}),
        "third time lucky",
    )
    retries: Retries = []

    response = await complete_with_retry(
        model, REQUEST, policy=FAST, on_retry=lambda n, e, d: retries.append((n, e, d))
    )

    assert response.message.content == "third time lucky"
    assert [type(e) for _, e, _ in retries] == [ServerError, RateLimitError]
    assert all("stream" not in r.json for r in server.requests)
