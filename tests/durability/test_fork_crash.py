"""A fork killed with SIGKILL before it reaches its fork step keeps its change on resume
(issue #15): the change is stored with the fork's record before it runs. On SQLite,
PostgreSQL and Redis."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("forky.py")


def _run(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


@pytest.mark.parametrize("change", ["state+input", "output"])
def test_a_fork_killed_before_its_fork_step_applies_its_change_on_resume(
    storage_url: str, run_id: str, tmp_path: Path, change: str
) -> None:
    log = tmp_path / "steps.log"
    env = {**os.environ, "PLAIT_TEST_LOG": str(log), "PYTHONPATH": str(ROOT), "PLAIT_FAIL_B": "1"}
    original = _run([storage_url, "run", run_id], env)
    assert original["status"] == "ERROR"
    assert log.read_text().split() == ["a", "b"]
    env.pop("PLAIT_FAIL_B")
    log.write_text("")

    # the fork at c restores a and runs b live (the original never completed it): b blocks
    env["PLAIT_BLOCK_B"] = "1"
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), storage_url, "fork", run_id, change],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    marker = Path(f"{log}.blocked")
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the fork never reached step b"
        time.sleep(0.02)
    fork_id = marker.read_text()
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert log.read_text().split() == ["b"]  # a was restored, c never reached

    env.pop("PLAIT_BLOCK_B")
    resumed = _run([storage_url, "resume", fork_id], env)
    assert resumed["status"] == "COMPLETED", resumed
    assert resumed["run_id"] == fork_id
    assert resumed["lineage"] == {"forked_from": run_id, "fork_step": "c"}
    if change == "output":
        assert log.read_text().split() == ["b", "b", "d"]  # c did not run: its output was given
        assert resumed["content"] == "d(given)"
        assert resumed["mood"] == ""
    else:
        assert log.read_text().split() == ["b", "b", "c", "d"]
        assert resumed["content"] == "d!(c!(changed))"
        assert resumed["mood"] == "!"
