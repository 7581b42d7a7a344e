"""The OpenAI test server itself: wire format, scripting API and recording."""

from __future__ import annotations

import http.client
import json
from typing import Any

import openai
import pytest

from tests.servers.openai_server import ErrorReply, OpenAIServer, Reply, ToolCallReply


def post(server: OpenAIServer, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def events(raw: bytes) -> list[str]:
    return [line.removeprefix("data: ") for line in raw.decode().split("\n\n") if line.startswith("data: ")]


BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}


def test_server_sent_events_wire_format(openai_server: OpenAIServer) -> None:
    openai_server.enqueue(Reply("abcdef", chunk_size=2, usage=(3, 2)))
    status, headers, raw = post(
        openai_server, {**BODY, "stream": True, "stream_options": {"include_usage": True}}
    )
    assert status == 200
    assert headers["Content-Type"].startswith("text/event-stream")
    data = events(raw)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(item) for item in data[:-1]]
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk["id"] for chunk in chunks}) == 1
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "abcdef"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


def test_no_usage_chunk_unless_asked(openai_server: OpenAIServer) -> None:
    _, _, raw = post(openai_server, {**BODY, "stream": True})
    chunks = [json.loads(item) for item in events(raw)[:-1]]
    assert all(chunk["choices"] for chunk in chunks)
    assert "usage" not in chunks[-1]


def test_tool_call_arguments_stream_in_fragments(openai_server: OpenAIServer) -> None:
    openai_server.enqueue(Reply(tool_calls=[ToolCallReply("lookup", {"query": "plait workflows"}, id="c1")]))
    _, _, raw = post(openai_server, {**BODY, "stream": True})
    deltas = [json.loads(item)["choices"][0]["delta"] for item in events(raw)[:-1]]
    fragments = [d["tool_calls"][0] for d in deltas if d.get("tool_calls")]
    assert fragments[0]["id"] == "c1" and fragments[0]["function"]["name"] == "lookup"
    assert len(fragments) > 3
    arguments = "".join(f["function"]["arguments"] for f in fragments)
    assert json.loads(arguments) == {"query": "plait workflows"}


def test_error_reply_shape_and_headers(openai_server: OpenAIServer) -> None:
    openai_server.enqueue(ErrorReply(429, "Slow down", headers={"Retry-After": "1"}))
    status, headers, raw = post(openai_server, BODY)
    assert status == 429
    assert headers["Retry-After"] == "1"
    assert json.loads(raw) == {
        "error": {"message": "Slow down", "type": "rate_limit_exceeded", "param": None, "code": None}
    }


def test_invalid_requests_are_rejected_like_openai(openai_server: OpenAIServer) -> None:
    status, _, raw = post(openai_server, {"model": "gpt-4o-mini"})
    assert status == 400
    assert "messages" in json.loads(raw)["error"]["message"]


async def test_sdk_sees_models_handler_and_recorded_headers(openai_server: OpenAIServer) -> None:
    def handler(body: dict[str, Any]) -> Reply | str:
        if body.get("temperature") == 0:
            return Reply(json.dumps({"answer": 42}), usage=(1, 1))
        return "plain"

    openai_server.handler = handler
    async with openai.AsyncOpenAI(
        base_url=openai_server.base_url, api_key="sk-test", max_retries=0
    ) as client:
        models = await client.models.list()
        assert [m.id for m in models.data] == ["gpt-4o-mini", "gpt-4o"]
        completion = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "?"}], temperature=0
        )
        assert json.loads(completion.choices[0].message.content or "") == {"answer": 42}
        completion = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "?"}]
        )
        assert completion.choices[0].message.content == "plain"
    assert [r.method for r in openai_server.requests] == ["GET", "POST", "POST"]
    assert openai_server.requests[1].headers["authorization"] == "Bearer sk-test"
    assert openai_server.chat_requests[0]["temperature"] == 0


def test_scripted_replies_come_before_the_handler(openai_server: OpenAIServer) -> None:
    openai_server.handler = lambda body: "from handler"
    openai_server.enqueue("scripted")
    first = json.loads(post(openai_server, BODY)[2])
    second = json.loads(post(openai_server, BODY)[2])
    assert first["choices"][0]["message"]["content"] == "scripted"
    assert second["choices"][0]["message"]["content"] == "from handler"
    openai_server.reset()
    assert openai_server.requests == [] and openai_server.handler is None


def test_enqueue_rejects_unknown_replies(openai_server: OpenAIServer) -> None:
    with pytest.raises(TypeError, match="expected a Reply, ErrorReply or str"):
        openai_server.enqueue({"content": "x"})  # type: ignore[arg-type]


def test_listens_on_loopback_only_and_stops() -> None:
    with OpenAIServer() as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert server.base_url.endswith("/v1")
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url
    assert server.errors == []
