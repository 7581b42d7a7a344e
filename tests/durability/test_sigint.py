"""Ctrl-C (SIGINT) stops a run promptly, stores it as cancelled, and the run resumes:
with the sync step on the event loop's thread, and in worker threads of a Parallel."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from plait.storage import resolve_storage

ROOT = Path(__file__).resolve().parents[2]
BOUND = 30.0

SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from plait import Parallel, Step, Workflow

    marker = Path(sys.argv[2])

    def slow(step_input):
        if not marker.exists():          # the first run: say so, then take long
            marker.write_text("started")
            time.sleep(20)
        return "slow done"

    def quick(step_input):
        return "quick done"

    slow_step = Step(name="slow", executor=slow)
    steps = [slow_step] if sys.argv[3] == "inline" else [
        Parallel(slow_step, Step(name="other", executor=slow), name="fan")
    ]
    workflow = Workflow(name="interruptible", steps=[Step(name="quick", executor=quick), *steps],
                        storage=sys.argv[1])
    if len(sys.argv) > 4:
        print(workflow.continue_run(sys.argv[4]).status)
    else:
        try:
            workflow.run("x", run_id="r1")
        except KeyboardInterrupt:
            print("interrupted")
            sys.exit(130)
    """
)


def stored_status(url: str, run_id: str) -> str | None:
    async def get() -> str | None:
        storage = resolve_storage(url)
        assert storage is not None
        await storage.setup()
        try:
            record = await storage.get_run(run_id)
            return None if record is None else record.status
        finally:
            await storage.close()

    return asyncio.run(get())


@pytest.mark.parametrize("where", ["inline", "threads"])
def test_ctrl_c_cancels_the_run_promptly_and_it_resumes(tmp_path: Path, where: str) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    marker = tmp_path / "started"
    script = tmp_path / "app.py"
    script.write_text(SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), url, str(marker), where], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + BOUND
    while not marker.exists():
        assert time.monotonic() < deadline and proc.poll() is None, "the run never reached its slow step"
        time.sleep(0.02)
    time.sleep(0.1)
    interrupted = time.monotonic()
    os.kill(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=BOUND)
    assert time.monotonic() - interrupted < 10, "the process waited for the sync step to return"
    assert proc.returncode == 130 and "interrupted" in out
    assert stored_status(url, "r1") == "CANCELLED"
    resumed = subprocess.run(
        [sys.executable, str(script), url, str(marker), where, "r1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=BOUND,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == "COMPLETED"
