"""What guards every request: the bearer token, the body size limit, and errors as JSON.

Both guards are plain ASGI middleware, so they run before FastAPI reads a body: a request
without the token never reaches a route, and an oversized body is refused while it comes
in (a ``Content-Length`` over the limit at once, a chunked body once it crosses it). Every
error answers ``{"error": {"type": ..., "message": ...}}``, its message cleared of the
secrets the server knows (the token, the storage URL's credentials).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from plait.storage import scrub_secrets

__all__ = ["BodyLimit", "TokenAuth", "error_body", "is_loopback"]

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` keeps the server to this machine."""
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def error_body(kind: str, message: str, secrets: Iterable[str] = ()) -> dict[str, Any]:
    """The JSON of an error response."""
    return {"error": {"type": kind, "message": scrub_secrets(message, list(secrets))}}


async def _send_json(
    send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]
) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


class TokenAuth:
    """Requires ``Authorization: Bearer TOKEN`` on every HTTP request (401 otherwise), but
    for the page's static files (``open_paths``), which hold no data: a browser cannot send
    the header when it opens the page, and the page sends it on every API call."""

    def __init__(self, app: ASGIApp, token: str, open_paths: Iterable[str] = ()) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()
        self._open = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :] or "/"  # mounted in another app: the path inside this one
        if scope["method"] == "GET" and path in self._open:
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"authorization", b"")
        if not hmac.compare_digest(given, self._expected):
            body = error_body("unauthorized", "this server needs the header 'Authorization: Bearer <token>'")
            await _send_json(send, 401, body, [(b"www-authenticate", b"Bearer")])
            return
        await self.app(scope, receive, send)


class BodyLimit:
    """Refuses request bodies larger than ``limit`` bytes with 413: at once when the
    ``Content-Length`` says so, else (a chunked body) once what came crosses the limit; the
    body, read whole first, is then handed to the app (bodies here are small JSON)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await self._refuse(send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # after the body: the disconnect, when it comes

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        message = f"the request body is larger than this server's limit of {self.limit} bytes"
        await _send_json(send, 413, error_body("body_too_large", message), [])
