"""A process killed with SIGKILL mid-step (and mid-Parallel), resumed in a new process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("crashy.py")
ROOT = Path(__file__).resolve().parents[2]
ALL_STEPS = ["first", "b1", "b2", "b3", "body", "body", "body", "last"]


def _env(log: Path, block_at: str | None = None) -> dict[str, str]:
    env = {**os.environ, "PLAIT_TEST_LOG": str(log), "PYTHONPATH": str(ROOT)}
    env.pop("PLAIT_BLOCK_AT", None)
    if block_at:
        env["PLAIT_BLOCK_AT"] = block_at
    return env


def _finish(args: list[str], env: dict[str, str]) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def _crash(url: str, run_id: str, log: Path, block_at: str) -> None:
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), url, "run", run_id],
        env=_env(log, block_at),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    marker = Path(f"{log}.blocked")
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.02)
    time.sleep(0.1)  # let parallel siblings finish and checkpoint
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL


@pytest.mark.parametrize("block_at", ["body", "b2"], ids=["mid-step-in-loop", "mid-parallel"])
def test_killed_run_resumes_without_redoing_completed_steps(
    storage_url: str, run_id: str, tmp_path: Path, block_at: str
) -> None:
    reference_log = tmp_path / "reference.log"
    reference = _finish([f"sqlite:///{tmp_path / 'reference.db'}", "run"], _env(reference_log))

    log = tmp_path / "effects.log"
    _crash(storage_url, run_id, log, block_at)
    before = log.read_text().split()
    resumed = _finish([storage_url, "resume", run_id], _env(log))

    assert resumed["content"] == reference["content"]
    assert resumed["state"] == reference["state"]
    assert resumed["status"] == "COMPLETED"
    ran = Counter(log.read_text().split())
    # every step ran exactly as often as in an uninterrupted run: nothing completed ran again
    assert ran == Counter(ALL_STEPS), (before, ran)
    if block_at == "b2":
        assert {"first", "b1", "b3"} <= set(before) and "b2" not in before
