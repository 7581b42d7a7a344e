"""Following runs this server does not execute: another server's (the same storage, its own
runs), and one a plain Python process started (``workflow.start``), through the storage."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from plait.storage import SqliteDb
from plait_serve import create_app
from tests.serve import served
from tests.serve.conftest import sse


class CountingStorage(SqliteDb):
    """The real SQLite storage, counting how often a follower looks for events."""

    looks = 0

    async def load_events(self, run_id: str, *, after: int = 0) -> list[dict[str, Any]]:
        CountingStorage.looks += 1
        return await super().load_events(run_id, after=after)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'follow.db'}"


def test_a_run_another_server_executes_streams_live_with_backoff(serve: Any, db: str) -> None:
    served.GATE.clear()
    executing = serve(create_app([served.gated_workflow()], storage=db, poll_interval=0.05))
    watching = serve(
        create_app([served.gated_workflow()], storage=CountingStorage(db_url=db), poll_interval=0.05)
    )
    run_id = executing.post("/api/workflows/gated/runs", json={"input": "x"}).json()["run_id"]
    seen: list[dict[str, Any]] = []
    with watching.stream("GET", f"/api/runs/{run_id}/events") as response:
        for event in sse(response):
            seen.append(event)
            if event["event"] == "StepStarted" and event["data"]["step_name"] == "held":
                break  # live: the run is still at its gate
    assert watching.get(f"/api/runs/{run_id}").json()["executing_here"] is False
    assert executing.get(f"/api/runs/{run_id}").json()["run"]["status"] == "RUNNING"
    # a quiet run elsewhere is looked at less and less often: 0.05 s, then 1.5 times longer
    # each time, up to 0.4 s (a steady 0.05 s would look 30 times in 1.5 s)
    CountingStorage.looks = 0
    with watching.stream(
        "GET", f"/api/runs/{run_id}/events", headers={"Last-Event-ID": seen[-1]["id"]}
    ) as response:
        time.sleep(1.5)
        quiet_looks = CountingStorage.looks
        served.GATE.set()
        rest = list(sse(response))
    assert 3 <= quiet_looks <= 12, quiet_looks
    assert int(rest[0]["id"]) == int(seen[-1]["id"]) + 1
    assert rest[-1]["event"] == "WorkflowCompleted" and rest[-1]["data"]["content"] == "three"
    assert [e["id"] for e in seen + rest] == [str(i) for i in range(1, len(seen) + len(rest) + 1)]


def test_a_run_a_python_process_started_ends_its_stream_when_it_ends(serve: Any, db: str) -> None:
    served.GATE.clear()
    client = serve(create_app([served.gated_workflow()], storage=db, poll_interval=0.05))
    outside = served.gated_workflow(db)
    outside.store_events = True  # stored when the run ends: a server is not writing them as they come
    handle = outside.start("x")
    deadline = time.monotonic() + 10
    while client.get(f"/api/runs/{handle.run_id}").status_code == 404:
        assert time.monotonic() < deadline, "the run was never stored"
        time.sleep(0.02)
    started = time.monotonic()
    with client.stream("GET", f"/api/runs/{handle.run_id}/events") as response:
        time.sleep(0.5)
        served.GATE.set()
        events = list(sse(response))
    assert time.monotonic() - started >= 0.5  # the stream waited for the run, it did not stop early
    assert events[0]["event"] == "WorkflowStarted" and events[-1]["event"] == "WorkflowCompleted"
    assert handle.wait(10).content == "three"
    outside.close()


def test_a_stream_of_a_run_that_goes_quiet_elsewhere_ends(serve: Any, db: str) -> None:
    served.GATE.clear()
    client = serve(
        create_app([served.gated_workflow()], storage=db, poll_interval=0.05, stream_idle_timeout=0.5)
    )
    outside = served.gated_workflow(db)  # stores no events: its process could as well have died
    handle = outside.start("x")
    try:
        deadline = time.monotonic() + 10
        while client.get(f"/api/runs/{handle.run_id}").status_code == 404:
            assert time.monotonic() < deadline, "the run was never stored"
            time.sleep(0.02)
        started = time.monotonic()
        with client.stream("GET", f"/api/runs/{handle.run_id}/events") as response:
            assert list(sse(response)) == []
        assert 0.5 <= time.monotonic() - started < 5
        assert client.get(f"/api/runs/{handle.run_id}").json()["run"]["status"] == "RUNNING"
    finally:
        served.GATE.set()
        handle.wait(10)
        outside.close()


def test_create_app_refuses_bad_intervals(db: str) -> None:
    from plait import DefinitionError

    with pytest.raises(DefinitionError, match=r"poll_interval must be a positive number of seconds, got 0"):
        create_app([served.gated_workflow()], storage=db, poll_interval=0)
    with pytest.raises(DefinitionError, match=r"stream_idle_timeout .* got '5'"):
        create_app([served.gated_workflow()], storage=db, stream_idle_timeout="5")  # type: ignore[arg-type]
