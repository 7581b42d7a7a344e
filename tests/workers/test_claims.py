"""Storage.claim_next on every backend: order (priority, then age), what may be claimed (queued
runs, running ones whose lease expired), exclusivity under concurrent claimers, and the
default for third-party backends; start(queue=True) and Worker options with bad input."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from plait import QueuedRun, RunStatus, Step, StepInput, Worker, Workflow
from plait.errors import DefinitionError
from plait.storage import MemoryStorage, RunRecord, Storage, claim_run, resolve_storage


def _owner() -> dict[str, Any]:
    return {"owner": uuid.uuid4().hex, "host": "test", "pid": 1}


def _record(workflow_id: str, run_id: str, status: str, priority: int = 0, at: float = 0.0) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        workflow_id=workflow_id,
        workflow_name=workflow_id,
        session_id="s",
        status=status,
        priority=priority,
        created_at=at or time.time(),
    )


@pytest.fixture
def any_storage(storage_url: str) -> str:
    return storage_url


async def _open(url: str) -> Storage:
    storage = resolve_storage(url)
    assert storage is not None
    await storage.setup()
    return storage


async def test_claims_go_by_priority_then_age_and_skip_what_is_not_claimable(storage_url: str) -> None:
    storage = await _open(storage_url)
    wf = f"claims-{uuid.uuid4().hex[:8]}"
    try:
        now = time.time()
        for record in (
            _record(wf, f"{wf}-old", "QUEUED", 0, now - 30),
            _record(wf, f"{wf}-new", "QUEUED", 0, now - 10),
            _record(wf, f"{wf}-urgent", "QUEUED", 5, now - 5),
            _record(wf, f"{wf}-done", "COMPLETED", 9, now - 40),
            _record(wf, f"{wf}-paused", "PAUSED", 9, now - 40),
            _record(f"{wf}-other", f"{wf}-elsewhere", "QUEUED", 9, now - 40),
        ):
            await storage.save_run(record)
        # a running run whose holder is alive is not taken; one whose lease expired is
        live = await claim_run(storage, f"{wf}-live", ttl=30)
        await storage.save_run(_record(wf, f"{wf}-live", "RUNNING", 9, now - 50))
        await storage.claim_lease(f"{wf}-crashed", _owner(), 0.05)
        await storage.save_run(_record(wf, f"{wf}-crashed", "RUNNING", 1, now - 50))
        await asyncio.sleep(0.1)
        order = [await storage.claim_next([wf], _owner(), 30) for _ in range(5)]
        assert order == [f"{wf}-urgent", f"{wf}-crashed", f"{wf}-old", f"{wf}-new", None]
        # each claim holds the run's lease: nobody else may execute it now
        held = await storage.claim_lease(f"{wf}-old", _owner(), 30)
        assert held is not None and held["expires_at"] > time.time()
        await live.release()  # released (the worker gives a run back): claimable again
        assert await storage.claim_next([wf], _owner(), 30) == f"{wf}-live"
        assert await storage.claim_next([f"{wf}-other", wf], _owner(), 30) == f"{wf}-elsewhere"
        assert await storage.claim_next([], _owner(), 30) is None
    finally:
        await storage.close()


async def test_recovery_claims_take_no_queued_run(storage_url: str) -> None:
    storage = await _open(storage_url)
    wf = f"claims-{uuid.uuid4().hex[:8]}"
    try:
        await storage.save_run(_record(wf, f"{wf}-queued", "QUEUED"))
        assert await storage.claim_next([wf], _owner(), 30, queued=False) is None
        await storage.save_run(_record(wf, f"{wf}-crashed", "RUNNING"))  # no lease at all
        assert await storage.claim_next([wf], _owner(), 30, queued=False) == f"{wf}-crashed"
    finally:
        await storage.close()


def test_concurrent_claimers_on_threads_never_get_one_run_twice(storage_url: str) -> None:
    wf = f"claims-{uuid.uuid4().hex[:8]}"

    async def fill() -> None:
        storage = await _open(storage_url)
        for i in range(60):
            await storage.save_run(_record(wf, f"{wf}-{i:02}", "QUEUED", i % 3))
        await storage.close()

    asyncio.run(fill())
    got: list[str] = []
    lock = threading.Lock()

    def claimer() -> None:
        async def drain() -> None:
            storage = await _open(storage_url)  # a storage object (and connection) per thread
            try:
                while (run_id := await storage.claim_next([wf], _owner(), 30)) is not None:
                    with lock:
                        got.append(run_id)
            finally:
                await storage.close()

        asyncio.run(drain())

    threads = [threading.Thread(target=claimer) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(got) == 60 and len(set(got)) == 60, Counter(got).most_common(2)


class _ListingOnly(MemoryStorage):
    """A third-party backend without a native claim: the base class's default applies."""

    claim_next = Storage.claim_next


async def test_the_default_claim_for_third_party_backends() -> None:
    storage = _ListingOnly()
    await storage.save_run(_record("w", "low", "QUEUED", 0, 1.0))
    await storage.save_run(_record("w", "high", "QUEUED", 2, 2.0))
    await storage.save_run(_record("w", "done", "COMPLETED", 9, 0.5))
    claims = await asyncio.gather(*(storage.claim_next(["w"], _owner(), 30) for _ in range(4)))
    assert sorted(c for c in claims if c) == ["high", "low"]


async def test_the_default_claim_counts_limits_by_listing() -> None:
    storage = _ListingOnly()
    for i in range(3):
        await storage.save_run(_record("w", f"r{i}", "QUEUED", 0, float(i + 1)))
    await storage.save_run(_record("v", "other", "QUEUED", 0, 9.0))
    caps = {"w": 2}
    claims = [await storage.claim_next(["w", "v"], _owner(), 30, limits=caps) for _ in range(4)]
    assert claims == ["r0", "r1", "other", None]  # r2 waits while two runs of w hold a lease


async def test_claim_next_says_what_it_expected() -> None:
    storage = MemoryStorage()
    with pytest.raises(DefinitionError, match="workflow_ids must be a list of str, got 'w'"):
        await storage.claim_next("w", _owner(), 30)
    with pytest.raises(DefinitionError, match="owner must be a dict with an 'owner' id"):
        await storage.claim_next(["w"], {"pid": 1}, 30)
    with pytest.raises(DefinitionError, match="ttl must be a positive number"):
        await storage.claim_next(["w"], _owner(), 0)


async def _echo(step_input: StepInput) -> str:
    return f"echo {step_input.input}"


def test_queued_runs_keep_what_the_storage_can_hold(tmp_path: Path) -> None:
    workflow = Workflow(
        name="q", steps=[Step(name="echo", executor=_echo)], storage=f"sqlite:///{tmp_path}/r.db"
    )
    queued = workflow.start({"when": "now"}, queue=True, user_id="ann", metadata={"k": 1}, session_id="s1")
    assert isinstance(queued, QueuedRun) and queued.status() is RunStatus.QUEUED
    with pytest.raises(TimeoutError, match="still QUEUED"):
        queued.wait(timeout=0.05)
    with pytest.raises(DefinitionError, match="already exists"):
        workflow.start("again", queue=True, run_id=queued.run_id)
    with pytest.raises(DefinitionError, match=r"keeps only session_id, user_id, metadata.*got session_state"):
        workflow.start("x", queue=True, session_state={"a": 1})
    with pytest.raises(DefinitionError, match="priority must be an int from"):
        workflow.start("x", queue=True, priority=2**40)
    with pytest.raises(DefinitionError, match="priority must be an int"):
        workflow.start("x", queue=True, priority=True)
    with pytest.raises(DefinitionError, match="priority= is for queue=True"):
        workflow.start("x", priority=3)
    no_storage = Workflow(name="n", steps=[Step(name="echo", executor=_echo)])
    with pytest.raises(
        DefinitionError, match="waits in the storage for a worker; give the workflow storage="
    ):
        no_storage.start("x", queue=True)

    worker = Worker([workflow], poll=0.02)

    async def serve() -> None:
        task = asyncio.create_task(worker.run())
        record = await queued.await_end(timeout=30, poll=0.02)
        worker.stop()
        await task
        assert record.status == "COMPLETED" and record.content == "echo {'when': 'now'}"
        assert record.user_id == "ann" and record.metadata == {"k": 1} and record.session_id == "s1"

    asyncio.run(serve())
    workflow.close()


async def test_astart_queues_too(tmp_path: Path) -> None:
    workflow = Workflow(
        name="aq", steps=[Step(name="echo", executor=_echo)], storage=f"sqlite:///{tmp_path}/r.db"
    )
    queued = await workflow.astart("later", queue=True, priority=5, session_id="s2")
    assert isinstance(queued, QueuedRun) and await queued.astatus() is RunStatus.QUEUED
    with pytest.raises(DefinitionError, match="priority= is for queue=True"):
        await workflow.astart("x", priority=3)
    worker = Worker([workflow], poll=0.02)
    task = asyncio.create_task(worker.run())
    record = await queued.await_end(timeout=30, poll=0.02)
    worker.stop()
    await task
    assert record.status == "COMPLETED" and record.content == "echo later" and record.session_id == "s2"
    await workflow.aclose()


def test_worker_options_are_checked() -> None:
    workflow = Workflow(name="q", steps=[Step(name="echo", executor=_echo)], storage="memory://")
    with pytest.raises(DefinitionError, match="expected one or more Workflow objects"):
        Worker([])
    with pytest.raises(DefinitionError, match="concurrency must be an int >= 1, got 0"):
        Worker([workflow], concurrency=0)
    with pytest.raises(DefinitionError, match="poll must be a positive"):
        Worker([workflow], poll=-1)
    with pytest.raises(DefinitionError, match="grace must be a finite number"):
        Worker([workflow], grace=float("inf"))
    with pytest.raises(DefinitionError, match="share the id 'q'"):
        Worker([workflow, workflow])
    other = Workflow(name="o", steps=[Step(name="echo", executor=_echo)], storage="sqlite:///elsewhere.db")
    with pytest.raises(DefinitionError, match="must use one storage"):
        Worker([workflow, other])
    with pytest.raises(DefinitionError, match="max_concurrent_runs must be an int >= 1 or None, got 0"):
        Workflow(name="m", steps=[Step(name="echo", executor=_echo)], max_concurrent_runs=0)


def test_max_concurrent_runs_caps_one_workflow_while_another_goes_on(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/r.db"
    active: Counter[str] = Counter()
    peak: Counter[str] = Counter()
    lock = threading.Lock()

    def tracked(name: str):  # type: ignore[no-untyped-def]
        async def step(step_input: StepInput) -> str:
            with lock:
                active[name] += 1
                peak[name] = max(peak[name], active[name])
            await asyncio.sleep(0.05)
            with lock:
                active[name] -= 1
            return name

        return Step(name="s", executor=step)

    capped = Workflow(name="capped", steps=[tracked("capped")], storage=url, max_concurrent_runs=1)
    free = Workflow(name="free", steps=[tracked("free")], storage=url)
    runs = [capped.start(i, queue=True) for i in range(5)] + [free.start(i, queue=True) for i in range(5)]
    worker = Worker([capped, free], concurrency=4, poll=0.02)

    async def serve() -> None:
        task = asyncio.create_task(worker.run())
        for queued in runs:
            assert (await queued.await_end(timeout=30, poll=0.02)).status == "COMPLETED"
        worker.stop()
        await task

    asyncio.run(serve())
    assert peak["capped"] == 1 and peak["free"] >= 2, peak
    assert len(worker.stats.finished) == 10
