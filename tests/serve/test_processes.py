"""``plait serve`` as real processes: two servers sharing PostgreSQL, and the loopback rule."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serve.conftest import WAIT, free_port, sse
from tests.services import require_package, require_service

ROOT = Path(__file__).resolve().parents[2]


def _plait(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    with log.open("w") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "plait", *args],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )


def _ready(url: str, process: subprocess.Popen[str], log: Path) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=WAIT)
    deadline = time.monotonic() + WAIT * 2
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"plait serve exited with {process.returncode}: {log.read_text()}")
        try:
            if client.get("/api/workflows").status_code == 200:
                return client
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"plait serve at {url} did not answer")


@pytest.fixture
def pg_schema() -> Iterator[str]:
    require_service("postgresql")
    require_package("plait_postgres", "plait-postgres")
    schema = f"plait_serve_{uuid.uuid4().hex[:10]}"
    yield schema
    from plait_postgres import PostgresStorage

    async def drop() -> None:
        storage = PostgresStorage("postgresql://postgres@127.0.0.1:5432/test", schema=schema)
        await storage.drop()
        await storage.close()

    asyncio.run(drop())


def test_two_servers_sharing_postgresql(pg_schema: str, tmp_path: Path) -> None:
    env = {"SERVE_TEST_PG_SCHEMA": pg_schema}
    processes: list[subprocess.Popen[str]] = []
    clients: list[httpx.Client] = []
    try:
        for i in range(2):
            port, log = free_port(), tmp_path / f"server{i}.log"
            process = _plait("serve", "tests.serve.served:approval", "--port", str(port), env=env, log=log)
            processes.append(process)
            clients.append(_ready(f"http://127.0.0.1:{port}", process, log))
        one, other = clients
        run_id = one.post("/api/workflows/announcement/runs", json={"input": "news"}).json()["run_id"]
        # the other server streams what the first one executes, from the shared storage
        with other.stream("GET", f"/api/runs/{run_id}/events") as response:
            events = list(sse(response))
        assert events[0]["event"] == "WorkflowStarted" and events[-1]["event"] == "WorkflowPaused"
        assert other.get(f"/api/runs/{run_id}").json()["run"]["status"] == "PAUSED"
        # approved on the other server; the first follows it live from its last event
        assert other.post(f"/api/runs/{run_id}/approve", json={"approve": True}).status_code == 202
        with one.stream(
            "GET", f"/api/runs/{run_id}/events", headers={"Last-Event-ID": events[-1]["id"]}
        ) as response:
            rest = list(sse(response))
        assert int(rest[0]["id"]) == int(events[-1]["id"]) + 1
        assert rest[-1]["event"] == "WorkflowCompleted"
        assert [r["run_id"] for r in one.get("/api/runs", params={"status": "COMPLETED"}).json()["runs"]] == [
            run_id
        ]
    finally:
        for client in clients:
            client.close()
        for process in processes:
            process.terminate()
            process.wait(WAIT)


def test_serve_refuses_to_bind_off_loopback_without_a_token(tmp_path: Path) -> None:
    env: dict[str, Any] = {"PLAIT_SERVE_TOKEN": "", "SERVE_TEST_STORAGE": f"sqlite:///{tmp_path / 'x.db'}"}
    log = tmp_path / "server.log"
    args = ("serve", "tests.serve.served:approval", "--host", "0.0.0.0", "--port", str(free_port()))
    process = _plait(*args, env=env, log=log)
    assert process.wait(WAIT * 2) != 0
    output = log.read_text()
    assert "--token" in output and "PLAIT_SERVE_TOKEN" in output
