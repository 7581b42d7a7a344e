"""Workers apply ``retention=`` (issue #19, item 3): two worker processes on one storage prune
the finished runs of the workflows they serve, and only those; a failed prune is logged and
the worker goes on."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from plait import Step, StepInput, Worker, Workflow
from plait.errors import DefinitionError
from plait.storage import RunRecord, Storage, StorageError, resolve_storage
from tests.durability.conftest import _url
from tests.workers.helpers import environment, start_worker, stop, wait_for, workflow


async def _ids(url: str, workflow_id: str) -> dict[str, str]:
    storage = resolve_storage(url)
    assert storage is not None
    await storage.setup()
    try:
        return {r.run_id: r.status for r in await storage.list_runs(workflow_id=workflow_id, limit=1000)}
    finally:
        await storage.close()


async def _put(url: str, records: list[RunRecord]) -> None:
    storage = resolve_storage(url)
    assert storage is not None
    await storage.setup()
    try:
        for record in records:
            await storage.save_run(record)
    finally:
        await storage.close()


def _old(workflow_id: str, run_id: str, status: str) -> RunRecord:
    long_ago = time.time() - 3600
    return RunRecord(
        run_id=run_id,
        workflow_id=workflow_id,
        workflow_name=workflow_id,
        session_id="s",
        status=status,
        created_at=long_ago,
        updated_at=long_ago,
    )


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_two_workers_prune_their_workflows_finished_runs_and_nothing_else(
    backend: str, workflow_name: str, tmp_path: Path
) -> None:
    url = _url(backend, tmp_path)
    log = tmp_path / "effects.log"
    other = f"{workflow_name}-other"  # a workflow no worker serves: its old runs stay
    kept = workflow(workflow_name, url, log, PLAIT_TEST_RETENTION="1s")
    assert kept.retention == 1.0
    asyncio.run(
        _put(
            url,
            [_old(other, f"{other}-done", "COMPLETED")]
            + [_old(workflow_name, f"{workflow_name}-old{i}", "COMPLETED") for i in range(20)]
            + [_old(workflow_name, f"{workflow_name}-paused", "PAUSED")],  # not finished: kept
        )
    )
    queued = [kept.start(f"x{i}", queue=True).run_id for i in range(10)]
    kept.close()
    env = environment(workflow_name, url, log, PLAIT_TEST_RETENTION="1s")
    workers = [start_worker(env, "--poll", "50ms", "--prune-every", "200ms") for _ in range(2)]
    try:
        # the old runs go at once; the queued ones complete, then go a second after
        wait_for(
            lambda: set(asyncio.run(_ids(url, workflow_name))) == {f"{workflow_name}-paused"},
            "every finished run pruned",
            60,
            tuple(workers),
        )
    finally:
        results = [stop(w) for w in workers]
    for worker, (_, err) in zip(workers, results, strict=True):
        assert worker.returncode == 0, err
        assert "pruning" not in err and "0 failed" in err, err
    done = [line for line in log.read_text().splitlines() if line.startswith("b ")]
    assert sorted(line.split()[1] for line in done) == sorted(queued)  # each ran (once) before it went
    pruned = [
        int(line.split("pruned ")[1].split()[0])
        for _, err in results
        for line in err.splitlines()
        if " pruned " in line
    ]
    assert sum(pruned) == 30  # 20 old + 10 queued, each counted by the one worker that deleted it
    assert asyncio.run(_ids(url, other)) == {f"{other}-done": "COMPLETED"}


async def _echo(step_input: StepInput) -> str:
    return f"echo {step_input.input}"


def test_a_failed_prune_is_logged_and_the_worker_goes_on(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/r.db"
    wf = Workflow(name="kept", steps=[Step(name="echo", executor=_echo)], storage=url, retention="1h")
    lines: list[str] = []
    worker = Worker([wf], poll=0.02, prune_every=0.05, log=lines.append)
    calls = 0

    async def serve() -> None:
        nonlocal calls
        storage = await wf._ready_storage()
        assert storage is not None
        real = Storage.prune

        async def flaky(self: Storage, *args: object, **kwargs: object) -> int:
            nonlocal calls
            calls += 1
            if calls <= 2:
                raise StorageError("the database went away")
            return await real(self, *args, **kwargs)  # type: ignore[arg-type]

        storage.prune = flaky.__get__(storage)  # type: ignore[method-assign]
        task = asyncio.create_task(worker.run())
        queued = await wf.astart("later", queue=True)
        record = await queued.await_end(timeout=30, poll=0.02)
        assert record.status == "COMPLETED" and record.content == "echo later"
        while calls < 4:
            await asyncio.sleep(0.02)
        worker.stop()
        await task

    asyncio.run(serve())
    failures = [line for line in lines if "pruning kept failed" in line]
    assert len(failures) == 2 and "StorageError: the database went away" in failures[0], lines
    assert worker.stats.finished and worker.pruned == 0  # the run is an hour from its retention


def test_prune_every_is_checked() -> None:
    wf = Workflow(name="q", steps=[Step(name="echo", executor=_echo)], storage="memory://")
    with pytest.raises(
        DefinitionError, match="prune_every must be a positive, finite number of seconds, got 0"
    ):
        Worker([wf], prune_every=0)
    with pytest.raises(
        DefinitionError, match="prune_every must be a positive, finite number of seconds, got None"
    ):
        Worker([wf], prune_every=None)  # type: ignore[arg-type]
