"""Every provider, over real HTTP: ``timeout`` bounds a whole call (a server that drips bytes
cannot hold it open), and a credential the server quotes back never leaves the call (not in
the exception, its chain, the events, the spans or the stored run)."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from plait import Agent, Step, StepError, Workflow
from plait.errors import AuthenticationError, ModelTimeoutError
from plait.models import (
    Message,
    Model,
    ModelRequest,
    ModelResponse,
    ModelSettings,
    complete_with_retry,
    credentials,
    stream_with_retry,
)
from plait.retry import RetryPolicy
from plait.storage import resolve_storage
from tests.providers.litellm.conftest import LITELLM_WARNINGS
from tests.servers import anthropic_server as anthropic
from tests.servers import openai_server as openai
from tests.servers.anthropic_server import anthropic_server
from tests.servers.openai_server import openai_server

__all__ = ["anthropic_server", "openai_server"]

pytestmark = [
    *LITELLM_WARNINGS,
    # litellm 1.7x's acompletion builds its provider coroutine in an executor and awaits it
    # afterwards; cancelled in between (the deadline), that coroutine is never awaited and
    # Python reports it when it is collected. Nothing runs or leaks: only the report.
    pytest.mark.filterwarnings(
        r"ignore:Exception ignored in. <coroutine object OpenAIChatCompletion.acompletion"
        r":pytest.PytestUnraisableExceptionWarning"
    ),
]

REQUEST = ModelRequest(messages=[Message(role="user", content="Hi")])
KEY = "sk-live-0123456789abcdef"
HEADER_SECRET = "hdr-secret-9876543210"
ONCE = RetryPolicy(max_attempts=1)


def _openai(server: Any, **options: Any) -> Model:
    from plait_openai import OpenAIModel

    return OpenAIModel("gpt-4o-mini", base_url=server.base_url, retry=ONCE, **options)


def _anthropic(server: Any, **options: Any) -> Model:
    from plait_anthropic import AnthropicModel

    return AnthropicModel("claude-haiku-4-5", base_url=server.base_url, retry=ONCE, **options)


def _litellm(server: Any, *, default_headers: dict[str, str] | None = None, **options: Any) -> Model:
    from plait_litellm import LiteLLMModel

    return LiteLLMModel(
        "openai/gpt-4o-mini", base_url=server.base_url, retry=ONCE, extra_headers=default_headers, **options
    )


# name: (build a model against the right server, the server's index, a dripping reply, an echoing 401)
PROVIDERS: dict[str, tuple[Callable[..., Model], int, Callable[[], Any], Callable[[str], Any]]] = {
    "openai": (
        _openai,
        0,
        lambda: openai.Reply("too late", drip=0.3, drip_for=60),
        lambda header: openai.ErrorReply(401, "Incorrect API key provided", echo_header=header),
    ),
    "anthropic": (
        _anthropic,
        1,
        lambda: anthropic.Reply.text("too late", drip=0.3, drip_for=60),
        lambda header: anthropic.Reply.error(
            401, "authentication_error", "invalid x-api-key", echo_header=header
        ),
    ),
    "litellm": (
        _litellm,
        0,
        lambda: openai.Reply("too late", drip=0.3, drip_for=60),
        lambda header: openai.ErrorReply(401, "Incorrect API key provided", echo_header=header),
    ),
}
# the request header each provider sends its key in
KEY_HEADER = {"openai": "Authorization", "anthropic": "x-api-key", "litellm": "Authorization"}


@pytest.fixture(params=sorted(PROVIDERS))
def provider(
    request: pytest.FixtureRequest,
    openai_server: openai.OpenAIServer,
    anthropic_server: anthropic.AnthropicServer,
) -> tuple[str, Callable[..., Model], Any]:
    name = request.param
    build, index, *_ = PROVIDERS[name]
    return name, build, (openai_server, anthropic_server)[index]


async def _call(model: Model, streaming: bool) -> ModelResponse:
    if not streaming:
        return await complete_with_retry(model, REQUEST)
    items = [item async for item in stream_with_retry(model, REQUEST)]
    assert isinstance(items[-1], ModelResponse)
    return items[-1]


@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
async def test_a_dripping_server_cannot_hold_a_call_past_its_timeout(
    provider: tuple[str, Callable[..., Model], Any], streaming: bool
) -> None:
    name, build, server = provider
    server.enqueue(PROVIDERS[name][2]())
    model = build(server, api_key=KEY, timeout=1.5)
    started = time.monotonic()
    with pytest.raises(ModelTimeoutError) as caught:
        await _call(model, streaming)
    elapsed = time.monotonic() - started
    await model.aclose()
    # the server drips for 60 s, each byte well within the read timeout: only a total
    # deadline ends the call this early (a bound, not a performance claim)
    assert elapsed < 30, f"the call took {elapsed:.1f} s: the 1.5 s timeout did not bound it"
    assert "1.5 s" in str(caught.value) and "total" in str(caught.value)
    assert caught.value.retryable


async def test_a_request_timeout_overrides_the_models(
    provider: tuple[str, Callable[..., Model], Any],
) -> None:
    name, build, server = provider
    server.enqueue(PROVIDERS[name][2]())
    model = build(server, api_key=KEY, timeout=120)
    request = ModelRequest(messages=REQUEST.messages, settings=ModelSettings(timeout=1.0))
    with pytest.raises(ModelTimeoutError, match="1 s"):
        await complete_with_retry(model, request)
    await model.aclose()


def _traced() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    return tracer_provider, exporter


def _span_text(exporter: InMemorySpanExporter) -> str:
    parts: list[str] = []
    for span in exporter.get_finished_spans():
        parts.append(repr(dict(span.attributes or {})))
        parts.append(str(span.status.description))
        parts.extend(repr(dict(event.attributes or {})) for event in span.events)
    return "\n".join(parts)


@pytest.mark.parametrize("echoed", ["key", "header"])
async def test_a_credential_the_server_quotes_back_never_leaves_the_call(
    provider: tuple[str, Callable[..., Model], Any], echoed: str, tmp_path: Path
) -> None:
    name, build, server = provider
    header = KEY_HEADER[name] if echoed == "key" else "X-Gateway-Token"
    secret = KEY if echoed == "key" else HEADER_SECRET
    server.enqueue(PROVIDERS[name][3](header))
    model = build(server, api_key=KEY, default_headers={"X-Gateway-Token": HEADER_SECRET})
    storage = resolve_storage(f"sqlite:///{tmp_path / 'runs.db'}")
    assert storage is not None
    tracer_provider, exporter = _traced()
    workflow = Workflow(
        name="leak",
        steps=[Step(name="ask", agent=Agent(name="a", model=model))],
        storage=storage,
        tracer_provider=tracer_provider,
    )
    events: list[Any] = []
    with pytest.raises(StepError) as caught:
        async for event in workflow.arun("Hi", stream=True, stream_events=True):
            events.append(event)
    await model.aclose()

    # the server really did quote it: without scrubbing, the message would carry it
    assert any(secret in str(value) for request in server.requests for value in request.headers.values())
    cause = caught.value.__cause__
    assert isinstance(cause, AuthenticationError), cause
    assert "***" in str(cause), f"the echo was not where the test expects it: {cause}"

    shown = {
        "the exception and its chain": "".join(traceback.format_exception(caught.value)),
        "the events": "\n".join(repr(event) for event in events),
        "the spans": _span_text(exporter),
    }
    records = await storage.list_runs()
    assert records, "the failed run was not stored"
    shown["the stored run"] = "\n".join(record.model_dump_json() for record in records)
    for where, text in shown.items():
        assert secret not in text, f"the {echoed} leaked into {where}"
    await storage.close()


def test_credentials_takes_keys_and_credential_headers_not_short_or_plain_values() -> None:
    found = credentials(
        "sk-long-enough-key",
        "short",
        None,
        headers={
            "Authorization": "Bearer tok-abcdefgh1234",
            "X-Trace": "not-a-secret-value",
            "api-key": "k" * 9,
        },
    )
    assert found == sorted(found, key=len, reverse=True)
    assert set(found) == {"sk-long-enough-key", "Bearer tok-abcdefgh1234", "tok-abcdefgh1234", "k" * 9}


async def test_a_fast_answer_is_not_affected_by_the_deadline(
    provider: tuple[str, Callable[..., Model], Any],
) -> None:
    name, build, server = provider
    answer = anthropic.Reply.text("hello there") if name == "anthropic" else openai.Reply("hello there")
    server.enqueue(answer, answer)
    model = build(server, api_key=KEY, timeout=30)
    for streaming in (False, True):
        response = await _call(model, streaming)
        assert response.message.content == "hello there"
    await model.aclose()
