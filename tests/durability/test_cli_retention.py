"""`plait runs delete`, `plait runs prune` and `plait sessions list|delete` in a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.durability.test_cli_runs import plait

WORKFLOWS = """
import time
from plait import Workflow

def step(step_input):
    return f"did {step_input.input}"

def slow(step_input):
    print("started", flush=True)
    time.sleep(60)
    return "late"

kept = Workflow(name="kept", steps=[step], retention="1s")
forever = Workflow(name="forever", steps=[step])
sleeper = Workflow(name="sleeper", steps=[slow])
"""


def _runs(tmp_path: Path) -> list[dict[str, object]]:
    listed = plait(tmp_path, "runs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    runs: list[dict[str, object]] = json.loads(listed.stdout)
    return runs


@pytest.mark.slow  # a dozen plait processes (~13 s)
def test_delete_by_prefix_and_prune_by_retention_and_age(tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(WORKFLOWS)
    for target, given in [("kept", "a"), ("kept", "b"), ("forever", "c"), ("forever", "d")]:
        assert plait(tmp_path, "run", f"flows.py:{target}", given).returncode == 0
    runs = _runs(tmp_path)
    first = str(runs[-1]["run_id"])
    deleted = plait(tmp_path, "runs", "delete", first[:6])
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.strip() == f"deleted run {first[:8]} (kept, COMPLETED)"
    assert first not in [r["run_id"] for r in _runs(tmp_path)]
    missing = plait(tmp_path, "runs", "delete", first)
    assert missing.returncode == 1 and "no run" in missing.stderr

    time.sleep(1.1)  # the other "kept" run is past its workflow's retention
    dry = plait(tmp_path, "runs", "prune", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    kept_id = next(r["run_id"] for r in _runs(tmp_path) if r["workflow_name"] == "kept")
    assert json.loads(dry.stdout) == {"would_delete": [kept_id]}
    assert len(_runs(tmp_path)) == 3  # a dry run deletes nothing
    pruned = plait(tmp_path, "runs", "prune")
    assert pruned.stdout.strip() == "deleted 1 run (past their workflow's retention)", pruned.stderr
    assert sorted(r["workflow_name"] for r in _runs(tmp_path)) == ["forever", "forever"]

    # by age: nothing is a day old; everything is older than a second, but only completed ones of "forever"
    assert json.loads(plait(tmp_path, "runs", "prune", "--older-than", "1d", "--json").stdout) == {
        "deleted": 0
    }
    assert plait(tmp_path, "runs", "prune", "--older-than", "1s", "--workflow", "other").stdout.startswith(
        "deleted 0 runs"
    )
    done = plait(
        tmp_path, "runs", "prune", "--older-than", "1s", "--status", "completed", "--workflow", "forever"
    )
    assert done.stdout.strip() == "deleted 2 runs (older than 1s)", done.stderr
    assert _runs(tmp_path) == []


def test_bad_values_get_a_clear_message(tmp_path: Path) -> None:
    zero = plait(tmp_path, "runs", "prune", "--older-than", "0d")
    assert zero.returncode == 2 and "--older-than: expected a duration above zero, got '0d'" in zero.stderr
    for value in ("30", "thirty days", "-5m"):
        bad = plait(tmp_path, "runs", "prune", f"--older-than={value}")
        assert bad.returncode == 2
        assert "--older-than: expected a duration" in bad.stderr and "'30d', '12h', '90m'" in bad.stderr
    status = plait(tmp_path, "runs", "prune", "--older-than", "1d", "--status", "done")
    assert (
        status.returncode == 2 and "no status 'done'; the statuses are: cancelled, completed" in status.stderr
    )


def test_delete_refuses_a_run_another_process_executes_unless_forced(tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(WORKFLOWS)
    env = {k: v for k, v in os.environ.items() if k != "PLAIT_STORAGE"}
    running = subprocess.Popen(
        [sys.executable, "-m", "plait.cli", "run", "flows.py:sleeper", "zzz", "--json"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert running.stdout is not None
        for line in running.stdout:
            if "started" in line:
                break
        run_id = str(_runs(tmp_path)[0]["run_id"])
        refused = plait(tmp_path, "runs", "delete", run_id[:8])
        assert refused.returncode == 1
        assert f"run {run_id!r} is running" in refused.stderr and f"pid {running.pid}" in refused.stderr
        assert "--force" in refused.stderr and len(_runs(tmp_path)) == 1
        forced = plait(tmp_path, "runs", "delete", run_id[:8], "--force", "--json")
        assert json.loads(forced.stdout) == {"run_id": run_id, "deleted": True}, forced.stderr
    finally:
        running.send_signal(signal.SIGKILL)
        running.wait(10)
        if running.stdout is not None:
            running.stdout.close()


def test_sessions_list_and_delete(tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(WORKFLOWS)
    assert plait(tmp_path, "run", "flows.py:forever", "x", "--session-id", "chat-ü").returncode == 0
    assert plait(tmp_path, "run", "flows.py:kept", "y", "--session-id", "other").returncode == 0
    listed = json.loads(plait(tmp_path, "sessions", "list", "--json").stdout)
    assert sorted(s["session_id"] for s in listed) == ["chat-ü", "other"]  # no lease rows
    assert [
        s["session_id"]
        for s in json.loads(plait(tmp_path, "sessions", "list", "--workflow", "kept", "--json").stdout)
    ] == ["other"]
    table = plait(tmp_path, "sessions", "list").stdout
    assert "chat-ü  forever" in table
    gone = plait(tmp_path, "sessions", "delete", "chat-ü")
    assert gone.returncode == 0 and "deleted session chat-ü" in gone.stdout
    again = plait(tmp_path, "sessions", "delete", "chat-ü")
    assert again.returncode == 1 and "no session 'chat-ü'" in again.stderr
    assert [s["session_id"] for s in json.loads(plait(tmp_path, "sessions", "list", "--json").stdout)] == [
        "other"
    ]
    assert len(_runs(tmp_path)) == 2  # the runs stay
