"""Ctrl-C under the ``plait runs`` actions that execute a workflow (issue #17 item 4), as under
``plait run``: one line saying how to take the run up again, the run stored as cancelled with
the reason, exit 130, no traceback. Each runs the CLI as a subprocess (``python -m plait``)
and sends it SIGINT while a step of the run is executing."""

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

FLOWS = """
import os
import time

from plait import Approval, Workflow

def a(step_input):
    return f"a({step_input.input})"

def fails_first(step_input):
    if not os.path.exists("failed"):
        open("failed", "w").close()
        raise RuntimeError("the service is down")
    return held(step_input)

def held(step_input):
    # executing until the test removes "hold" (after it interrupted the run)
    open("started", "w").close()
    while os.path.exists("hold"):
        time.sleep(0.05)
    return "done"

flaky = Workflow(name="flaky", steps=[a, fails_first])
gated = Workflow(name="gated", steps=[a, Approval(name="ok", prompt="Ship it?"), held])
"""


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    (tmp_path / "flows.py").write_text(FLOWS)
    return tmp_path


def environment() -> dict[str, str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("PLAIT_STORAGE", None)
    return env


def plait(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "plait", *args],
        cwd=cwd,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def newest(cwd: Path) -> dict[str, Any]:
    runs = json.loads(plait(cwd, "runs", "list", "--json").stdout)
    return runs[0]  # type: ignore[no-any-return]


def interrupted(cwd: Path, *args: str) -> tuple[int, str]:
    """``plait ARGS`` sent SIGINT once its held step runs: (exit code, stderr)."""
    (cwd / "hold").touch()
    (cwd / "started").unlink(missing_ok=True)
    running = subprocess.Popen(
        [sys.executable, "-m", "plait", *args],
        cwd=cwd,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (cwd / "started").exists():  # the held step is executing
            assert running.poll() is None, running.communicate()
            assert time.monotonic() < deadline, "the held step never started"
            time.sleep(0.05)
        running.send_signal(signal.SIGINT)
        out, err = running.communicate(timeout=30)
    finally:
        (cwd / "hold").unlink(missing_ok=True)  # an abandoned step thread ends too
        if running.poll() is None:
            running.kill()
            running.communicate()
    assert "Traceback" not in err and "Traceback" not in out, err
    return running.returncode, err.strip()


def test_ctrl_c_under_resume_cancels_the_run_and_says_how_to_resume(flows: Path) -> None:
    assert plait(flows, "run", "flows.py:flaky", "x").returncode == 1  # failed: resumable
    run_id = newest(flows)["run_id"]
    code, err = interrupted(flows, "runs", "resume", run_id[:5])  # a prefix: the line names the short id
    assert code == 130
    assert err == f"plait: cancelled; resume with `plait runs resume {run_id[:8]}`"
    run = newest(flows)
    assert (run["run_id"], run["status"], run["error"]) == (run_id, "CANCELLED", "interrupted (Ctrl-C)")
    resumed = plait(flows, "runs", "resume", run_id[:8], "--json")  # what the line says works
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["status"] == "COMPLETED"


def test_ctrl_c_under_approve_keeps_the_answer_and_says_how_to_resume(flows: Path) -> None:
    assert plait(flows, "run", "flows.py:gated", "x").returncode == 0  # paused at the approval
    run_id = newest(flows)["run_id"]
    code, err = interrupted(flows, "runs", "approve", run_id[:8])
    assert code == 130
    assert err == f"plait: cancelled; resume with `plait runs resume {run_id[:8]}`"
    run = newest(flows)
    assert (run["status"], run["error"]) == ("CANCELLED", "interrupted (Ctrl-C)")
    resumed = plait(flows, "runs", "resume", run_id[:8], "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout) == {"run_id": run_id, "status": "COMPLETED", "content": "done"}


def test_ctrl_c_under_replay_stores_the_replay_as_cancelled_and_says_replay_again(flows: Path) -> None:
    (flows / "failed").touch()  # the run completes (nothing holds it yet); its replay is held
    assert plait(flows, "run", "flows.py:flaky", "x").returncode == 0
    original = newest(flows)["run_id"]
    code, err = interrupted(flows, "runs", "replay", original[:8])
    assert code == 130
    assert err == f"plait: cancelled; the replay stopped: run `plait runs replay {original[:8]}` again"
    replay = newest(flows)
    assert replay["lineage"] == {"replay_of": original}
    assert (replay["status"], replay["error"]) == ("CANCELLED", "interrupted (Ctrl-C)")


def test_ctrl_c_under_fork_stores_the_fork_as_cancelled_and_says_fork_again(flows: Path) -> None:
    (flows / "failed").touch()
    assert plait(flows, "run", "flows.py:flaky", "x").returncode == 0
    original = newest(flows)["run_id"]
    code, err = interrupted(flows, "runs", "fork", original[:8], "--at", "fails_first")
    assert code == 130
    assert (
        err == f"plait: cancelled; the fork of {original[:8]} stopped: run the same `plait runs fork` again"
    )
    fork = newest(flows)
    assert fork["lineage"] == {"forked_from": original, "fork_step": "fails_first"}
    assert (fork["status"], fork["error"]) == ("CANCELLED", "interrupted (Ctrl-C)")
