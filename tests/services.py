"""Real servers for plugin tests: skip with instructions on a developer's machine,
fail under CI=true so CI can never go green by skipping."""

from __future__ import annotations

import os
import socket

import pytest

#: how to start each service this machine kind provides
START = {
    "postgresql": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "redis": "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' --appendonly no",
    "nats": "nats-server -a 127.0.0.1 -p 4222 -js",
}
PORTS = {"postgresql": 5432, "redis": 6379, "nats": 4222}


def reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_service(name: str, host: str = "127.0.0.1", port: int | None = None) -> None:
    """Skip (or, under CI=true, fail) when the named server is not listening."""
    port = port or PORTS[name]
    if reachable(host, port):
        return
    message = f"{name} is not listening on {host}:{port}; start it with: {START.get(name, '(see README)')}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {message}")
    pytest.skip(message)


def require_package(module: str, distribution: str) -> None:
    """Skip (or fail under CI=true) when a plugin distribution is not installed."""
    try:
        __import__(module)
    except ImportError:
        message = f"{distribution} is not installed; install it with: pip install -e ./plugins/... (python dev.py test does)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {message}")
        pytest.skip(message)
