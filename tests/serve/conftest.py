"""A real uvicorn server on 127.0.0.1 (a free port, in a thread) and an httpx client."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.services import require_package

require_package("plait_serve", "plait-serve")

import httpx  # noqa: E402
import uvicorn  # noqa: E402

WAIT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """``app`` served by uvicorn in a thread until :meth:`stop`."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + WAIT
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(WAIT)


@pytest.fixture
def serve() -> Iterator[Any]:
    """``serve(app)`` starts a server and returns an httpx.Client on it (stopped after the test)."""
    started: list[tuple[Server, httpx.Client]] = []

    def start(app: Any, **client_options: Any) -> httpx.Client:
        server = Server(app)
        client = httpx.Client(base_url=server.url, timeout=WAIT, **client_options)
        started.append((server, client))
        return client

    yield start
    for server, client in started:
        client.close()
        server.stop()


def sse(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The events of an SSE response as dicts ``{"id", "event", "data"}`` (data parsed)."""
    import json

    event: dict[str, Any] = {}
    for line in response.iter_lines():
        if not line:
            if "data" in event:
                event["data"] = json.loads(event["data"])
                yield event
            event = {}
            continue
        if line.startswith(":"):
            continue  # a ping
        key, _, value = line.partition(":")
        event[key] = value[1:] if value.startswith(" ") else value
