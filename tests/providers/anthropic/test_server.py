"""The test server itself: the wire format other tests rely on, seen through the raw SDK."""

from __future__ import annotations

import anthropic
import httpx
import pytest

from tests.servers.anthropic_server import AnthropicServer, Reply

PARAMS = {"model": "claude-test", "max_tokens": 10, "messages": [{"role": "user", "content": "Hi"}]}


async def test_stream_events_come_in_the_api_order(server: AnthropicServer) -> None:
    server.enqueue(
        Reply.tool_use("lookup", {"query": "a longer query string"}, text="Looking.", usage=(5, 9))
    )
    async with anthropic.AsyncAnthropic(api_key="k", base_url=server.base_url, max_retries=0) as client:
        stream = await client.messages.create(**PARAMS, stream=True)  # type: ignore[call-overload]
        events = [event async for event in stream]

    kinds = [event.type for event in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds.count("content_block_start") == kinds.count("content_block_stop") == 2
    fragments = [e.delta.partial_json for e in events if e.type == "content_block_delta" and e.index == 1]
    assert len(fragments) > 3 and fragments[0] == ""
    assert "".join(fragments) == '{"query": "a longer query string"}'
    assert events[-2].delta.stop_reason == "tool_use" and events[-2].usage.output_tokens == 9
    assert events[0].message.usage.input_tokens == 5


async def test_ping_events_are_sent(server: AnthropicServer) -> None:
    async with (
        httpx.AsyncClient(base_url=server.base_url) as client,
        client.stream("POST", "/v1/messages", json={**PARAMS, "stream": True}) as response,
    ):
        body = "".join([chunk async for chunk in response.aiter_text()])
    assert response.headers["content-type"].startswith("text/event-stream")
    assert 'event: ping\ndata: {"type": "ping"}\n\n' in body
    assert body.index("event: message_start") < body.index("event: ping") < body.index("event: message_stop")


async def test_non_streaming_message_and_recorded_request(server: AnthropicServer) -> None:
    async with anthropic.AsyncAnthropic(api_key="k", base_url=server.base_url, max_retries=0) as client:
        message = await client.messages.create(**PARAMS)  # type: ignore[call-overload]

    assert message.content[0].text == "Echo: Hi"
    assert message.stop_reason == "end_turn" and message.usage.output_tokens == 2
    recorded = server.last_request
    assert (recorded.method, recorded.path, recorded.json) == ("POST", "/v1/messages", PARAMS)
    assert recorded.headers["x-api-key"] == "k"


@pytest.mark.parametrize(
    ("params", "complaint"),
    [
        ({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "max_tokens: Field required"),
        ({**PARAMS, "messages": [{"role": "system", "content": "x"}]}, "role"),
    ],
)
async def test_requests_the_api_would_reject_get_a_400(
    server: AnthropicServer, params: dict[str, object], complaint: str
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        response = await client.post("/v1/messages", json=params)
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert complaint in error["error"]["message"]


async def test_a_failing_handler_is_reported(server: AnthropicServer) -> None:
    server.handler = lambda body: 1 / 0  # type: ignore[assignment,return-value]
    async with anthropic.AsyncAnthropic(api_key="k", base_url=server.base_url, max_retries=0) as client:
        with pytest.raises(anthropic.InternalServerError, match="ZeroDivisionError"):
            await client.messages.create(**PARAMS)  # type: ignore[call-overload]
    assert isinstance(server.errors.pop(), ZeroDivisionError)  # popped: the fixture would fail the test


def test_only_loopback_and_clean_restart() -> None:
    server = AnthropicServer()
    with pytest.raises(RuntimeError, match="not running"):
        server.base_url  # noqa: B018
    with server:
        assert server.base_url.startswith("http://127.0.0.1:")
        with httpx.Client() as client:
            assert client.get(f"{server.base_url}/v1/models").status_code == 404
    with server:  # can be started again
        assert server.base_url.startswith("http://127.0.0.1:")
