"""Branches a runner ships to another process are recorded and replayed (issue #15): the
branch runs with a recorder of its own, seeded with the recorded calls of its steps, and the
parent stores the calls it made. Through the real OpenAI SDK against the local
OpenAI-protocol server and PickleRoundTripRunner, on SQLite, PostgreSQL and Redis."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from plait import ReplayDivergenceError
from plait.errors import StepError
from plait.storage import Storage, StorageError
from plait.storage._sqlite import SQLiteStorage
from plait.storage._sqlite import _existing as sqlite_existing
from plait.testing import PickleRoundTripRunner
from tests.durability import shipped, test_replay
from tests.durability.tool_loop import storage_for
from tests.servers.openai_server import OpenAIServer

backend = test_replay.backend  # the fixture: SQLite, and a schema / prefix of its own
SCRIPT = Path(__file__).with_name("shipped.py")
ROOT = Path(__file__).resolve().parents[2]


async def _close(workflow: object, model: object, storage: object) -> None:
    await model.aclose()  # type: ignore[attr-defined]
    if isinstance(storage, Storage):
        await storage.close()
    else:
        await workflow.aclose()  # type: ignore[attr-defined]


async def test_a_replay_of_a_shipped_parallel_makes_no_live_call(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PLAIT_DIE_AFTER", raising=False)
    runner = PickleRoundTripRunner()
    storage = storage_for(backend)
    with OpenAIServer() as server:
        server.handler = shipped.handler
        workflow, model = shipped.build(storage, server.base_url, runner)
        original = await workflow.arun("items 1 and 2")
        assert original.content["research"] == "Looked up items 1 and 2."
        assert len(server.chat_requests) == 1
    assert runner.shipped == 2
    ready = await workflow._ready_storage()
    assert ready is not None
    calls = await ready.load_calls(original.run_id)
    # the branch's call, made in the "other process", was stored by the parent
    assert [(c.step_id, c.kind, c.index) for c in calls] == [("fan/research", "model", 0)]
    # the server is stopped: a live call could not even connect
    replayed = await workflow.areplay(original.run_id)
    assert runner.shipped == 4  # the branches were shipped again
    assert replayed.lineage == {"replay_of": original.run_id}
    assert dict(replayed.content) == dict(original.content)
    assert replayed.replay_differences == []
    # a replay records what it answered: it can be replayed in turn
    again = await workflow.areplay(replayed.run_id)
    assert dict(again.content) == dict(original.content)
    await _close(workflow, model, storage)


async def test_a_shipped_branch_that_diverges_stops_the_replay(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PLAIT_DIE_AFTER", raising=False)
    storage = storage_for(backend)
    with OpenAIServer() as server:
        server.handler = shipped.handler
        workflow, model = shipped.build(storage, server.base_url)
        original = await workflow.arun("items 1 and 2")
        changed, other = shipped.build(storage, server.base_url, instructions="Look items up two at a time.")
        with pytest.raises(ReplayDivergenceError) as caught:
            await changed.areplay(original.run_id)
        assert len(server.chat_requests) == 1  # nothing more was sent
    assert caught.value.step_id == "fan/research"
    assert '+      "content": "Look items up two at a time.",' in str(caught.value)
    await other.aclose()
    await _close(workflow, model, storage)


async def test_the_calls_of_a_shipped_branch_that_failed_are_not_made_again_on_resume(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PLAIT_DIE_AFTER", raising=False)
    storage = storage_for(backend)
    with OpenAIServer() as server:
        server.handler = shipped.handler
        workflow, model = shipped.build_failing(
            storage, server.base_url, PickleRoundTripRunner(), tmp_path / "failed"
        )
        with pytest.raises(StepError, match="check failed"):
            await workflow.arun("items 1 and 2", run_id=(run_id := f"failing-{uuid.uuid4().hex[:8]}"))
        assert len(server.chat_requests) == 1
        ready = await workflow._ready_storage()
        assert ready is not None
        # the branch failed after its agent's call: the call came back with the failure
        assert [(c.step_id, c.kind) for c in await ready.load_calls(run_id)] == [
            ("fan/research/ask", "model")
        ]
        output = await workflow.acontinue_run(run_id)
        assert output.content["research"] == "checked: Looked up items 1 and 2."
        assert len(server.chat_requests) == 1  # answered from the record
    await _close(workflow, model, storage)


def test_sigkill_after_a_shipped_branch_resumes_without_repeating_its_calls(
    backend: str, tmp_path: Path
) -> None:
    log = tmp_path / "effects.log"  # only its .dying marker: the agent has no tool
    run_id = f"shipped-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "PLAIT_TEST_LOG": str(log),
        "PYTHONPATH": str(ROOT),
        "PLAIT_DIE_AFTER": "1",
        "PLAIT_TEST_STORAGE": backend,
        "PLAIT_TEST_RUN": run_id,
    }
    with OpenAIServer() as server:
        server.handler = shipped.handler
        process = subprocess.run(
            [sys.executable, str(SCRIPT), backend, server.base_url, "run", run_id],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert process.returncode == -signal.SIGKILL, process.stderr
        assert Path(f"{log}.dying").read_text() == "1"  # the agent's call was stored first
        assert len(server.chat_requests) == 1

        env.pop("PLAIT_DIE_AFTER")
        result = subprocess.run(
            [sys.executable, str(SCRIPT), backend, server.base_url, "resume", run_id],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, result.stderr
        output = json.loads(result.stdout.strip().splitlines()[-1])
        assert output["status"] == "COMPLETED"
        assert output["content"]["research"] == "Looked up items 1 and 2."
        # the Parallel ran again, shipped again: its agent was answered from the record
        assert len(server.chat_requests) == 1


async def test_a_cassette_records_and_replays_a_shipped_branch(tmp_path: Path) -> None:
    from plait.testing import cassette

    path = tmp_path / "shipped.jsonl"
    runner = PickleRoundTripRunner()
    with OpenAIServer() as server:
        server.handler = shipped.handler
        workflow, model = shipped.build(None, server.base_url, runner)
        async with cassette(path) as recording:
            first = await workflow.arun("items 1 and 2")
        assert recording.mode == "record" and recording.live == 1
        assert len(server.chat_requests) == 1
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(line["step_id"], line["kind"]) for line in lines] == [("fan/research", "model")]
    async with cassette(path) as replaying:  # the server is stopped
        again = await workflow.arun("items 1 and 2")
    assert replaying.mode == "replay" and replaying.replayed == 1 and replaying.live == 0
    assert dict(again.content) == dict(first.content)
    assert runner.shipped == 4
    await model.aclose()


async def test_answers_a_shipped_branch_used_leave_the_runs_record() -> None:
    from plait._record import Recorder
    from plait._record_data import Recorded
    from plait._record_ship import adopt, child_recorder, ship, shipped_back

    recorded = [
        Recorded("tool", "fan/a", 0, "lookup", "k1", {"tool": "lookup"}, {"content": "1"}),
        Recorded("tool", "fan/a", 1, "lookup", "k1", {"tool": "lookup"}, {"content": "2"}),
        Recorded("tool", "fan/b", 0, "lookup", "k2", {"tool": "lookup"}, {"content": "3"}),
    ]
    kept: list[Recorded] = []

    async def sink(items: list[Recorded]) -> None:
        kept.extend(items)

    parent = Recorder(source=recorded, sink=sink, keep_answers=True)
    calls = ship(parent, "fan/a")
    assert [(c["step_id"], c["index"]) for c in calls.calls] == [("fan/a", 0), ("fan/a", 1)]  # not fan/b's
    child, collected = child_recorder(calls)
    hit = child._take("fan/a", "tool", "k1")  # the branch answers one call from the record
    assert hit is not None and hit.response == {"content": "1"}
    await child._keep(hit)
    await adopt(parent, shipped_back(child, collected))
    assert [k.response for k in kept] == [{"content": "1"}]  # recorded in the run
    assert parent.replayed == 1
    # shipped again (a retry of the branch), it gets only the answer not used yet
    assert [c["response"] for c in ship(parent, "fan/a").calls] == [{"content": "2"}]


class _NoCalls(SQLiteStorage):
    async def save_calls(self, calls: list[Any], payloads: dict[str, str]) -> None:
        raise StorageError("the branch's process cannot reach the storage")


class SeenFromBranches(SQLiteStorage):
    """A SQLite storage that a branch's process sees as ``elsewhere``: a file it cannot write
    calls to (a firewall, say), another database at the same path, or no file at all (another
    machine)."""

    def __init__(self, url: str, elsewhere: str, other: Path) -> None:
        super().__init__(url)
        self.elsewhere, self.other = elsewhere, other

    def reopen(self) -> Any:
        if self.elsewhere == "unwritable":
            return functools.partial(_NoCalls, self.url)
        if self.elsewhere == "another database":
            return SQLiteStorage(f"sqlite:///{self.other}").reopen()
        return functools.partial(sqlite_existing, str(self.other), 5.0)  # "no file"


@pytest.mark.parametrize("elsewhere", ["reachable", "unwritable", "another database", "no file"])
async def test_a_shipped_branch_writes_its_calls_itself_or_hands_them_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, elsewhere: str
) -> None:
    monkeypatch.delenv("PLAIT_DIE_AFTER", raising=False)
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    other = tmp_path / "other.db"
    if elsewhere == "another database":
        other_storage = SQLiteStorage(f"sqlite:///{other}")
        await other_storage.setup()
        await other_storage.close()
    storage = SQLiteStorage(url) if elsewhere == "reachable" else SeenFromBranches(url, elsewhere, other)
    from plait import _record_ship

    handed_back: list[int] = []
    adopt = _record_ship.adopt

    async def counting(recorder: Any, record: Any) -> None:
        if record.calls:  # the agent's branch (the other one calls nothing)
            handed_back.append(len(record.calls) - record.written)
        await adopt(recorder, record)

    monkeypatch.setattr(_record_ship, "adopt", counting)
    with OpenAIServer() as server:
        server.handler = shipped.handler
        workflow, model = shipped.build(storage, server.base_url, PickleRoundTripRunner())
        output = await workflow.arun("items 1 and 2")
        assert output.content["research"] == "Looked up items 1 and 2."
        assert len(server.chat_requests) == 1
    calls = await storage.load_calls(output.run_id)
    # each call stored once, in the run's storage, whoever wrote it
    assert [(c.step_id, c.kind, c.index) for c in calls] == [("fan/research", "model", 0)]
    assert handed_back == ([0] if elsewhere == "reachable" else [1])  # the parent wrote none, or the call
    assert other.exists() == (elsewhere == "another database")  # no file made where there was none
    await _close(workflow, model, storage)
