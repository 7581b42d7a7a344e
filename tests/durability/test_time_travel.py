"""Issue #15 on every backend (SQLite, PostgreSQL, Redis): fork at a nested step with
edited state (earlier steps not executed, later ones live), diff of two forks, and
``run_context.once`` across a SIGKILL and a resume (the side effect ran once)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from plait import Loop, Parallel, Step, StepInput, Workflow, diff_runs
from tests.durability.onceful import storage_for

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("onceful.py")


def build(url: str, ran: Counter[str]) -> Workflow:
    def effect(name: str) -> Step:
        def step(step_input: StepInput, session_state: dict[str, Any]) -> str:
            ran[name] += 1
            session_state[name] = session_state.get(name, 0) + 1
            return f"{name}{session_state.get('mood', '')}({step_input.previous_step_content or step_input.input})"

        return Step(name=name, executor=step)

    inner = Workflow(
        name="inner",
        steps=[effect("plan"), Parallel(effect("left"), effect("right"), name="fan"), effect("merge")],
    )
    return Workflow(
        name="tt",
        steps=[
            effect("first"),
            inner,
            Loop(name="loop", steps=[effect("body")], max_iterations=2),
            effect("last"),
        ],
        storage=storage_for(url),
    )


def test_fork_at_a_nested_step_and_diff_two_forks(storage_url: str) -> None:
    ran: Counter[str] = Counter()
    workflow = build(storage_url, ran)
    original = workflow.run("go")
    assert ran == Counter(first=1, plan=1, left=1, right=1, merge=1, body=2, last=1)
    ran.clear()
    happy = workflow.fork(original.run_id, at="inner/fan/right", state={"mood": ":)"})
    assert ran == Counter(right=1, merge=1, body=2, last=1)  # first, plan, left: restored
    assert happy.lineage == {"forked_from": original.run_id, "fork_step": "inner/fan/right"}
    assert happy.session_state["first"] == 1 and happy.session_state["mood"] == ":)"
    ran.clear()
    sad = workflow.fork(original.run_id, at="inner/fan/right", state={"mood": ":("})
    assert ran == Counter(right=1, merge=1, body=2, last=1)
    result = diff_runs(happy.run_id, sad.run_id, storage=workflow._storage)
    assert result.first_divergence == "inner/fan/right"
    assert not result.step("first").differs and not result.step("inner/plan").differs
    assert result.step("inner/fan/right").state_changes["mood"] == (":)", ":(")
    assert result.step("last").differs and result.content_diff
    ran.clear()
    again = workflow.fork(happy.run_id, at="last")  # a fork of a fork: its restored steps are stored
    assert ran == Counter(last=1) and again.content == happy.content
    if not isinstance(workflow.storage, str):  # a storage object is ours to close
        asyncio.run(workflow.storage.close())


def test_once_runs_the_side_effect_once_across_a_sigkill_and_a_resume(
    storage_url: str, run_id: str, tmp_path: Path
) -> None:
    log = tmp_path / "effects.log"
    env = {**os.environ, "PLAIT_TEST_LOG": str(log), "PYTHONPATH": str(ROOT), "PLAIT_BLOCK_AFTER_CHARGE": "1"}
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), storage_url, "run", run_id],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    marker = Path(f"{log}.blocked")
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the step never reached the charge"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert len(log.read_text().splitlines()) == 1
    env.pop("PLAIT_BLOCK_AFTER_CHARGE")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), storage_url, "resume", run_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    charges = log.read_text().splitlines()
    assert len(charges) == 1, charges  # the step ran again, the charge did not
    key = charges[0].split()[1]
    assert f"ch-{key[-6:]} 2026-01-02T03:04:00 tea+cake {key}" in result.stdout  # the same key, types back
