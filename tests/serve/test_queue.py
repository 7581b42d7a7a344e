"""Queued runs from the HTTP API (issue #18): ``{"queue": true, "priority": N}`` stores the run
for a ``plait worker`` process, which executes it; the server only watches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from plait_serve import create_app
from tests.durability.conftest import _url
from tests.serve.conftest import sse
from tests.workers.helpers import environment, executions, start_worker, stop, wait_for, workflow


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_queued_run_waits_for_a_worker_and_the_page_watches_it(
    serve: Any, tmp_path: Path, backend: str
) -> None:
    url = _url(backend, tmp_path)
    name = f"serve-queue-{backend}-{tmp_path.name[-8:]}".replace("_", "-")
    log = tmp_path / "effects.log"
    client = serve(create_app([workflow(name, url, log, PLAIT_TEST_STORE_EVENTS="1")], storage=url))
    low = client.post(f"/api/workflows/{name}/runs", json={"input": "low", "queue": True})
    high = client.post(f"/api/workflows/{name}/runs", json={"input": "high", "queue": True, "priority": 5})
    assert low.status_code == high.status_code == 202, (low.text, high.text)
    assert low.json()["status"] == high.json()["status"] == "QUEUED"
    ids = [high.json()["run_id"], low.json()["run_id"]]
    for run_id in ids:  # stored, not executed: nothing ran in the server's process
        assert client.get(f"/api/runs/{run_id}").json()["run"]["status"] == "QUEUED"
    assert not log.exists()
    listed = client.get("/api/runs", params={"status": "queued", "workflow": name}).json()["runs"]
    assert {r["run_id"] for r in listed} == set(ids)

    worker = start_worker(
        environment(name, url, log, PLAIT_TEST_STORE_EVENTS="1"), "--concurrency", "1", "--poll", "50ms"
    )
    try:
        wait_for(lambda: len(executions(log, "b")) == 2, "both runs' last step", 60, (worker,))
    finally:
        _, err = stop(worker)
    assert worker.returncode == 0, err
    order = [line.split()[1] for line in log.read_text().splitlines() if line.startswith("a ")]
    assert order == ids, "the worker took the higher priority first"
    for run_id, text in zip(ids, ["high", "low"], strict=True):
        run = client.get(f"/api/runs/{run_id}").json()["run"]
        assert run["status"] == "COMPLETED" and run["content"] == f"b(a({text}))"
        with client.stream("GET", f"/api/runs/{run_id}/events") as response:
            names = [event["event"] for event in sse(response)]
        assert names[0] == "WorkflowStarted" and names[-1] == "WorkflowCompleted", names


def test_queue_options_are_checked_before_anything_is_stored(serve: Any, tmp_path: Path) -> None:
    url = _url("sqlite", tmp_path)
    name = "serve-queue-checks"
    client = serve(create_app([workflow(name, url, tmp_path / "effects.log")], storage=url))
    path = f"/api/workflows/{name}/runs"
    for body, kind in [
        ({"input": "x", "queue": True, "priority": True}, None),  # a bool is not a priority
        ({"input": "x", "queue": True, "priority": "5"}, None),
        ({"input": "x", "queue": "yes"}, None),
        ({"input": "x", "queue": True, "priority": 2**40}, None),  # out of the range
        ({"input": "x", "priority": 3}, "priority_without_queue"),
    ]:
        answer = client.post(path, json=body)
        assert answer.status_code == 422, (body, answer.text)
        if kind is not None:
            assert answer.json()["error"]["type"] == kind, answer.text
    streamed = client.post(path, params={"stream": "true"}, json={"input": "x", "queue": True})
    assert streamed.status_code == 422 and streamed.json()["error"]["type"] == "queued_stream"
    assert "priority" in str(client.post(path, json={"input": "x", "queue": True, "priority": 2**40}).json())
    assert client.get("/api/runs").json()["runs"] == []
