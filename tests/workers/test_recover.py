"""Recovery without workers: ``Workflow.recover()`` / ``plait runs recover`` resume, once each,
the runs whose process died (SIGKILL), from their checkpoints, and leave queued runs alone."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.workers.helpers import APP, environment, executions, wait_for, workflow

RUN = "import runpy, sys; w = runpy.run_path(sys.argv[1])['workflow']; w.run('crash', run_id=sys.argv[2])"


@pytest.mark.slow
def test_plait_runs_recover_resumes_a_killed_run_once(
    storage_url: str, workflow_name: str, tmp_path: Path
) -> None:
    log = tmp_path / "effects.log"
    run_id = f"{workflow_name}-crashed"
    env = environment(workflow_name, storage_url, log, PLAIT_TEST_SLEEP="30", PLAIT_TEST_TTL="1")
    doomed = subprocess.Popen([sys.executable, "-c", RUN, str(APP), run_id], env=env, text=True)
    try:
        wait_for(lambda: any(tmp_path.glob("effects.log.b.*")), "step b to start", 60, (doomed,))
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(30)
    finally:
        if doomed.poll() is None:
            doomed.kill()
    queued = workflow(workflow_name, storage_url, log, PLAIT_TEST_TTL="1")
    waiting = queued.start("later", queue=True)
    queued.close()
    env["PLAIT_TEST_SLEEP"] = "0"
    command = [sys.executable, "-m", "plait", "runs", "recover", f"{APP}:workflow", "--storage", storage_url]
    # recover waits for nobody: it takes the runs whose lease has expired (1 s after the kill)
    time.sleep(1.2)
    done = subprocess.run([*command, "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {run_id: "COMPLETED"}
    assert executions(log, "a")[run_id] == 1 and executions(log, "b")[run_id] == 1  # a from its checkpoint
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and f"no run of {workflow_name} to recover" in again.stdout, again
    assert waiting.status().value == "QUEUED"  # recovery is not a worker: queued runs wait for one
    queued.close()
