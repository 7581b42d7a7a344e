"""Sync code that cannot be interrupted: a timed-out or cancelled attempt writes only into
its own copy of the state, sees run_context.cancelled, does not hold a pool slot that
healthy steps need, and does not keep the interpreter alive at exit."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from plait import Parallel, RetryPolicy, Step, StepInput, Workflow
from plait.errors import StepError
from plait.runners import InProcessRunner

BOUND = 30.0


def test_a_timed_out_attempt_does_not_write_into_the_retry() -> None:
    observed: list[bool] = []
    attempts = {"n": 0}
    release = threading.Event()

    def charge(step_input: StepInput, run_context: Any) -> str:
        attempts["n"] += 1
        if attempts["n"] == 1:
            assert release.wait(BOUND)  # outlives its timeout, then writes anyway
            observed.append(run_context.cancelled)
        run_context.session_state["charged"] = run_context.session_state.get("charged", 0) + 1
        return "charged"

    wf = Workflow(
        name="bill",
        steps=[
            Step(
                name="charge",
                executor=charge,
                timeout=0.2,
                retry=RetryPolicy(max_attempts=2, initial_delay=0),
            )
        ],
    )
    out = wf.run("x", session_id="s")
    assert out.status == "COMPLETED"
    release.set()
    deadline = time.monotonic() + BOUND
    while not observed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert observed == [True]  # the abandoned attempt was told
    time.sleep(0.05)
    assert wf.get_session_state("s") == {"charged": 1}


def test_a_branch_whose_sibling_failed_sees_cancelled() -> None:
    observed: list[bool] = []
    started = threading.Event()
    done = threading.Event()

    def slow(step_input: StepInput, run_context: Any) -> str:
        started.set()
        deadline = time.monotonic() + BOUND
        while not run_context.cancelled and time.monotonic() < deadline:
            time.sleep(0.01)
        observed.append(run_context.cancelled)
        done.set()
        return "late"

    def boom(step_input: StepInput) -> str:
        assert started.wait(BOUND)
        raise ValueError("boom")

    wf = Workflow(
        name="p",
        steps=[Parallel(Step(name="slow", executor=slow), Step(name="boom", executor=boom), name="fan")],
    )
    with pytest.raises(StepError, match="boom"):
        wf.run("x")
    assert done.wait(BOUND)
    assert observed == [True]


def test_abandoned_threads_do_not_starve_healthy_steps() -> None:
    release = threading.Event()
    runner = InProcessRunner(max_threads=4)

    def stuck(step_input: StepInput) -> str:
        release.wait(BOUND)
        return "late"

    def healthy(step_input: StepInput) -> str:
        return "fine"

    try:
        stuck_wf = Workflow(
            name="stuck", steps=[Step(name="stuck", executor=stuck, timeout=0.05)], runner=runner
        )
        for _ in range(10):  # more abandoned threads than the pool has
            with pytest.raises(StepError, match="abandoned"):
                stuck_wf.run("x")
        assert runner._executor().abandoned_threads == 10
        ok = Workflow(name="ok", steps=[Step(name="healthy", executor=healthy, timeout=5)], runner=runner)
        assert ok.run("x").content == "fine"
        wide = Workflow(
            name="wide",
            steps=[Parallel(*(Step(name=f"h{i}", executor=healthy) for i in range(8)), name="p")],
            runner=runner,
        )
        assert wide.run("x").status == "COMPLETED"
    finally:
        release.set()
        runner.shutdown()


def test_the_interpreter_does_not_wait_for_an_abandoned_thread_at_exit(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import time
        from plait import Step, Workflow
        from plait.errors import StepError

        def stuck(step_input):
            time.sleep(60)

        try:
            Workflow(name="w", steps=[Step(name="stuck", executor=stuck, timeout=0.1)]).run("x")
        except StepError as exc:
            print("timed out:", exc)
        """
    )
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=BOUND)
    assert result.returncode == 0, result.stderr
    assert "abandoned" in result.stdout
    assert time.monotonic() - started < 20  # not the 60 s the thread still sleeps
