"""Per-workflow concurrency limits across workers (issue #19, item 1): ``Workflow(
max_concurrent_runs=2)`` holds across three worker processes on one storage, counted in the
claim's atomic step; and ``claim_next(limits=...)`` on every backend."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from plait.errors import DefinitionError
from plait.storage import RunRecord, Storage, resolve_storage
from tests.workers.helpers import environment, executions, lines, start_worker, stop, wait_for, workflow


def _peak(active: Path) -> tuple[int, set[str]]:
    """The most runs inside step ``b`` at once (from the START/END order), and the pids seen."""
    inside = peak = 0
    pids = set()
    for kind, _, pid in (line.split() for line in active.read_text().splitlines()):
        inside += 1 if kind == "START" else -1
        peak = max(peak, inside)
        pids.add(pid)
    return peak, pids


@pytest.mark.slow
def test_three_workers_never_run_more_than_the_limit_at_once(
    storage_url: str, workflow_name: str, tmp_path: Path
) -> None:
    log, active = tmp_path / "effects.log", tmp_path / "active.log"
    extra = {"PLAIT_TEST_MAX_RUNS": "2", "PLAIT_TEST_SLEEP": "0.1", "PLAIT_TEST_ACTIVE": str(active)}
    limited = workflow(workflow_name, storage_url, log, **extra)
    assert limited.max_concurrent_runs == 2
    run_ids = [limited.start(f"in{i}", queue=True).run_id for i in range(30)]
    limited.close()
    env = environment(workflow_name, storage_url, log, **extra)
    workers = [start_worker(env, "--concurrency", "4", "--poll", "20ms") for _ in range(3)]
    try:
        wait_for(lambda: len(executions(log, "b")) >= 30, "every run's last step", 120, tuple(workers))
    finally:
        results = [stop(w) for w in workers]
    for worker, (_, err) in zip(workers, results, strict=True):
        assert worker.returncode == 0, err
    assert not [parts for parts in lines(log) if parts[0] == "OVERLAP"]
    assert sorted(executions(log, "b")) == sorted(run_ids) and set(executions(log, "b").values()) == {1}
    peak, pids = _peak(active)
    assert peak == 2, f"{peak} runs at once under max_concurrent_runs=2"  # 2: the limit was used
    assert len(pids) >= 2, "more than one worker took runs"


async def _open(url: str) -> Storage:
    storage = resolve_storage(url)
    assert storage is not None
    await storage.setup()
    return storage


def _owner() -> dict[str, Any]:
    return {"owner": uuid.uuid4().hex, "host": "test", "pid": 1}


async def test_claim_next_limits_count_live_leases_only(storage_url: str) -> None:
    storage = await _open(storage_url)
    limited, free = f"lim-{uuid.uuid4().hex[:10]}", f"free-{uuid.uuid4().hex[:10]}"
    try:
        for workflow_id in (limited, free):
            for i in range(4):
                await storage.save_run(
                    RunRecord(
                        run_id=f"{workflow_id}-{i}",
                        workflow_id=workflow_id,
                        workflow_name=workflow_id,
                        session_id="s",
                        status="QUEUED",
                        created_at=time.time() + i,
                    )
                )
        caps = {limited: 2}
        first = _owner()
        assert await storage.claim_next([limited], first, 30, limits=caps) == f"{limited}-0"
        short = _owner()
        assert await storage.claim_next([limited], short, 2.0, limits=caps) == f"{limited}-1"
        assert await storage.claim_next([limited], _owner(), 30, limits=caps) is None  # 2 leased
        # the other workflow is not held up by the limited one, nor counted in it
        got = {await storage.claim_next([limited, free], _owner(), 30, limits=caps) for _ in range(2)}
        assert got == {f"{free}-0", f"{free}-1"}
        # a run that ends releases its place
        await storage.release_lease(f"{limited}-0", first["owner"])
        run = await storage.get_run(f"{limited}-0")
        assert run is not None
        run.status = "COMPLETED"
        await storage.save_run(run)
        assert await storage.claim_next([limited], _owner(), 30, limits=caps) == f"{limited}-2"
        # an expired lease is no longer counted (its run, still QUEUED, is claimable again)
        await asyncio.sleep(2.1)
        assert await storage.claim_next([limited], _owner(), 30, limits=caps) == f"{limited}-1"
        assert await storage.claim_next([limited], _owner(), 30, limits={limited: 3}) == f"{limited}-3"
        with pytest.raises(DefinitionError, match="limits must map workflow ids to ints >= 1, got"):
            await storage.claim_next([limited], _owner(), 30, limits={limited: 0})
    finally:
        for workflow_id in (limited, free):
            for i in range(4):
                await storage.delete_run(f"{workflow_id}-{i}", force=True)
        await storage.close()
