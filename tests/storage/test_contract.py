"""The storage contract, run against every backend."""

from __future__ import annotations

import asyncio
import time

import pytest

from plait.storage import CacheEntry, RunRecord, SessionRecord, StepCheckpoint, Storage


def run(run_id: str, **fields: object) -> RunRecord:
    values: dict[str, object] = {
        "run_id": run_id,
        "workflow_id": "wf",
        "workflow_name": "Workflow",
        "session_id": "s1",
        "status": "RUNNING",
        "input": {"topic": "ünïcode ✓", "n": [1, 2]},
    }
    values.update(fields)
    return RunRecord.model_validate(values)


async def test_setup_is_idempotent(storage: Storage) -> None:
    await storage.setup()
    await storage.setup()


async def test_runs_round_trip_and_upsert(storage: Storage) -> None:
    await storage.save_run(run("r1"))
    await storage.save_run(run("r1", status="COMPLETED", content="done", metrics={"tokens": 5}, pause=None))
    loaded = await storage.get_run("r1")
    assert loaded is not None
    assert (loaded.status, loaded.content, loaded.metrics) == ("COMPLETED", "done", {"tokens": 5})
    assert loaded.input == {"topic": "ünïcode ✓", "n": [1, 2]}
    assert await storage.get_run("missing") is None


async def test_list_runs_newest_first_with_filters(storage: Storage) -> None:
    now = time.time()
    for i in range(5):
        await storage.save_run(
            run(
                f"r{i}",
                created_at=now + i,
                status="COMPLETED" if i % 2 else "ERROR",
                workflow_id=f"wf{i % 2}",
            )
        )
    assert [r.run_id for r in await storage.list_runs()] == ["r4", "r3", "r2", "r1", "r0"]
    assert [r.run_id for r in await storage.list_runs(limit=2)] == ["r4", "r3"]
    assert [r.run_id for r in await storage.list_runs(status="COMPLETED")] == ["r3", "r1"]
    assert [r.run_id for r in await storage.list_runs(workflow_id="wf0")] == ["r4", "r2", "r0"]


async def test_list_runs_filters_on_user_id(storage: Storage) -> None:
    now = time.time()
    for i in range(5):
        user = None if i == 4 else f"user-{i % 2}"
        await storage.save_run(run(f"u{i}", created_at=now + i, user_id=user, workflow_id=f"wf{i % 2}"))
    assert [r.run_id for r in await storage.list_runs(user_id="user-0")] == ["u2", "u0"]
    assert [r.run_id for r in await storage.list_runs(user_id="user-1", workflow_id="wf1")] == ["u3", "u1"]
    assert await storage.list_runs(user_id="user-1", workflow_id="wf0") == []
    assert await storage.list_runs(user_id="nobody") == []
    # a run that changes its user moves between the user filters
    await storage.save_run(run("u0", created_at=now, user_id="user-1", workflow_id="wf0"))
    assert [r.run_id for r in await storage.list_runs(user_id="user-0")] == ["u2"]
    assert [r.run_id for r in await storage.list_runs(user_id="user-1")] == ["u3", "u1", "u0"]
    loaded = await storage.get_run("u4")
    assert loaded is not None and loaded.user_id is None


async def test_list_runs_filters_on_session_and_pages_with_offset(storage: Storage) -> None:
    now = time.time()
    for i in range(6):
        await storage.save_run(run(f"p{i}", created_at=now + i, session_id=f"s{i % 2}", status="COMPLETED"))
    assert [r.run_id for r in await storage.list_runs(session_id="s1")] == ["p5", "p3", "p1"]
    assert [r.run_id for r in await storage.list_runs(limit=2, offset=2)] == ["p3", "p2"]
    assert [r.run_id for r in await storage.list_runs(limit=2, offset=5)] == ["p0"]
    assert await storage.list_runs(offset=6) == []
    both = await storage.list_runs(session_id="s0", status="COMPLETED", limit=1, offset=1)
    assert [r.run_id for r in both] == ["p2"]
    assert await storage.list_runs(session_id="nobody") == []


async def test_checkpoints_replace_and_keep_order(storage: Storage) -> None:
    def checkpoint(step_id: str, content: object, at: float) -> StepCheckpoint:
        return StepCheckpoint(
            run_id="r1", step_id=step_id, output={"content": content}, state={"n": at}, created_at=at
        )

    await storage.save_checkpoints([checkpoint("a", 1, 1.0), checkpoint("b/c", "x", 2.0)])
    await storage.save_checkpoints([checkpoint("loop[1]/d", None, 3.0)])
    await storage.save_checkpoints([checkpoint("a", 2, 4.0)])
    loaded = await storage.load_checkpoints("r1")
    assert {c.step_id: c.output["content"] for c in loaded} == {"a": 2, "b/c": "x", "loop[1]/d": None}
    assert [c.step_id for c in loaded] == ["b/c", "loop[1]/d", "a"]
    assert loaded[-1].state == {"n": 4.0}
    assert await storage.load_checkpoints("other") == []


async def test_sessions(storage: Storage) -> None:
    assert await storage.load_session("s1") is None
    await storage.save_session(SessionRecord(session_id="s1", workflow_id="wf", state={"count": 1}))
    await storage.save_session(
        SessionRecord(session_id="s1", workflow_id="wf", state={"count": 2, "items": ["a"]})
    )
    loaded = await storage.load_session("s1")
    assert loaded is not None and loaded.state == {"count": 2, "items": ["a"]}


async def test_events_keep_append_order(storage: Storage) -> None:
    await storage.append_events("r1", [{"event": "A", "i": 0}, {"event": "B", "i": 1}])
    await storage.append_events("r1", [{"event": "C", "i": 2}])
    assert [e["i"] for e in await storage.load_events("r1")] == [0, 1, 2]


async def test_load_events_after_a_sequence_number(storage: Storage) -> None:
    await storage.append_events("r2", [{"i": i} for i in range(4)])
    await storage.append_events("other", [{"i": 99}])
    await storage.append_events("r2", [{"i": 4}])
    assert [e["i"] for e in await storage.load_events("r2", after=0)] == [0, 1, 2, 3, 4]
    assert [e["i"] for e in await storage.load_events("r2", after=3)] == [3, 4]
    assert await storage.load_events("r2", after=5) == []
    assert await storage.load_events("missing", after=2) == []


async def test_events_of_an_unknown_run(storage: Storage) -> None:
    assert await storage.load_events("r2") == []


async def test_cache_with_expiry(storage: Storage) -> None:
    await storage.put_cache(CacheEntry(key="k1", output={"content": "v1"}))
    await storage.put_cache(CacheEntry(key="k2", output={"content": "v2"}, expires_at=time.time() - 1))
    hit = await storage.get_cache("k1")
    assert hit is not None and hit.output == {"content": "v1"}
    assert await storage.get_cache("k2") is None
    assert await storage.get_cache("k3") is None


async def test_hundred_concurrent_runs_lose_and_corrupt_nothing(storage: Storage) -> None:
    async def one(i: int) -> None:
        await storage.save_run(run(f"c{i}", created_at=1000.0 + i))
        await storage.save_checkpoints(
            [
                StepCheckpoint(
                    run_id=f"c{i}", step_id=f"s{j}", output={"content": i * 10 + j}, state={"i": i}
                )
                for j in range(3)
            ]
        )
        await storage.append_events(f"c{i}", [{"i": i}])
        await storage.save_run(run(f"c{i}", created_at=1000.0 + i, status="COMPLETED", content=i))

    await asyncio.gather(*(one(i) for i in range(100)))
    runs = await storage.list_runs(limit=1000)
    assert sorted(r.run_id for r in runs) == sorted(f"c{i}" for i in range(100))
    assert all(r.status == "COMPLETED" and r.content == int(r.run_id[1:]) for r in runs)
    for i in (0, 42, 99):
        assert [c.output["content"] for c in await storage.load_checkpoints(f"c{i}")] == [
            i * 10,
            i * 10 + 1,
            i * 10 + 2,
        ]
        assert await storage.load_events(f"c{i}") == [{"i": i}]


@pytest.mark.parametrize("bad", [float("nan")])
async def test_values_that_are_not_json_are_rejected_or_preserved(storage: Storage, bad: float) -> None:
    # NaN is not JSON; a backend must either store it faithfully or raise, never corrupt the row.
    try:
        await storage.save_run(run("nan", content=bad))
    except Exception:
        return
    loaded = await storage.get_run("nan")
    assert loaded is not None and loaded.content != loaded.content  # NaN
