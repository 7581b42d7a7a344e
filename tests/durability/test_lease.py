"""Run leases: two real processes resuming one crashed run execute each unfinished step
once; a run that is executing cannot be resumed elsewhere (a clear error naming the holder)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

SCRIPT = Path(__file__).with_name("crashy.py")
# crashy's workflow with a short lease, so a killed holder's lease expires within the test
RUN = (
    f"import json, sys; sys.path.insert(0, {str(SCRIPT.parent)!r}); import crashy;"
    "w = crashy.build(sys.argv[1]); w.lease_ttl = 1.5;"
    "o = w.run('go', run_id=sys.argv[2]) if sys.argv[3] == 'run' else w.continue_run(sys.argv[2], wait=sys.argv[3] == 'wait');"
    "print(json.dumps({'status': str(o.status)}))"
)


def _start(url: str, run_id: str, mode: str, log: Path, block_at: str | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "PLAIT_TEST_LOG": str(log)}
    env.pop("PLAIT_BLOCK_AT", None)
    if block_at:
        env["PLAIT_BLOCK_AT"] = block_at
    return subprocess.Popen(
        [sys.executable, "-c", RUN, url, run_id, mode],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_held_run_is_refused_and_two_resumers_run_each_step_once(
    storage_url: str, run_id: str, tmp_path: Path
) -> None:
    log = tmp_path / "effects.log"
    holder = _start(storage_url, run_id, "run", log, block_at="body")
    marker = Path(f"{log}.blocked")
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert holder.poll() is None, holder.communicate()
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.02)
    try:
        # the holder is alive and renewing: a resumer is refused, told who holds the run
        refused = _start(storage_url, run_id, "now", log)
        _, err = refused.communicate(timeout=60)
        assert refused.returncode != 0
        assert "RunClaimedError" in err and f"pid {holder.pid}" in err, err
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate(timeout=30)
    # two processes resume the crashed run at once, both waiting for the lease
    resumers = [_start(storage_url, run_id, "wait", log) for _ in range(2)]
    results = [(r.communicate(timeout=120), r.returncode) for r in resumers]
    completed = [out for (out, _), code in results if code == 0]
    assert len(completed) == 1, results
    loser = next(err for (_, err), code in results if code != 0)
    assert "already ended as COMPLETED" in loser, loser
    counts = Counter(log.read_text().split())
    # the killed body iteration never wrote; everything ran exactly once per iteration
    assert counts == {"first": 1, "b1": 1, "b2": 1, "b3": 1, "body": 3, "last": 1}, counts
