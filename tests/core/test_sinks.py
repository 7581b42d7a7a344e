"""Event sinks get every event off the run's path; a failing or slow sink never fails or stalls a run."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from pathlib import Path

import pytest

from plait import Parallel, Step, Workflow
from plait.events import Event
from plait.sinks import JsonlSink, dispatcher_for, flush_sinks


def text(label: str):  # type: ignore[no-untyped-def]
    def step(step_input) -> str:  # type: ignore[no-untyped-def]
        return label

    step.__name__ = label
    return step


def test_jsonl_sink_gets_every_event_in_order(tmp_path: Path) -> None:
    sink = JsonlSink(tmp_path / "events.jsonl")
    workflow = Workflow(name="w", steps=[text("a"), Parallel(text("b"), text("c"), name="p")], sinks=[sink])
    output = workflow.run("x")  # not streaming: sinks receive events anyway
    assert flush_sinks()
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert events[0]["event"] == "WorkflowStarted" and events[-1]["event"] == "WorkflowCompleted"
    assert {e["run_id"] for e in events} == {output.run_id}
    completed = ("StepCompleted", "ParallelExecutionCompleted")  # a Parallel's own completed event
    assert [e["step_id"] for e in events if e["event"] in completed][-1] == "p"


def test_a_failing_sink_is_reported_once_and_never_fails_the_run(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def handle(self, event: Event) -> None:
            raise ConnectionError("broker down")

    sink = Broken()
    workflow = Workflow(name="w", steps=[text("a"), text("b")], sinks=[sink])
    caplog.set_level(logging.WARNING, logger="plait.sinks")
    assert workflow.run("x").content == "b"
    assert workflow.run("y").content == "b"
    assert flush_sinks()
    dispatcher = dispatcher_for(sink)
    assert dispatcher.failures == 16  # 8 events per run (a StepOutputEvent per function step), all failed
    assert [r.getMessage() for r in caplog.records].count(
        f"event sink {sink!r} failed; its later failures are counted, not logged"
    ) == 1


def test_a_slow_sink_drops_events_instead_of_stalling_the_run(caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()

    class Stuck:
        def handle(self, event: Event) -> None:
            release.wait(10)

    sink = Stuck()
    dispatcher = dispatcher_for(sink)
    dispatcher.queue.maxsize = 3  # a small queue, to fill it quickly
    workflow = Workflow(name="w", steps=[text(f"s{i}") for i in range(10)], sinks=[sink])
    caplog.set_level(logging.WARNING, logger="plait.sinks")
    started = time.monotonic()
    assert workflow.run("x").content == "s9"
    assert time.monotonic() - started < 5
    release.set()
    assert dispatcher.dropped > 0
    assert any("too slow" in r.getMessage() for r in caplog.records)
    assert dispatcher.flush()


def test_sinks_by_registered_name(capsys: pytest.CaptureFixture[str]) -> None:
    Workflow(name="named", steps=[Step(name="hello", executor=text("hi"))], sinks=["console"]).run("x")
    assert flush_sinks()
    out = capsys.readouterr().out
    assert "named" in out and "hello" in out


def test_tree_sink_shows_the_run_as_a_tree_with_status() -> None:
    from rich.console import Console

    from plait.sinks import TreeSink

    console = Console(record=True, width=100, force_terminal=False)
    sink = TreeSink(console=console)

    def boom(step_input) -> str:  # type: ignore[no-untyped-def]
        raise ValueError("no")

    inner = Workflow(name="inner", steps=[Parallel(text("a"), text("b"), name="p")])
    outer = Workflow(
        name="outer",
        steps=[inner, Step(name="risky", executor=boom, on_error="skip"), text("c")],
        sinks=[sink],
    )
    outer.run("x")
    assert flush_sinks()
    lines = [line.rstrip() for line in console.export_text().splitlines() if line.strip()]
    # durations vary: compare the tree without them
    shape = [re.sub(r"\s+\d+\.\d+s", "", line) for line in lines]
    assert shape == [
        "✓ ◆ outer",
        "├── ✓ ◆ inner",
        "│   └── ✓ ⫘ p",
        "│       ├── ✓ • a",
        "│       └── ✓ • b",
        "├── ⤼ • risky  skipped  ValueError: no",
        "└── ✓ • c",
    ]


def test_flushing_a_stuck_sink_costs_no_thread_per_call() -> None:
    release = threading.Event()

    class Stuck:
        def handle(self, event: Event) -> None:
            release.wait(30)

    sink = Stuck()
    try:
        Workflow(name="w", steps=[text("a")], sinks=[sink]).run("x")
        assert not flush_sinks(timeout=0.01)  # stuck: the flush gives up
        before = threading.active_count()
        for _ in range(20):
            assert not dispatcher_for(sink).flush(timeout=0.001)
            assert not flush_sinks(timeout=0.001)
        assert threading.active_count() == before
    finally:
        release.set()
        assert flush_sinks(timeout=5)


STUCK_AT_EXIT = """
import threading, time
from plait import Step, Workflow
import plait.sinks

class Stuck:
    def handle(self, event):
        threading.Event().wait()  # never returns

workflow = Workflow(name="w", steps=[Step(name="a", executor=lambda step_input: "a")],
                    sinks=[Stuck(), Stuck(), Stuck()])
workflow.run("x")
print(getattr(plait.sinks, "EXIT_TIMEOUT", 2.0), flush=True)
"""


def test_stuck_sinks_delay_interpreter_exit_by_the_exit_timeout_in_all() -> None:
    import subprocess
    import sys

    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", STUCK_AT_EXIT], capture_output=True, text=True, timeout=60, check=True
    )
    elapsed = time.monotonic() - started
    exit_timeout = float(done.stdout.strip())
    # Three stuck sinks share one exit budget (before: ~4 s each, so ~12 s).
    assert elapsed < exit_timeout + 3.0, (elapsed, done.stderr)
