"""A real MCP server (tests/mcp/mcp_server.py) over stdio and over streamable HTTP."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

SERVER = Path(__file__).with_name("mcp_server.py")
#: the command that starts the test server over stdio
STDIO = [sys.executable, str(SERVER)]


@dataclass
class HttpServer:
    url: str
    process: subprocess.Popen[bytes]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving_http() -> Iterator[HttpServer]:
    """The test server on a free loopback port, killed when the block ends."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, str(SERVER), "--http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                _, err = process.communicate()
                raise RuntimeError(f"the MCP test server did not start: {err.decode(errors='replace')}")
            time.sleep(0.05)
    try:
        yield HttpServer(f"http://127.0.0.1:{port}/mcp", process)
    finally:
        process.kill()
        process.communicate()


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    """A server of the test's own (one it may kill)."""
    with serving_http() as server:
        yield server


@pytest.fixture(scope="module")
def shared_http() -> Iterator[HttpServer]:
    """One server for the tests that only call it (a stdio server costs a process start per run)."""
    with serving_http() as server:
        yield server
