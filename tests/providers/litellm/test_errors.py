"""LiteLLM's exceptions become plait.errors, keep the provider's message, and retry as they should.

Both wire protocols: LiteLLM maps each provider's failures its own way, so the
classification is checked for an OpenAI-protocol and an Anthropic-protocol server.
"""

from __future__ import annotations

import time

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
    TextDelta,
    complete_with_retry,
    stream_with_retry,
)
from plait.retry import RetryPolicy, parse_retry_after
from plait_litellm import LiteLLMModel
from tests.servers import anthropic_server as anthropic
from tests.servers.anthropic_server import AnthropicServer
from tests.servers.openai_server import ErrorReply, OpenAIServer, Reply

from .conftest import API_KEY, LITELLM_WARNINGS

pytestmark = LITELLM_WARNINGS

REQUEST = ModelRequest(messages=[Message(role="user", content="Hi")])


async def call(model: LiteLLMModel, streaming: bool) -> ModelResponse:
    if not streaming:
        return await model.complete(REQUEST)
    items = [item async for item in model.stream(REQUEST)]
    assert isinstance(items[-1], ModelResponse)
    return items[-1]


OPENAI_CASES = [
    (ErrorReply(429, "Rate limit reached for gpt-4o-mini"), RateLimitError),
    (ErrorReply(500, "The server had an error while processing your request."), ServerError),
    (ErrorReply(503, "The engine is currently overloaded"), ServerError),
    (ErrorReply(400, "Invalid value for 'temperature'", code="invalid_value"), BadRequestError),
    (
        ErrorReply(
            400, "This model's maximum context length is 128000 tokens.", code="context_length_exceeded"
        ),
        ContextOverflowError,
    ),
    (ErrorReply(401, "Incorrect API key provided: sk-wrong", code="invalid_api_key"), AuthenticationError),
    (ErrorReply(404, "The model 'gpt-9' does not exist", code="model_not_found"), BadRequestError),
]


@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize(
    ("reply", "expected"), OPENAI_CASES, ids=[f"{c[0].status}-{c[1].__name__}" for c in OPENAI_CASES]
)
async def test_openai_protocol_errors_are_classified(
    openai_model: LiteLLMModel,
    openai_server: OpenAIServer,
    reply: ErrorReply,
    expected: type[ModelError],
    streaming: bool,
) -> None:
    openai_server.enqueue(reply)
    with pytest.raises(expected) as caught:
        await call(openai_model, streaming)
    error = caught.value
    assert type(error) is expected
    assert error.retryable is expected.retryable
    assert error.provider == "litellm"
    assert reply.message in str(error)  # the provider's own words
    assert "openai/gpt-4o-mini" in str(error)
    assert len(openai_server.chat_requests) == 1  # litellm did not retry on its own


ANTHROPIC_CASES = [
    (
        anthropic.Reply.error(429, "rate_limit_error", "Number of requests has exceeded your rate limit"),
        RateLimitError,
    ),
    (anthropic.Reply.error(500, "api_error", "Internal server error"), ServerError),
    (anthropic.Reply.error(529, "overloaded_error", "Overloaded"), ServerError),
    (anthropic.Reply.error(400, "invalid_request_error", "max_tokens: must be positive"), BadRequestError),
    (
        anthropic.Reply.error(
            400, "invalid_request_error", "prompt is too long: 250000 tokens > 200000 maximum"
        ),
        ContextOverflowError,
    ),
    (anthropic.Reply.error(401, "authentication_error", "invalid x-api-key"), AuthenticationError),
]


# Non-streaming only: after an HTTP error on a *streaming* Anthropic request,
# litellm 1.106 leaves an aiohttp session of its own unclosed (outside the client
# cache plait closes per event loop), which `filterwarnings = error` reports as an
# unraisable ResourceWarning in a later test. The streaming classification is the
# same code path; streaming errors are covered on the OpenAI protocol above.
@pytest.mark.parametrize("streaming", [False], ids=["complete"])
@pytest.mark.parametrize(
    ("reply", "expected"),
    ANTHROPIC_CASES,
    ids=[f"{c[0].status}-{c[1].__name__}" for c in ANTHROPIC_CASES],
)
async def test_anthropic_protocol_errors_are_classified(
    anthropic_model: LiteLLMModel,
    anthropic_server: AnthropicServer,
    reply: anthropic.Reply,
    expected: type[ModelError],
    streaming: bool,
) -> None:
    anthropic_server.enqueue(reply)
    with pytest.raises(expected) as caught:
        await call(anthropic_model, streaming)
    error = caught.value
    assert type(error) is expected
    assert error.provider == "litellm"
    assert reply.error_message and reply.error_message in str(error)
    assert "{" not in str(error)  # the message is unpacked from Anthropic's JSON error body
    assert len(anthropic_server.requests) == 1


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({"Retry-After": "2"}, 2.0), ({"retry-after-ms": "20", "Retry-After": "1"}, 0.02), ({}, None)],
)
async def test_rate_limit_carries_retry_after(
    openai_model: LiteLLMModel, openai_server: OpenAIServer, headers: dict[str, str], expected: float | None
) -> None:
    openai_server.enqueue(ErrorReply(429, "Slow down", headers=headers))
    with pytest.raises(RateLimitError) as caught:
        await openai_model.complete(REQUEST)
    assert caught.value.retry_after == expected
    assert caught.value.status_code == 429


def test_retry_after_parsing() -> None:
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # in the past
    assert parse_retry_after({"retry-after": "soon"}) is None


async def test_stream_with_retry_honours_retry_after_on_429(
    openai_model: LiteLLMModel, openai_server: OpenAIServer
) -> None:
    openai_server.enqueue(ErrorReply(429, "Slow down", headers={"Retry-After": "0.2"}), "Hello after waiting")
    retries: list[tuple[int, str, float]] = []

    started = time.monotonic()
    items = [
        item
        async for item in stream_with_retry(
            openai_model,
            REQUEST,
            on_retry=lambda n, error, delay: retries.append((n, type(error).__name__, delay)),
        )
    ]

    assert time.monotonic() - started >= 0.2
    assert retries == [(1, "RateLimitError", 0.2)]
    final = items[-1]
    assert isinstance(final, ModelResponse)
    assert final.message.content == "Hello after waiting"
    assert len(openai_server.chat_requests) == 2


async def test_anthropic_429_with_retry_after_is_retried(
    anthropic_model: LiteLLMModel, anthropic_server: AnthropicServer
) -> None:
    # Through complete_with_retry: see the note on the Anthropic error matrix above.
    anthropic_server.enqueue(
        anthropic.Reply.error(429, "rate_limit_error", "Slow down", headers={"retry-after": "0.1"}), "Done."
    )
    retries: list[float] = []

    response = await complete_with_retry(
        anthropic_model, REQUEST, on_retry=lambda n, error, delay: retries.append(delay)
    )

    assert retries == [0.1]
    assert response.message.content == "Done."


async def test_bad_request_is_not_retried(openai_model: LiteLLMModel, openai_server: OpenAIServer) -> None:
    openai_server.enqueue(ErrorReply(400, "Invalid 'messages'"))
    with pytest.raises(BadRequestError):
        async for _ in stream_with_retry(openai_model, REQUEST):
            pass
    assert len(openai_server.chat_requests) == 1


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
async def test_connection_dropped_mid_stream(
    protocol: str,
    openai_model: LiteLLMModel,
    openai_server: OpenAIServer,
    anthropic_model: LiteLLMModel,
    anthropic_server: AnthropicServer,
) -> None:
    if protocol == "openai":
        model = openai_model
        openai_server.enqueue(Reply("one two three four five six", chunk_size=3, drop_after=3))
    else:
        model = anthropic_model
        anthropic_server.enqueue(anthropic.Reply.text("one two three four five six", drop_after=4))

    with pytest.raises(ModelConnectionError) as caught:
        async for _ in model.stream(REQUEST):
            pass
    assert caught.value.retryable is True
    assert caught.value.provider == "litellm"

    # and stream_with_retry starts the call over, telling the consumer first
    seen: list[str] = []
    restarts: list[int] = []
    if protocol == "openai":
        openai_server.enqueue(Reply("partial answer", chunk_size=3, drop_after=3), "Recovered.")
    else:
        anthropic_server.enqueue(anthropic.Reply.text("partial answer", drop_after=4), "Recovered.")
    async for item in stream_with_retry(model, REQUEST, on_retry=lambda n, e, d: restarts.append(n)):
        if isinstance(item, TextDelta):
            seen.append(item.text)
        elif isinstance(item, ModelResponse):
            assert item.message.content == "Recovered."
    assert restarts == [1]


async def test_anthropic_error_event_mid_stream_is_a_server_error(
    anthropic_model: LiteLLMModel, anthropic_server: AnthropicServer
) -> None:
    anthropic_server.enqueue(anthropic.Reply.text("Hello", stream_error=("overloaded_error", "Overloaded")))
    with pytest.raises(ServerError, match="Overloaded"):
        async for _ in anthropic_model.stream(REQUEST):
            pass


async def test_timeout(openai_server: OpenAIServer) -> None:
    openai_server.enqueue(Reply("too late", delay=1.0))
    async with LiteLLMModel(
        "openai/gpt-4o-mini", base_url=openai_server.base_url, api_key=API_KEY, timeout=0.2
    ) as model:
        with pytest.raises(ModelTimeoutError) as caught:
            await model.complete(REQUEST)
    assert caught.value.retryable is True


async def test_connection_refused() -> None:
    async with LiteLLMModel(
        "openai/gpt-4o-mini", base_url="http://127.0.0.1:9/v1", api_key=API_KEY, timeout=5
    ) as model:
        with pytest.raises(ModelConnectionError) as caught:
            await model.complete(REQUEST)
    assert caught.value.retryable is True
    assert "openai/gpt-4o-mini" in str(caught.value)


async def test_retry_policy_gives_up_after_max_attempts(openai_server: OpenAIServer) -> None:
    openai_server.enqueue(*[ErrorReply(500, "still broken")] * 3)
    policy = RetryPolicy(max_attempts=3, initial_delay=0.001, jitter=0)
    async with LiteLLMModel(
        "openai/gpt-4o-mini", base_url=openai_server.base_url, api_key=API_KEY, retry=policy
    ) as model:
        with pytest.raises(ServerError, match="still broken"):
            async for _ in stream_with_retry(model, REQUEST):
                pass
    assert len(openai_server.chat_requests) == 3
