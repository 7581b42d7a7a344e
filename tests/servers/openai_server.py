"""A local HTTP server that speaks the OpenAI Chat Completions wire protocol.

Tests point the real ``openai`` SDK (or anything OpenAI-compatible) at it and
script what it answers. It listens on 127.0.0.1 only, on a free port, in a
background thread.

What it serves:

* ``POST /v1/chat/completions``: a JSON ``chat.completion``, or with
  ``"stream": true`` server-sent events (``data: {chunk}`` lines, a usage
  chunk when ``stream_options.include_usage`` is set, then ``data: [DONE]``).
  Tool-call arguments stream as fragments over several chunks, as OpenAI does.
* ``GET /v1/models``: the model ids the server knows (``models=``).

What it answers, in order of precedence:

1. the next scripted reply from :meth:`OpenAIServer.enqueue` (first in, first out);
2. ``handler(request_json)`` when a handler is set;
3. a deterministic default: ``"Echo: <last user message>"``, or, when the request
   asks for a JSON schema (``response_format``), a JSON object that fits it.

A reply is a :class:`Reply` (text, tool calls, usage, finish reason, a dropped
connection or an in-stream error event after N chunks, delays), an
:class:`ErrorReply` (status, message, type, code, headers such as
``Retry-After``), or a plain ``str`` (a text reply). Every request is recorded,
body and headers, in :attr:`OpenAIServer.requests` (``chat_requests`` for the
chat bodies only); unexpected exceptions inside the server land in
:attr:`OpenAIServer.errors`.

Example::

    from tests.servers.openai_server import ErrorReply, OpenAIServer, Reply, ToolCallReply

    with OpenAIServer() as server:
        server.enqueue(
            ErrorReply(429, "Slow down", headers={"Retry-After": "0.05"}),
            Reply(tool_calls=[ToolCallReply("get_weather", {"city": "Paris"})]),
            "It is sunny in Paris.",
        )
        client = openai.OpenAI(base_url=server.base_url, api_key="test")
        ...
        assert server.requests[-1].json["messages"][-1]["role"] == "tool"

As a pytest fixture, use :func:`openai_server` (yields a running server, stops
it afterwards and fails the test if the server itself raised); import it into a
``conftest.py``. Remember to close the clients you point at it (``async with``),
since pytest here turns an unclosed connection's ResourceWarning into a failure.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import pytest

__all__ = [
    "ErrorReply",
    "OpenAIServer",
    "RecordedRequest",
    "Reply",
    "ReplyLike",
    "ToolCallReply",
    "openai_server",
]


@dataclass(slots=True)
class ToolCallReply:
    """One tool call the model "makes". ``arguments`` may be a dict or a raw JSON string."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None


@dataclass(slots=True)
class Reply:
    """A successful completion.

    ``usage`` is ``(prompt_tokens, completion_tokens)``; by default both are
    counted as words, so they are deterministic but not zero. ``finish_reason``
    defaults to ``"tool_calls"`` when there are tool calls, else ``"stop"``.

    Streaming only: ``chunk_size`` is the number of characters per content or
    argument fragment; ``drop_after`` closes the connection abruptly after that
    many chunks (no ``[DONE]``, an incomplete chunked body); ``chunk_delay``
    sleeps between chunks. ``delay`` sleeps before anything is sent (streaming
    or not), to exercise client timeouts. Without streaming, ``drop_after``
    closes the connection without sending a response. ``stream_error`` is sent
    as an in-stream error event (``data: {"error": ...}``, status 200) after
    ``drop_after`` chunks (all chunks when unset), the way OpenAI reports
    failures that happen after a stream has started.

    Byte-level faults of a misbehaving server or proxy: ``end_after`` ends the
    body cleanly after that many chunks, so the stream lacks its finish reason
    and ``[DONE]``; ``framing="close"`` sends the body without chunked encoding
    or a length, ended by closing the connection (so a cut there looks like a
    clean end to the client); ``no_choices`` answers with an empty ``choices``
    list (every chunk's, when streaming); ``malformed_after`` sends a chunk that
    is not JSON after that many chunks; ``drip`` sends, before the answer, an
    SSE comment (streaming) or a blank (JSON body) every ``drip`` seconds for
    ``drip_for`` seconds, so no single read ever times out.
    """

    content: str | None = None
    tool_calls: list[ToolCallReply] = field(default_factory=list)
    usage: tuple[int, int] | None = None
    finish_reason: str | None = None
    model: str | None = None
    chunk_size: int = 4
    drop_after: int | None = None
    chunk_delay: float = 0.0
    delay: float = 0.0
    stream_error: ErrorReply | None = None
    end_after: int | None = None
    framing: Literal["chunked", "close"] = "chunked"
    no_choices: bool = False
    malformed_after: int | None = None
    drip: float | None = None
    drip_for: float = 30.0
    #: the reasoning text some OpenAI-compatible servers (DeepSeek, vLLM) return beside the answer
    reasoning_content: str | None = None


@dataclass(slots=True)
class ErrorReply:
    """An HTTP error in OpenAI's shape: ``{"error": {"message", "type", "code", "param"}}``.

    ``body`` replaces that JSON body entirely when given (a dict, or raw text).
    ``echo_header`` names a request header whose value is quoted at the end of
    the message, as some servers and gateways quote the credentials they refused.
    """

    status: int
    message: str = "error"
    type: str | None = None
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | str | None = None
    echo_header: str | None = None


ReplyLike = Reply | ErrorReply | str
Handler = Callable[[dict[str, Any]], ReplyLike]


@dataclass(slots=True)
class RecordedRequest:
    """One request as the server received it. Header names are lower-cased."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    received_at: float  # time.monotonic()


_DEFAULT_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
}


class OpenAIServer:
    """A scriptable OpenAI Chat Completions server on ``127.0.0.1``; see the module docstring.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, *, models: tuple[str, ...] = ("gpt-4o-mini", "gpt-4o")) -> None:
        self.models = models
        self.handler: Handler | None = None
        self.requests: list[RecordedRequest] = []
        #: Tracebacks of unexpected exceptions in the server (a bug in it or in a handler).
        self.errors: list[str] = []
        self._replies: deque[ReplyLike] = deque()
        self._lock = threading.Lock()
        self._ids = 0
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> OpenAIServer:
        if self._httpd is not None:
            return self
        # Loopback only, port chosen by the OS: never reachable from elsewhere.
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler, self)
        self._thread = threading.Thread(
            # A short poll interval keeps stop() quick: shutdown() waits for the next poll.
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.01},
            name="openai-test-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()  # joins the per-connection threads
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        if self._httpd is None:
            raise RuntimeError("OpenAIServer is not running: call start() or use it as a context manager")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def base_url(self) -> str:
        """The URL to give an OpenAI client: ``http://127.0.0.1:<port>/v1``."""
        return f"{self.url}/v1"

    # -- scripting -----------------------------------------------------------------

    def enqueue(self, *replies: ReplyLike) -> None:
        """Answer the next chat-completion requests with these replies, in order."""
        for reply in replies:
            if not isinstance(reply, (Reply, ErrorReply, str)):
                raise TypeError(f"expected a Reply, ErrorReply or str, got {reply!r}")
        with self._lock:
            self._replies.extend(replies)

    @property
    def pending(self) -> int:
        """How many scripted replies have not been used yet."""
        with self._lock:
            return len(self._replies)

    def reset(self) -> None:
        """Forget scripted replies, the handler and recorded requests."""
        with self._lock:
            self._replies.clear()
            self.requests.clear()
            self.handler = None

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            if not self.requests:
                raise AssertionError("the server has received no request")
            return self.requests[-1]

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        """The JSON bodies of every chat-completion request, in order."""
        with self._lock:
            return [r.json for r in self.requests if r.path.endswith("/chat/completions")]

    # -- internals used by the request handler -------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _next_id(self) -> str:
        with self._lock:
            self._ids += 1
            return f"{self._ids:06d}"

    def _choose_reply(self, body: dict[str, Any]) -> Reply | ErrorReply:
        with self._lock:
            reply: ReplyLike | None = self._replies.popleft() if self._replies else None
        if reply is None:
            reply = self.handler(body) if self.handler is not None else _default_reply(body)
        if isinstance(reply, str):
            reply = Reply(content=reply)
        if not isinstance(reply, (Reply, ErrorReply)):
            raise TypeError(f"handler returned {reply!r}; expected a Reply, ErrorReply or str")
        return reply


# -- default answers ---------------------------------------------------------------


def _message_text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):  # content parts: keep the text ones
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content or ""


def _last_user_text(body: Mapping[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            return _message_text(message)
    return ""


def _default_reply(body: Mapping[str, Any]) -> Reply:
    text = _last_user_text(body)
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        schema = response_format.get("json_schema", {}).get("schema", {})
        return Reply(content=json.dumps(_example_for(schema, schema, text)))
    if response_format.get("type") == "json_object":
        return Reply(content=json.dumps({"echo": text}))
    return Reply(content=f"Echo: {text}")


def _example_for(schema: Mapping[str, Any], root: Mapping[str, Any], text: str) -> Any:
    """A deterministic value that fits ``schema``: strings echo ``text``."""
    if "$ref" in schema:
        target: Any = root
        for key in schema["$ref"].removeprefix("#/").split("/"):
            target = target[key]
        return _example_for(target, root, text)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for union in ("anyOf", "oneOf"):
        if union in schema:
            options = [s for s in schema[union] if s.get("type") != "null"] or schema[union]
            return _example_for(options[0], root, text)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        return {name: _example_for(sub, root, text) for name, sub in (schema.get("properties") or {}).items()}
    return {"string": text, "integer": 0, "number": 0.0, "boolean": False, "array": [], "null": None}.get(
        kind or "string", text
    )


def _count_words(body: Mapping[str, Any]) -> int:
    return sum(len(_message_text(m).split()) for m in body.get("messages") or [])


# -- wire format -------------------------------------------------------------------


def _tool_call_id(call: ToolCallReply, index: int, response_id: str) -> str:
    return call.id or f"call_{response_id}_{index}"


def _arguments_text(call: ToolCallReply) -> str:
    return call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments)


def _usage(reply: Reply, body: Mapping[str, Any]) -> dict[str, int]:
    prompt, completion = reply.usage or (
        _count_words(body),
        len((reply.content or "").split()) + sum(len(_arguments_text(c)) // 4 + 1 for c in reply.tool_calls),
    )
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _finish_reason(reply: Reply) -> str:
    return reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")


def _completion(reply: Reply, body: Mapping[str, Any], response_id: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
    if reply.reasoning_content is not None:
        message["reasoning_content"] = reply.reasoning_content
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": _tool_call_id(call, i, response_id),
                "type": "function",
                "function": {"name": call.name, "arguments": _arguments_text(call)},
            }
            for i, call in enumerate(reply.tool_calls)
        ]
    return {
        "id": f"chatcmpl-{response_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": reply.model or body.get("model", "unknown"),
        "choices": []
        if reply.no_choices
        else [{"index": 0, "message": message, "finish_reason": _finish_reason(reply), "logprobs": None}],
        "usage": _usage(reply, body),
    }


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), max(1, size))]


def _chunks(reply: Reply, body: Mapping[str, Any], response_id: str) -> Iterator[dict[str, Any]]:
    """The ``chat.completion.chunk`` objects of a streamed reply, in order."""
    base = {
        "id": f"chatcmpl-{response_id}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": reply.model or body.get("model", "unknown"),
    }

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        if reply.no_choices:
            return {**base, "choices": []}
        return {
            **base,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
        }

    yield chunk({"role": "assistant", "content": ""})
    for piece in _pieces(reply.reasoning_content or "", reply.chunk_size):
        yield chunk({"reasoning_content": piece})
    for piece in _pieces(reply.content or "", reply.chunk_size):
        yield chunk({"content": piece})
    for index, call in enumerate(reply.tool_calls):
        # First the id and name with empty arguments, then the arguments in fragments.
        yield chunk(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": _tool_call_id(call, index, response_id),
                        "type": "function",
                        "function": {"name": call.name, "arguments": ""},
                    }
                ]
            }
        )
        for piece in _pieces(_arguments_text(call), reply.chunk_size):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    yield chunk({}, _finish_reason(reply))
    if (body.get("stream_options") or {}).get("include_usage"):
        yield {**base, "choices": [], "usage": _usage(reply, body)}


def _error_payload(reply: ErrorReply, headers: Mapping[str, str] | None = None) -> dict[str, Any] | str:
    if reply.body is not None:
        return reply.body
    message = reply.message
    if reply.echo_header is not None:
        message += f" ({reply.echo_header}: {(headers or {}).get(reply.echo_header.lower(), '')})"
    error_type = reply.type or _DEFAULT_ERROR_TYPES.get(reply.status, "server_error")
    return {"error": {"message": message, "type": error_type, "param": None, "code": reply.code}}


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins them, so nothing outlives stop()
    block_on_close = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], owner: OpenAIServer):
        self.owner = owner
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return  # the client went away: an everyday event for a test server
        self.owner.errors.append(traceback.format_exc())
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """Wake handler threads blocked on idle keep-alive connections so they can end."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Dropped(Exception):
    """The scripted reply asked to drop the connection."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked transfer encoding
    timeout = 30  # an idle client cannot hold a thread forever
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # tests stay quiet
        pass

    @property
    def owner(self) -> OpenAIServer:
        return self.server.owner

    def _record(self, body: Any) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.owner._record(RecordedRequest(self.command, self.path, headers, body, time.monotonic()))

    def _send_json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _drop(self) -> None:
        self.close_connection = True
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)
        raise _Dropped

    def do_GET(self) -> None:
        self._record(None)
        if re.fullmatch(r"/(v1/)?models/?", self.path):
            models = [
                {"id": m, "object": "model", "created": 0, "owned_by": "plait-tests"}
                for m in self.owner.models
            ]
            self._send_json(200, {"object": "list", "data": models})
        else:
            self._send_error(ErrorReply(404, f"Unknown path {self.path}"))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            self._record(raw.decode(errors="replace"))
            self._send_error(ErrorReply(400, "We could not parse the JSON body of your request."))
            return
        self._record(body)
        if not re.fullmatch(r"/(v1/)?chat/completions/?", self.path):
            self._send_error(ErrorReply(404, f"Unknown path {self.path}"))
            return
        if not isinstance(body, dict) or not body.get("messages") or not body.get("model"):
            self._send_error(ErrorReply(400, "'model' and 'messages' are required properties."))
            return
        reply = self.owner._choose_reply(body)
        try:
            if isinstance(reply, ErrorReply):
                self._send_error(reply)
            elif body.get("stream"):
                self._stream(reply, body)
            elif reply.drip is not None or reply.framing == "close":
                self._send_body(reply, "application/json", body)
            else:
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.drop_after is not None:
                    self._drop()
                self._send_json(200, _completion(reply, body, self.owner._next_id()))
        except (_Dropped, BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _send_error(self, reply: ErrorReply) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        self._send_json(reply.status, _error_payload(reply, headers), reply.headers)

    def _start_body(self, reply: Reply, content_type: str) -> None:
        """Status and headers of a body sent piece by piece: chunked, or ended by closing."""
        if reply.delay:
            time.sleep(reply.delay)
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-cache")
        if reply.framing == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
        else:  # no length, no chunks: the body is whatever arrives before the connection closes
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()

    def _drip(self, reply: Reply, piece: bytes) -> None:
        """``piece`` every ``reply.drip`` seconds for ``reply.drip_for`` seconds (or until the client leaves)."""
        if reply.drip is None:
            return
        until = time.monotonic() + reply.drip_for
        while time.monotonic() < until:
            self._write(reply, piece)
            time.sleep(reply.drip)

    def _send_body(self, reply: Reply, content_type: str, body: dict[str, Any]) -> None:
        """A non-streaming completion after a drip of blanks (valid JSON whitespace)."""
        self._start_body(reply, content_type)
        self._drip(reply, b" ")
        self._write(reply, json.dumps(_completion(reply, body, self.owner._next_id())).encode())
        self._end_body(reply)

    def _stream(self, reply: Reply, body: dict[str, Any]) -> None:
        self._start_body(reply, "text/event-stream; charset=utf-8")
        self._drip(reply, b": keep-alive\n\n")
        for sent, chunk in enumerate(_chunks(reply, body, self.owner._next_id())):
            if reply.drop_after is not None and sent >= reply.drop_after:
                break
            if reply.end_after is not None and sent >= reply.end_after:
                self._end_body(reply)  # a clean end, without finish reason or [DONE]
                return
            if reply.malformed_after is not None and sent == reply.malformed_after:
                self._write_event(reply, '{"id": "chatcmpl-broken", "choices": [{"delta": {"cont')
            if reply.chunk_delay and sent:
                time.sleep(reply.chunk_delay)
            self._write_event(reply, json.dumps(chunk))
        if reply.stream_error is not None:
            self._write_event(reply, json.dumps(_error_payload(reply.stream_error)))
        elif reply.drop_after is not None:
            self._drop()
        self._write_event(reply, "[DONE]")
        self._end_body(reply)

    def _write_event(self, reply: Reply, data: str) -> None:
        self._write(reply, f"data: {data}\n\n".encode())

    def _write(self, reply: Reply, data: bytes) -> None:
        if reply.framing == "chunked":
            data = f"{len(data):x}\r\n".encode() + data + b"\r\n"
        self.wfile.write(data)
        self.wfile.flush()

    def _end_body(self, reply: Reply) -> None:
        if reply.framing == "chunked":
            self.wfile.write(b"0\r\n\r\n")  # the last chunk
            self.wfile.flush()
        else:
            self.close_connection = True
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)  # the end of a close-delimited body


@pytest.fixture
def openai_server() -> Iterator[OpenAIServer]:
    """A running :class:`OpenAIServer`, stopped after the test, which fails if the server itself failed."""
    with OpenAIServer() as server:
        yield server
    assert not server.errors, "the OpenAI test server raised:\n" + "\n".join(server.errors)
