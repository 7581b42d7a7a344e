"""Large session-state values are stored once per run, not once per checkpoint
(plait.storage._shared), on every backend: resumed, forked, diffed and deleted with their run."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from plait import Step, StepInput, Workflow
from plait._durable import load_state
from plait.errors import StepError
from plait.storage import (
    MemoryStorage,
    StepCheckpoint,
    Storage,
    StorageError,
    _shared,
    read_checkpoints,
    shared_keys,
)

STEPS = 30
DOC = "lorem ipsum " * 9000  # 108 KB


def _document(version: int) -> dict[str, Any]:
    # typed content inside the shared value: it must come back as it went in
    return {
        "text": DOC,
        "version": version,
        "at": dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC),
        "pair": (1, "two"),
        "by_id": {1: "one", 2: "two"},
        "raw": b"\x00\xff",
    }


def _workflow(storage: Storage, fail: dict[str, int], *, name: str = "shared") -> Workflow:
    def load(step_input: StepInput, run_context: Any) -> str:
        run_context.session_state["doc"] = _document(1)
        run_context.session_state["small"] = "tiny"
        return "loaded"

    def make(i: int) -> Step:
        def step(step_input: StepInput, run_context: Any) -> str:
            state = run_context.session_state
            assert state["doc"]["text"].startswith("lorem"), f"step {i} lost the document"
            if i == fail.get("at"):
                raise RuntimeError(f"step {i} fails once")
            if i == STEPS // 2:  # the document changes once, in the middle
                state["doc"] = {**state["doc"], "version": 2}
            state["count"] = state.get("count", 0) + 1
            return f"s{i}"

        return Step(name=f"s{i}", executor=step)

    return Workflow(name=name, steps=[load, *[make(i) for i in range(1, STEPS + 1)]], storage=storage)


async def _payload_keys(storage: Storage, run_id: str) -> set[str]:
    return shared_keys(c.state for c in await storage.load_checkpoints(run_id))


async def test_a_large_value_is_stored_once_per_change_and_resumes_whole(storage: Storage) -> None:
    fail = {"at": 20}
    workflow = _workflow(storage, fail)
    with pytest.raises(StepError, match="s20"):
        await workflow.arun("go", run_id="big")
    raw = await storage.load_checkpoints("big")
    assert len(raw) == 20  # load and s1..s19
    # every checkpoint refers to the document; two versions were stored, once each
    keys = await _payload_keys(storage, "big")
    assert len(keys) == 2 and all(k.startswith("state:big:") for k in keys)
    assert all(c.state["doc"] == {"$plait": "shared", "key": c.state["doc"]["key"]} for c in raw)
    assert all(c.state["small"] == "tiny" for c in raw)  # small values stay inline
    stored = sum(len(c.model_dump_json()) for c in raw)
    assert stored < 20 * 1024, f"checkpoints hold {stored} bytes: the document is inline"

    whole = await read_checkpoints(storage, "big")
    for checkpoint in whole:
        state = load_state(checkpoint.state, "test")
        assert state["doc"]["text"] == DOC
        assert state["doc"]["at"] == dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)
        assert state["doc"]["pair"] == (1, "two") and state["doc"]["by_id"] == {1: "one", 2: "two"}
        assert state["doc"]["raw"] == b"\x00\xff"
    versions = [load_state(c.state, "test")["doc"]["version"] for c in whole]
    assert versions == [1] * (STEPS // 2) + [2] * (20 - STEPS // 2)

    fail.clear()
    output = await workflow.acontinue_run("big")  # resumes at s20 with the whole state
    assert output.content == f"s{STEPS}"
    assert output.session_state is not None
    assert output.session_state["doc"]["version"] == 2 and output.session_state["count"] == STEPS
    assert len(await _payload_keys(storage, "big")) == 2  # nothing stored again after the resume


async def test_deleting_a_run_deletes_its_values_and_a_fork_keeps_its_own(storage: Storage) -> None:
    workflow = _workflow(storage, {})
    await workflow.arun("go", run_id="origin")
    forked = await workflow.afork("origin", at=f"s{STEPS - 2}", state={"note": "forked"})
    fork_keys = await _payload_keys(storage, forked.run_id)
    assert fork_keys and all(k.startswith(f"state:{forked.run_id}:") for k in fork_keys)
    origin_keys = await _payload_keys(storage, "origin")
    assert len(await storage.load_payloads(sorted(origin_keys))) == 2

    assert await storage.delete_run("origin")
    assert await storage.load_payloads(sorted(origin_keys)) == {}  # nothing left behind
    # the fork reads whole without the original
    last = (await read_checkpoints(storage, forked.run_id))[-1]
    state = load_state(last.state, "test")
    assert state["doc"]["text"] == DOC and state["note"] == "forked"
    assert await storage.delete_run(forked.run_id)
    assert await storage.load_payloads(sorted(fork_keys)) == {}


async def test_runs_and_the_cli_diff_see_values_not_references(storage: Storage) -> None:
    from plait import adiff_runs

    workflow = _workflow(storage, {})
    first = await workflow.arun("go")
    second = await workflow.afork(first.run_id, at="s3", state={"doc": {"text": "lorem", "version": 9}})
    result = await adiff_runs(first.run_id, second.run_id, storage=storage)
    changed = {s.step_id: s.state_changes for s in result.steps if s.state_changes}
    assert changed["s3"]["doc"][0]["text"] == DOC  # the value, not a reference
    assert changed["s3"]["doc"][1] == {"text": "lorem", "version": 9}


async def test_a_missing_or_altered_value_is_a_clear_error() -> None:
    storage = MemoryStorage()
    workflow = _workflow(storage, {})
    await workflow.arun("go", run_id="r")
    (key,) = sorted(await _payload_keys(storage, "r"))[:1]
    storage._payloads[key] = storage._payloads[key].replace("lorem", "LOREM", 1)
    with pytest.raises(StorageError, match="does not have that digest"):
        await read_checkpoints(storage, "r")
    del storage._payloads[key]
    with pytest.raises(StorageError, match="is not in the storage"):
        await read_checkpoints(storage, "r")
    raw = (await storage.load_checkpoints("r"))[-1]
    with pytest.raises(StorageError, match="read_checkpoints"):  # an unresolved reference says what to do
        load_state(raw.state, "the state")


async def test_old_inline_checkpoints_and_backends_without_payloads() -> None:
    storage = MemoryStorage()
    inline = {"doc": {"text": DOC}}
    await storage.save_checkpoints([StepCheckpoint(run_id="old", step_id="a", output={}, state=inline)])
    assert (await read_checkpoints(storage, "old"))[0].state == inline

    class Plain(MemoryStorage):  # records no calls: no payloads to share values in
        save_calls = Storage.save_calls  # type: ignore[assignment]
        load_payloads = Storage.load_payloads  # type: ignore[assignment]

    plain = Plain()
    await _workflow(plain, {}, name="plain").arun("go", run_id="p")
    raw = await plain.load_checkpoints("p")
    assert raw[-1].state["doc"]["text"] == DOC  # inline, as before


async def test_values_not_worth_sharing_stay_inline() -> None:
    storage = MemoryStorage()

    def step(step_input: StepInput, run_context: Any) -> str:
        state = run_context.session_state
        state["just_under"] = "x" * (1024 - 3)  # JSON with its quotes: 1023 bytes
        state["at_limit"] = "y" * (1024 - 2)
        state["many"] = list(range(400))
        state["empty"] = {}
        state[7] = "an int key: the whole state is tagged, kept as it is"
        return "ok"

    await Workflow(name="w", steps=[step], storage=storage).arun("go", run_id="r")
    (checkpoint,) = await storage.load_checkpoints("r")
    assert shared_keys([checkpoint.state]) == set()  # int key: the state is stored whole

    def step2(step_input: StepInput, run_context: Any) -> str:
        state = run_context.session_state
        state["just_under"] = "x" * (1024 - 3)
        state["at_limit"] = "y" * (1024 - 2)
        state["nan"] = [float("nan")] * 300  # the codec tags non-finite floats; still JSON
        return "ok"

    await Workflow(name="w2", steps=[step2], storage=storage).arun("go", run_id="r2")
    (checkpoint,) = await storage.load_checkpoints("r2")
    assert isinstance(checkpoint.state["just_under"], str)
    assert checkpoint.state["at_limit"]["$plait"] == "shared"
    assert checkpoint.state["nan"]["$plait"] == "shared"
    state = load_state((await read_checkpoints(storage, "r2"))[0].state, "test")
    assert len(state["nan"]) == 300 and all(v != v for v in state["nan"])


async def test_sharing_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_shared, "SHARE_AT", None)
    storage = MemoryStorage()
    await _workflow(storage, {}).arun("go", run_id="r")
    assert await _payload_keys(storage, "r") == set()
    assert (
        json.loads((await storage.load_checkpoints("r"))[-1].model_dump_json())["state"]["doc"]["text"] == DOC
    )


def test_plait_runs_show_shows_values_not_references(tmp_path: Any) -> None:
    from tests.durability.test_cli_runs import plait as cli

    (tmp_path / "flows.py").write_text(
        "from plait import Workflow\n"
        "def load(step_input, run_context):\n"
        "    run_context.session_state['doc'] = 'lorem ' * 1000\n"
        "    return 'loaded'\n"
        "def after(step_input):\n"
        "    return 'done'\n"
        "workflow = Workflow(name='docs', steps=[load, after])\n"
    )

    def plait(*args: str) -> str:
        done = cli(tmp_path, *args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    plait("run", "flows.py:workflow", "go", "--json")
    (run,) = json.loads(plait("runs", "list", "--json"))
    detail = json.loads(plait("runs", "show", run["run_id"], "--json"))
    assert [s["state"]["doc"] for s in detail["steps"]] == ["lorem " * 1000] * 2
    shown = plait("runs", "show", run["run_id"], "--step", "load")
    assert "lorem lorem" in shown and "$plait" not in shown
    assert "state change      (none)" in plait("runs", "show", run["run_id"], "--step", "after")


async def test_many_concurrent_runs_each_read_their_own_values(storage: Storage) -> None:
    import asyncio

    def load(step_input: StepInput, run_context: Any) -> str:
        run_context.session_state["doc"] = f"{step_input.input}:" + "z" * 4000
        return "loaded"

    def check(step_input: StepInput, run_context: Any) -> str:
        doc = run_context.session_state["doc"]
        return doc.partition(":")[0]

    workflow = Workflow(name="many", steps=[load, check], storage=storage)
    outputs = await asyncio.gather(*(workflow.arun(f"run{i}") for i in range(40)))
    assert [o.content for o in outputs] == [f"run{i}" for i in range(40)]
    for i, output in enumerate(outputs):
        (first, second) = await read_checkpoints(storage, output.run_id)
        assert first.state["doc"] == second.state["doc"] == f"run{i}:" + "z" * 4000
        (key,) = await _payload_keys(storage, output.run_id)
        assert key.startswith(f"state:{output.run_id}:")


async def test_a_large_value_that_is_not_utf8_still_fails_naming_the_step() -> None:
    def step(step_input: StepInput, run_context: Any) -> str:
        run_context.session_state["doc"] = "\ud800" + "x" * 5000  # a lone surrogate
        run_context.session_state["unicode"] = "naïve ☃ \x00 " * 400  # NUL and non-ASCII: fine
        return "ok"

    storage = MemoryStorage()
    with pytest.raises(StorageError, match="'bad'"):
        await Workflow(name="w", steps=[Step(name="bad", executor=step)], storage=storage).arun("go")

    def fine(step_input: StepInput, run_context: Any) -> str:
        run_context.session_state["unicode"] = "naïve ☃ \x00 " * 400
        return "ok"

    await Workflow(name="w2", steps=[fine], storage=storage).arun("go", run_id="u")
    (raw,) = await storage.load_checkpoints("u")
    assert raw.state["unicode"]["$plait"] == "shared"
    (whole,) = await read_checkpoints(storage, "u")
    assert whole.state["unicode"] == "naïve ☃ \x00 " * 400
