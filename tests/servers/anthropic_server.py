"""A local server speaking the Anthropic Messages wire protocol, for tests.

It listens on ``127.0.0.1`` (a free port) in a background thread and answers
``POST /v1/messages`` the way the real API does: a JSON message, or, when the
request says ``"stream": true``, server-sent events in the real order
(``message_start``, ``content_block_start``, ``ping``, ``content_block_delta``
with ``text_delta`` / ``input_json_delta`` fragments, ``content_block_stop``,
``message_delta`` with usage and ``stop_reason``, ``message_stop``).

What it answers, first match wins:

1. the next reply queued with :meth:`AnthropicServer.enqueue`;
2. ``server.handler(request_json)`` when set (returning a :class:`Reply` or a string);
3. ``"Echo: <text of the last user message>"``.

Failures are replies too: :meth:`Reply.error` (an HTTP error with the API's JSON
error body and any headers, e.g. ``retry-after``), ``stream_error=`` (an SSE
``error`` event after some events), ``drop_after=`` (the connection is cut after
that many events), ``end_after=`` (the stream ends early but cleanly) and
``delay=`` (seconds before answering). Every request is
recorded in :attr:`AnthropicServer.requests`, JSON body and headers included;
an exception while answering (say, in ``handler``) is answered with a 500 and
kept in :attr:`AnthropicServer.errors`.

Like the real API, it rejects requests the API would reject: a missing
``max_tokens`` or ``model``, a ``system`` role inside ``messages``, a ``tool_use``
not answered by a ``tool_result`` in the next user turn, and (when the server is
given ``api_key=``) a wrong ``x-api-key``.

Example::

    from anthropic import Anthropic
    from tests.servers.anthropic_server import AnthropicServer, Reply

    with AnthropicServer() as server:
        server.enqueue(
            Reply.error(429, "rate_limit_error", "Slow down", headers={"retry-after": "2"}),
            Reply.tool_use("get_weather", {"city": "Paris"}, text="Let me check."),
            Reply.text("It is sunny.", usage=(12, 4)),
        )
        client = Anthropic(base_url=server.base_url, api_key="test", max_retries=0)
        ...
        assert server.requests[-1].json["messages"][-1]["content"][0]["type"] == "tool_result"
        assert server.requests[-1].headers["anthropic-version"] == "2023-06-01"

As a pytest fixture, use :func:`anthropic_server` (import it into a conftest).
"""

from __future__ import annotations

import itertools
import json
import re
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import pytest

__all__ = [
    "AnthropicServer",
    "RecordedRequest",
    "RedactedThinkingBlock",
    "Reply",
    "TextBlock",
    "ThinkingBlock",
    "ToolUseBlock",
    "anthropic_server",
]

Handler = Callable[[dict[str, Any]], "Reply | str"]


@dataclass(frozen=True, slots=True)
class TextBlock:
    """A ``text`` content block of a reply."""

    text: str


@dataclass(frozen=True, slots=True)
class ThinkingBlock:
    """A ``thinking`` block (extended thinking); streamed as ``thinking_delta`` pieces and one
    ``signature_delta``. ``signature`` defaults to one derived from the text, which the server
    checks when the block is sent back."""

    thinking: str
    signature: str | None = None


@dataclass(frozen=True, slots=True)
class RedactedThinkingBlock:
    """A ``redacted_thinking`` block: encrypted reasoning, ``data``, to be sent back as it came."""

    data: str


Block = TextBlock | ThinkingBlock | RedactedThinkingBlock  # and ToolUseBlock, below


def signature_of(thinking: str) -> str:
    """The signature the server gives a thinking text (and expects back with it)."""
    import hashlib

    return "sig-" + hashlib.sha256(thinking.encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class ToolUseBlock:
    """A ``tool_use`` content block; ``id`` defaults to a fresh ``toolu_...`` id.

    ``input`` may be raw text (streaming only) to send JSON the real API never
    would, or that a ``max_tokens`` stop cut off.
    """

    name: str
    input: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None


@dataclass(slots=True)
class Reply:
    """One scripted answer.

    ``content`` is the assistant message; ``stop_reason`` defaults to ``"tool_use"``
    when it has a tool call, else ``"end_turn"``. ``usage`` is ``(input_tokens,
    output_tokens)``, computed from word counts when not given. ``status`` other
    than 200 makes it an HTTP error (see :meth:`error`).

    Streaming only: ``stream_error=(error_type, message)`` sends an SSE ``error``
    event after ``stream_error_after`` events (default: after the content blocks,
    before ``message_delta``); ``drop_after=N`` cuts the connection after N
    events, mid-body; ``end_after=N`` ends the body cleanly after N events, so
    the stream lacks its ``message_stop``.

    More byte-level faults: ``framing="close"`` sends the stream without chunked
    encoding or a length, ended by closing the connection (a cut there looks like
    a clean end to the client); ``malformed_after=N`` sends an event whose data is
    not JSON after N events (without streaming: only the first N bytes of the JSON
    body); ``drip=s`` sends a ``ping`` event (streaming) or a
    blank (JSON body) every ``s`` seconds for ``drip_for`` seconds before the
    answer, so no single read ever times out. ``echo_header`` quotes that request
    header's value at the end of an error's message, as some gateways quote the
    credentials they refused.
    """

    content: list[Block | ToolUseBlock] = field(default_factory=list)
    stop_reason: str | None = None
    usage: tuple[int, int] | None = None
    model: str | None = None
    status: int = 200
    error_type: str | None = None
    error_message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    stream_error: tuple[str, str] | None = None
    stream_error_after: int | None = None
    drop_after: int | None = None
    end_after: int | None = None
    delay: float = 0.0
    framing: Literal["chunked", "close"] = "chunked"
    malformed_after: int | None = None
    drip: float | None = None
    drip_for: float = 30.0
    echo_header: str | None = None

    @classmethod
    def text(cls, text: str, **options: Any) -> Reply:
        """A plain text answer."""
        return cls(content=[TextBlock(text)], **options)

    @classmethod
    def tool_use(
        cls,
        name: str,
        input: dict[str, Any] | str | None = None,
        *,
        id: str | None = None,
        text: str | None = None,
        **options: Any,
    ) -> Reply:
        """A tool call, optionally preceded by some text (raw text ``input``: streaming only)."""
        blocks: list[Block | ToolUseBlock] = [TextBlock(text)] if text else []
        blocks.append(ToolUseBlock(name, input if isinstance(input, str) else dict(input or {}), id))
        return cls(content=blocks, **options)

    @classmethod
    def error(
        cls,
        status: int,
        error_type: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        echo_header: str | None = None,
    ) -> Reply:
        """An HTTP error with the API's body: ``{"type": "error", "error": {...}}``."""
        return cls(
            status=status,
            error_type=error_type,
            error_message=message,
            headers=dict(headers or {}),
            delay=delay,
            echo_header=echo_header,
        )


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """A request as the server received it; header names are lower-case."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any


class AnthropicServer:
    """The Anthropic Messages API on ``127.0.0.1``, in a background thread.

    Start and stop it with ``with AnthropicServer() as server:`` (or
    :meth:`start` / :meth:`close`); point an SDK at :attr:`base_url`.
    """

    def __init__(self, *, api_key: str | None = None, handler: Handler | None = None) -> None:
        self.api_key = api_key
        self.handler = handler
        self.requests: list[RecordedRequest] = []
        #: Exceptions raised while answering (a failing ``handler`` included); the
        #: :func:`anthropic_server` fixture fails the test when any is left here.
        self.errors: list[BaseException] = []
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> AnthropicServer:
        if self._httpd is not None:
            raise RuntimeError("AnthropicServer is already running")
        self._stopping.clear()
        self._httpd = _HTTPServer(("127.0.0.1", 0), _RequestHandler, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, cut open connections and wait for every handler thread."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self._stopping.set()
        httpd.shutdown()
        thread.join()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        httpd.server_close()  # joins the handler threads
        self._httpd = self._thread = None

    def __enter__(self) -> AnthropicServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``: the SDK's ``base_url``."""
        if self._httpd is None:
            raise RuntimeError("AnthropicServer is not running; use it as a context manager or call start()")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- scripting -------------------------------------------------------------------

    def enqueue(self, *replies: Reply | str) -> None:
        """Queue replies, answered in order, one per request (a string is a text reply)."""
        with self._lock:
            self._replies.extend(Reply.text(r) if isinstance(r, str) else r for r in replies)

    @property
    def pending(self) -> int:
        """How many queued replies have not been used yet."""
        with self._lock:
            return len(self._replies)

    @property
    def last_request(self) -> RecordedRequest:
        if not self.requests:
            raise AssertionError("the server has received no request")
        return self.requests[-1]

    def reset(self) -> None:
        """Forget recorded requests, queued replies and the handler."""
        with self._lock:
            self.requests.clear()
            self._replies.clear()
            self.handler = None

    # -- answering (called from handler threads) ----------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if self._replies:
                return self._replies.popleft()
        if self.handler is not None:
            reply = self.handler(body)
            return Reply.text(reply) if isinstance(reply, str) else reply
        return Reply.text(f"Echo: {_last_user_text(body.get('messages', []))}")

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"


# -- request validation, as the real API does it --------------------------------------------


def _validate(body: Any) -> str | None:
    """The API's complaint about ``body``, or None when it is acceptable."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    for required in ("model", "max_tokens", "messages"):
        if required not in body:
            return f"{required}: Field required"
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            return f'messages.{i}.role: Input should be "user" or "assistant", got {role!r}'
        if i and role == messages[i - 1]["role"] == "assistant":
            return f"messages.{i}: consecutive assistant turns must be merged"
        open_calls = [b["id"] for b in _blocks(message) if b.get("type") == "tool_use"]
        if open_calls:
            following = messages[i + 1] if i + 1 < len(messages) else None
            answered = {
                b.get("tool_use_id")
                for b in (_blocks(following) if following and following["role"] == "user" else [])
                if b.get("type") == "tool_result"
            }
            for b in _blocks(following) if following and following["role"] == "user" else []:
                if b.get("type") == "tool_result" and not isinstance(b.get("is_error", False), bool):
                    return f"messages.{i + 1}: tool_result.is_error: Input should be a valid boolean"
            missing = [call for call in open_calls if call not in answered]
            if missing:
                return (
                    f"messages.{i + 1}: `tool_use` ids were found without `tool_result` blocks "
                    f"immediately after: {', '.join(missing)}. Each `tool_use` block must have a "
                    "corresponding `tool_result` block in the next message."
                )
    return _thinking_complaint(body)


def _thinking_complaint(body: dict[str, Any]) -> str | None:
    """With extended thinking on, the API wants the last assistant turn of a tool loop to start
    with its thinking block, sent back unchanged (the signature must match its text)."""
    if (body.get("thinking") or {}).get("type") != "enabled":
        return None
    turns = [(i, m) for i, m in enumerate(body["messages"]) if m.get("role") == "assistant"]
    if not turns:
        return None
    i, last = turns[-1]
    blocks = _blocks(last)
    if not any(b.get("type") == "tool_use" for b in blocks):
        return None
    first = blocks[0] if blocks else {}
    if first.get("type") not in ("thinking", "redacted_thinking"):
        return (
            f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
            f"`{first.get('type')}`. When `thinking` is enabled, a final `assistant` message must start "
            "with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks)."
        )
    for n, b in enumerate(blocks):
        if b.get("type") == "thinking" and b.get("signature") != signature_of(str(b.get("thinking"))):
            return f"messages.{i}.content.{n}: Invalid `signature` in `thinking` block"
    return None


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content or [] if isinstance(b, dict)]


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            texts = [b.get("text", "") for b in _blocks(message) if b.get("type") == "text"]
            if texts:
                return "\n".join(texts)
    return ""


def _count_tokens(text: str) -> int:
    return len(text.split())


def _input_tokens(body: dict[str, Any]) -> int:
    system = body.get("system") or ""
    words = _count_tokens(system if isinstance(system, str) else json.dumps(system))
    for message in body.get("messages", []):
        for block in _blocks(message):
            words += _count_tokens(block.get("text") or json.dumps(block))
    return max(1, words)


# -- rendering ---------------------------------------------------------------------------


def _block_json(block: Block | ToolUseBlock, tool_id: str) -> dict[str, Any]:
    if isinstance(block, TextBlock):
        return {"type": "text", "text": block.text}
    if isinstance(block, ThinkingBlock):
        signature = block.signature or signature_of(block.thinking)
        return {"type": "thinking", "thinking": block.thinking, "signature": signature}
    if isinstance(block, RedactedThinkingBlock):
        return {"type": "redacted_thinking", "data": block.data}
    return {"type": "tool_use", "id": block.id or tool_id, "name": block.name, "input": block.input}


def _text_fragments(text: str) -> list[str]:
    # Word by word, the whitespace kept: fragments join back to the exact text.
    return re.findall(r"\s*\S+\s*|\s+", text) or [""]


def _json_fragments(data: dict[str, Any] | str, size: int = 7) -> list[str]:
    # The API starts every tool input with an empty fragment, then sends pieces
    # that are not valid JSON on their own.
    encoded = data if isinstance(data, str) else json.dumps(data)
    return ["", *(encoded[i : i + size] for i in range(0, len(encoded), size))]


def _sse_events(reply: Reply, message: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The full event sequence of ``message`` (a rendered non-streaming message)."""
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
    start["usage"] = {"input_tokens": message["usage"]["input_tokens"], "output_tokens": 1}
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start})
    ]
    for index, block in enumerate(message["content"]):
        opening: dict[str, Any]
        if block["type"] == "text":
            opening = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": piece} for piece in _text_fragments(block["text"])]
        elif block["type"] == "thinking":
            opening = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [
                *({"type": "thinking_delta", "thinking": p} for p in _text_fragments(block["thinking"])),
                {"type": "signature_delta", "signature": block["signature"]},
            ]
        elif block["type"] == "redacted_thinking":
            opening, deltas = block, []
        else:
            opening = {**block, "input": {}}
            deltas = [
                {"type": "input_json_delta", "partial_json": p} for p in _json_fragments(block["input"])
            ]
        events.append(
            ("content_block_start", {"type": "content_block_start", "index": index, "content_block": opening})
        )
        if index == 0:
            events.append(("ping", {"type": "ping"}))
        events.extend(
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            for delta in deltas
        )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    if not message["content"]:
        events.append(("ping", {"type": "ping"}))
    if reply.stream_error is not None:
        error_type, error_message = reply.stream_error
        error = ("error", {"type": "error", "error": {"type": error_type, "message": error_message}})
        at = len(events) if reply.stream_error_after is None else reply.stream_error_after
        return [*events[:at], error]
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": message["usage"]["output_tokens"]},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins them: no thread outlives the server
    block_on_close = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], owner: AnthropicServer
    ):
        self.owner = owner
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exception()
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return  # the client hung up or went quiet: normal for aborted streams
        if exc is not None:
            with self.owner._lock:
                self.owner.errors.append(exc)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked streaming, like the real API
    timeout = 30
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        with self.server.owner._lock:
            self.server.owner._connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.owner._lock:
                self.server.owner._connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    # -- routes ------------------------------------------------------------------------

    def do_POST(self) -> None:
        owner = self.server.owner
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = None
        headers = {name.lower(): value for name, value in self.headers.items()}
        owner._record(RecordedRequest("POST", self.path, headers, body))

        if self.path.split("?")[0] != "/v1/messages":
            self._send_error(404, "not_found_error", f"Not found: {self.path}")
            return
        if owner.api_key is not None and headers.get("x-api-key") != owner.api_key:
            self._send_error(401, "authentication_error", "invalid x-api-key")
            return
        complaint = _validate(body)
        if complaint is not None:
            self._send_error(400, "invalid_request_error", complaint)
            return

        try:
            reply = owner._next_reply(body)
        except Exception as exc:
            with owner._lock:
                owner.errors.append(exc)
            self._send_error(500, "api_error", f"test server handler failed: {exc!r}")
            return
        if reply.delay and owner._stopping.wait(reply.delay):
            return
        if reply.status != 200:
            error_message = reply.error_message or "error"
            if reply.echo_header is not None:
                error_message += f" ({reply.echo_header}: {headers.get(reply.echo_header.lower(), '')})"
            self._send_error(reply.status, reply.error_type or "api_error", error_message, reply.headers)
            return
        message = self._render(reply, body)
        try:
            if body.get("stream"):
                self._send_stream(reply, message)
            elif reply.drip is not None or reply.framing == "close" or reply.malformed_after is not None:
                self._start_body(reply, "application/json")
                self._drip(reply, b" ")  # blanks before the JSON: valid, and never a silent second
                data = json.dumps(message).encode()
                self._write_chunk(
                    reply, data if reply.malformed_after is None else data[: reply.malformed_after]
                )
                self._end_body(reply)
            else:
                self._send_json(200, message, reply.headers)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (its timeout): an everyday event

    def do_GET(self) -> None:
        self.server.owner._record(
            RecordedRequest("GET", self.path, {k.lower(): v for k, v in self.headers.items()}, None)
        )
        self._send_error(404, "not_found_error", f"Not found: {self.path}")

    # -- responses -----------------------------------------------------------------------

    def _render(self, reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
        owner = self.server.owner
        content = [_block_json(block, owner._new_id("toolu")) for block in reply.content]
        has_tool_use = any(block["type"] == "tool_use" for block in content)
        if reply.usage is not None:
            input_tokens, output_tokens = reply.usage
        else:
            output_text = " ".join(b.get("text") or json.dumps(b.get("input")) for b in content)
            input_tokens, output_tokens = _input_tokens(body), max(1, _count_tokens(output_text))
        return {
            "id": owner._new_id("msg"),
            "type": "message",
            "role": "assistant",
            "model": reply.model or body["model"],
            "content": content,
            "stop_reason": reply.stop_reason or ("tool_use" if has_tool_use else "end_turn"),
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        }

    def _send_json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", self.server.owner._new_id("req"))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_error(
        self, status: int, error_type: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        payload = {"type": "error", "error": {"type": error_type, "message": message}}
        self._send_json(status, payload, headers)

    def _start_body(self, reply: Reply, content_type: str) -> None:
        """Status and headers of a body sent piece by piece: chunked, or ended by closing."""
        self.send_response(200)
        self.send_header("content-type", content_type)
        self.send_header("cache-control", "no-cache")
        if reply.framing == "chunked":
            self.send_header("transfer-encoding", "chunked")
        else:  # no length, no chunks: the body is whatever arrives before the connection closes
            self.send_header("connection", "close")
            self.close_connection = True
        self.send_header("request-id", self.server.owner._new_id("req"))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _drip(self, reply: Reply, piece: bytes) -> None:
        """``piece`` every ``reply.drip`` seconds for ``reply.drip_for`` seconds."""
        if reply.drip is None:
            return
        until = time.monotonic() + reply.drip_for
        while time.monotonic() < until and not self.server.owner._stopping.is_set():
            self._write_chunk(reply, piece)
            self.server.owner._stopping.wait(reply.drip)

    def _send_stream(self, reply: Reply, message: dict[str, Any]) -> None:
        self._start_body(reply, "text/event-stream; charset=utf-8")
        self._drip(reply, b'event: ping\ndata: {"type": "ping"}\n\n')
        for sent, (event, data) in enumerate(_sse_events(reply, message)):
            if reply.drop_after is not None and sent >= reply.drop_after:
                # Cut the connection mid-body: no terminating chunk, as when a proxy drops it.
                self.close_connection = True
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if reply.end_after is not None and sent >= reply.end_after:
                break
            if reply.malformed_after is not None and sent == reply.malformed_after:
                self._write_chunk(reply, b'event: content_block_delta\ndata: {"type": "content_block_del\n\n')
            self._write_chunk(reply, f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
        self._end_body(reply)

    def _write_chunk(self, reply: Reply, data: bytes) -> None:
        if reply.framing == "chunked":
            data = f"{len(data):x}\r\n".encode() + data + b"\r\n"
        self.wfile.write(data)
        self.wfile.flush()

    def _end_body(self, reply: Reply) -> None:
        if reply.framing == "chunked":
            self._write_chunk(reply, b"")  # the last chunk
        else:
            self.close_connection = True
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)  # the end of a close-delimited body


@pytest.fixture
def anthropic_server() -> Iterator[AnthropicServer]:
    """A running :class:`AnthropicServer`, closed after the test; fails the test on server errors."""
    with AnthropicServer() as server:
        yield server
    if server.errors:
        raise AssertionError(f"the Anthropic test server failed: {server.errors!r}") from server.errors[0]
