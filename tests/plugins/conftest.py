"""Helpers for plugin tests: a fake installed distribution and a local HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


def make_distribution(root: Path, name: str, entry_points: dict[str, str], modules: dict[str, str]) -> Path:
    """Write an installed distribution (a .dist-info with entry points, plus its modules)
    into ``root``; with ``root`` on sys.path, importlib.metadata finds it like pip's."""
    dist = root / f"{name.replace('-', '_')}-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
    lines = "\n".join(f"{key} = {value}" for key, value in entry_points.items())
    (dist / "entry_points.txt").write_text(f"[plait]\n{lines}\n")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(source)
    return root


class Replies:
    """A local HTTP server answering from a queue of (status, headers, body)."""

    def __init__(self) -> None:
        self.queue: list[tuple[str, int, dict[str, str], object]] = []
        self.paths: list[str] = []
        self.lock = threading.Lock()

    def push(
        self, status: int, body: object, headers: dict[str, str] | None = None, *, path: str = "/"
    ) -> None:
        """Answer the next request whose path starts with ``path`` like this."""
        self.queue.append((path, status, headers or {}, body))

    def pop(self, path: str) -> tuple[int, dict[str, str], object]:
        with self.lock:
            self.paths.append(path)
            for index, (prefix, status, headers, body) in enumerate(self.queue):
                if path.startswith(prefix):
                    del self.queue[index]
                    return status, headers, body
        return 200, {}, {"path": path}


@pytest.fixture
def http_server() -> Iterator[tuple[str, Replies]]:
    replies = Replies()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, headers, body = replies.pop(self.path)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", replies
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
