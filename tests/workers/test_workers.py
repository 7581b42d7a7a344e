"""Workers (issue #19, item 1): ``plait worker`` processes claim queued runs and runs whose
process died, exactly once, on a SQLite file, PostgreSQL and Redis; SIGKILL, SIGTERM and
recovery with real processes."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from plait import RunStatus
from plait.storage import resolve_storage
from tests.workers.helpers import environment, executions, lines, start_worker, stop, wait_for, workflow


async def _statuses(url: str, run_ids: list[str]) -> dict[str, tuple[str, object]]:
    storage = resolve_storage(url)
    assert storage is not None
    await storage.setup()
    try:
        found = {}
        for run_id in run_ids:
            record = await storage.get_run(run_id)
            assert record is not None, run_id
            found[run_id] = (record.status, record.content)
        return found
    finally:
        await storage.close()


@pytest.mark.slow
def test_three_workers_execute_each_of_200_queued_runs_exactly_once(
    storage_url: str, workflow_name: str, tmp_path: Path
) -> None:
    log = tmp_path / "effects.log"
    queued = workflow(workflow_name, storage_url, log)
    run_ids = [queued.start(f"in{i}", queue=True).run_id for i in range(200)]
    assert queued.start("probe", queue=True).status() is RunStatus.QUEUED  # nothing executes it yet
    run_ids.append(queued.start("last", queue=True, run_id=f"{workflow_name}-last").run_id)
    queued.close()
    env = environment(workflow_name, storage_url, log)
    workers = [start_worker(env, "--concurrency", "4", "--poll", "50ms") for _ in range(3)]
    try:
        wait_for(lambda: len(executions(log, "b")) >= 202, "every run's last step", 120, tuple(workers))
    finally:
        results = [stop(w) for w in workers]
    for worker, (_, err) in zip(workers, results, strict=True):
        assert worker.returncode == 0, err
        assert "SIGTERM: stopping" in err and "stopped;" in err, err
    assert not [parts for parts in lines(log) if parts[0] == "OVERLAP"]
    for step in ("a", "b"):
        counts = executions(log, step)
        assert len(counts) == 202 and set(counts.values()) == {1}, counts.most_common(3)
    pids = {parts[2] for parts in lines(log)}
    assert len(pids) == 3, "the three workers shared the runs"
    stored = asyncio.run(_statuses(storage_url, run_ids))
    assert {status for status, _ in stored.values()} == {"COMPLETED"}
    assert stored[run_ids[7]][1] == "b(a(in7))"
    assert stored[f"{workflow_name}-last"][1] == "b(a(last))"


@pytest.mark.slow
@pytest.mark.parametrize("storage_url", ["postgres", "redis", "sqlite"], indirect=True)
def test_a_killed_worker_s_runs_are_taken_over_after_the_lease_expires(
    storage_url: str, workflow_name: str, tmp_path: Path
) -> None:
    log = tmp_path / "effects.log"
    queued = workflow(workflow_name, storage_url, log)
    run_ids = [queued.start(f"in{i}", queue=True).run_id for i in range(50)]
    queued.close()
    env = environment(workflow_name, storage_url, log, PLAIT_TEST_SLEEP="0.4")
    doomed = start_worker(env, "--concurrency", "8", "--poll", "50ms", "--lease-ttl", "1.5s")
    try:

        def midway() -> set[str]:  # runs whose step b has started (step a checkpointed) and not ended
            return {p.name.rpartition(".")[2] for p in tmp_path.glob("effects.log.b.*")}

        wait_for(lambda: len(executions(log, "b")) >= 8 and midway(), "runs in the middle", 60, (doomed,))
        # some runs are in the middle of step b now: killed with no chance to release anything
        doomed.send_signal(signal.SIGKILL)
        doomed.communicate(timeout=30)
        held = midway()
        assert held, "the worker held runs in the middle when it died"
        heir = start_worker(env, "--concurrency", "8", "--poll", "50ms", "--lease-ttl", "1.5s")
        try:
            wait_for(lambda: len(executions(log, "b")) >= 50, "every run to finish", 120, (heir,))
        finally:
            _, err = stop(heir)
        assert heir.returncode == 0, err
    finally:
        if doomed.poll() is None:
            doomed.kill()
    assert not [parts for parts in lines(log) if parts[0] == "OVERLAP"], "a step ran twice at once"
    a_runs, b_runs = executions(log, "a"), executions(log, "b")
    assert len(b_runs) == 50
    # step a of the runs the dead worker held had completed and was checkpointed: never again
    assert all(a_runs[run_id] == 1 for run_id in held)
    heir_pid = str(heir.pid)
    taken_over = {p[1] for p in lines(log) if p[0] == "b" and p[2] == heir_pid}
    assert held <= taken_over, "the second worker resumed the runs the first one held"
    stored = asyncio.run(_statuses(storage_url, run_ids))
    assert {status for status, _ in stored.values()} == {"COMPLETED"}
    assert all(stored[r][1] == f"b(a(in{i}))" for i, r in enumerate(run_ids))


@pytest.mark.slow
def test_sigterm_lets_the_runs_in_hand_finish_and_claims_no_more(
    storage_url: str, workflow_name: str, tmp_path: Path
) -> None:
    log = tmp_path / "effects.log"
    queued = workflow(workflow_name, storage_url, log)
    run_ids = [queued.start(f"in{i}", queue=True).run_id for i in range(6)]
    queued.close()
    env = environment(workflow_name, storage_url, log, PLAIT_TEST_SLEEP="1.0")
    worker = start_worker(env, "--concurrency", "2", "--poll", "50ms")
    try:
        wait_for(lambda: len(executions(log, "a")) >= 2, "two runs in hand", 60, (worker,))
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, err
    assert "SIGTERM: stopping" in err and "2 run(s) finished" in err, err
    stored = asyncio.run(_statuses(storage_url, run_ids))
    finished = [r for r in run_ids if stored[r][0] == "COMPLETED"]
    assert len(finished) == 2 and set(executions(log, "b")) == set(finished)
    assert sorted(status for status, _ in stored.values()).count("QUEUED") == 4


@pytest.mark.slow
def test_sigterm_past_the_grace_gives_the_runs_back_for_another_worker(
    storage_url: str, workflow_name: str, tmp_path: Path
) -> None:
    log = tmp_path / "effects.log"
    queued = workflow(workflow_name, storage_url, log)
    run_ids = [queued.start(f"in{i}", queue=True).run_id for i in range(2)]
    queued.close()
    env = environment(workflow_name, storage_url, log, PLAIT_TEST_SLEEP="30")
    worker = start_worker(env, "--concurrency", "2", "--poll", "50ms", "--grace", "0.2s")
    try:
        wait_for(lambda: len(executions(log, "a")) >= 2, "two runs in hand", 60, (worker,))
        time.sleep(0.2)  # inside step b now
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, err
    assert "2 given back" in err, err
    stored = asyncio.run(_statuses(storage_url, run_ids))
    assert {status for status, _ in stored.values()} == {"RUNNING"}  # resumable, lease released
    # another worker takes them up at once (no lease to wait for), from their checkpoints
    env["PLAIT_TEST_SLEEP"] = "0"
    heir = start_worker(env, "--poll", "50ms")
    try:
        wait_for(lambda: len(executions(log, "b")) >= 2, "the runs to finish", 30, (heir,))
    finally:
        stop(heir)
    assert set(executions(log, "a").values()) == {1}, "step a was checkpointed before the shutdown"
    stored = asyncio.run(_statuses(storage_url, run_ids))
    assert [stored[r] for r in run_ids] == [("COMPLETED", "b(a(in0))"), ("COMPLETED", "b(a(in1))")]
