"""Concurrent runs of one session lose no update, with and without storage, across
threads, event loops and processes; a real conflict is an error naming the key."""

from __future__ import annotations

import asyncio
import concurrent.futures
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from plait import Approval, Parallel, Step, StepInput, StepOutput, Workflow
from plait.errors import StateConflictError, StepError
from plait.storage import Storage
from tests.storage.test_threads_and_loops import BOUND, in_daemon_threads


def add_one(step_input: StepInput, run_context: Any) -> StepOutput:
    state = run_context.session_state
    state["n"] = state.get("n", 0) + 1
    state.setdefault("seen", []).append(step_input.input)
    return StepOutput(content=state["n"])


def counter(storage: Any = None) -> Workflow:
    """Each run adds 4 to ``n``: two steps, then a Parallel of two."""
    return Workflow(
        name="counter",
        steps=[
            Step(name="a", executor=add_one),
            Step(name="b", executor=add_one),
            Parallel(Step(name="c", executor=add_one), Step(name="d", executor=add_one), name="fan"),
        ],
        storage=storage,
    )


# -- a key first created inside parallel branches -------------------------------------


def test_a_counter_created_by_parallel_branches_adds_up() -> None:
    wf = Workflow(
        name="fan", steps=[Parallel(*(Step(name=f"b{i}", executor=add_one) for i in range(5)), name="p")]
    )
    out = wf.run("x", session_id="s")
    assert out.status == "COMPLETED"
    state = wf.get_session_state("s")
    assert state is not None
    assert state["n"] == 5
    assert state["seen"] == ["x"] * 5


def test_a_value_created_differently_by_two_branches_is_a_conflict() -> None:
    def claim(name: str) -> Any:
        def step(step_input: StepInput, run_context: Any) -> str:
            run_context.session_state["owner"] = name
            return name

        return step

    wf = Workflow(
        name="claims",
        steps=[Parallel(Step(name="x", executor=claim("x")), Step(name="y", executor=claim("y")), name="p")],
    )
    with pytest.raises(StepError) as info:
        wf.run("go")
    assert isinstance(info.value.__cause__, StateConflictError)
    assert "'owner'" in str(info.value.__cause__)


# -- concurrent runs of one session -------------------------------------------------


def run_everywhere(wf: Workflow, runs: int) -> list[Any]:
    """``runs`` runs of session "s": half from 16 threads, half from 3 event loops run one
    after another (asyncio.run three times), concurrently with the threads."""
    threaded = runs // 2
    futures = in_daemon_threads(lambda i: wf.run(f"t{i}", session_id="s"), list(range(threaded)), 16)
    outputs: list[Any] = []
    per_loop = (runs - threaded) // 3

    async def batch(k: int) -> list[Any]:
        return await asyncio.gather(*(wf.arun(f"l{k}-{j}", session_id="s") for j in range(per_loop)))

    for k in range(3):
        outputs += asyncio.run(asyncio.wait_for(batch(k), BOUND))
    _, pending = concurrent.futures.wait(futures, timeout=BOUND)
    assert not pending, f"{len(pending)} runs hung"
    outputs += [f.result() for f in futures]
    assert len(outputs) == runs
    return outputs


def test_150_concurrent_runs_without_storage_lose_nothing() -> None:
    wf = counter()
    outputs = run_everywhere(wf, 150)
    assert {o.status for o in outputs} == {"COMPLETED"}
    state = wf.get_session_state("s")
    assert state is not None
    assert state["n"] == 600
    assert len(state["seen"]) == 600


def test_150_concurrent_runs_with_storage_lose_nothing(shared: Storage) -> None:
    wf = counter(shared)
    outputs = run_everywhere(wf, 150)
    assert {o.status for o in outputs} == {"COMPLETED"}
    state = wf.get_session_state("s")
    assert state is not None
    assert state["n"] == 600
    assert sorted(state["seen"]) == sorted(
        [f"t{i}" for i in range(75)] * 4 + [f"l{k}-{j}" for k in range(3) for j in range(25)] * 4
    )


def test_a_real_conflict_between_two_runs_names_the_key(shared: Storage) -> None:
    started, release = threading.Event(), threading.Event()

    def slow_claim(step_input: StepInput, run_context: Any) -> str:
        run_context.session_state["owner"] = step_input.input
        if step_input.input == "slow":
            started.set()
            assert release.wait(BOUND)
        return "claimed"

    wf = Workflow(name="claim", steps=[Step(name="claim", executor=slow_claim)], storage=shared)
    slow = in_daemon_threads(lambda x: wf.run(x, session_id="s"), ["slow"], 1)[0]
    assert started.wait(BOUND)
    assert wf.run("fast", session_id="s").status == "COMPLETED"
    release.set()
    with pytest.raises(StateConflictError, match="'owner'"):
        slow.result(timeout=BOUND)
    assert wf.get_session_state("s") == {"owner": "fast"}


def test_a_resumed_run_counts_only_its_own_changes(shared: Storage) -> None:
    wf = Workflow(
        name="pause",
        steps=[
            Step(name="before", executor=add_one),
            Approval(name="ok"),
            Step(name="after", executor=add_one),
        ],
        storage=shared,
    )
    paused = wf.run("p", session_id="s")
    assert paused.status == "PAUSED"
    assert wf.get_session_state("s")["n"] == 1  # committed at the pause
    other = counter(shared)
    other.id = wf.id  # the same session, changed by another run meanwhile
    assert other.run("o", session_id="s").status == "COMPLETED"
    assert wf.get_session_state("s")["n"] == 5
    done = wf.continue_run(paused.run_id, approve=True)
    assert done.status == "COMPLETED"
    assert wf.get_session_state("s")["n"] == 6


def test_get_session_state_reads_the_storage(shared: Storage, tmp_path: Path) -> None:
    wf = counter(shared)
    wf.run("x", session_id="stored")
    fresh = counter(shared)  # another process would see the same
    assert fresh.get_session_state("stored") == {"n": 4, "seen": ["x"] * 4}
    assert fresh.get_session_state("missing") is None


def test_two_processes_on_one_sqlite_session(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    script = textwrap.dedent(
        f"""
        import sys
        from tests.core.test_session_concurrency import counter
        wf = counter("sqlite:///{db}")
        for i in range(20):
            assert wf.run(f"{{sys.argv[1]}}{{i}}", session_id="s").status == "COMPLETED"
        """
    )
    root = Path(__file__).resolve().parents[2]
    procs = [subprocess.Popen([sys.executable, "-c", script, name], cwd=root) for name in ("p", "q")]
    for proc in procs:
        assert proc.wait(timeout=BOUND) == 0
    state = counter(f"sqlite:///{db}").get_session_state("s")
    assert state is not None and state["n"] == 160


# -- memory is bounded -------------------------------------------------------------


def test_sessions_in_memory_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Workflow, "max_sessions_in_memory", 10)
    wf = counter()
    for i in range(25):
        wf.run("x", session_id=f"s{i}")
    assert wf.get_session_state("s24") is not None
    assert wf.get_session_state("s14") is None  # the least recently used went first
    assert len(wf._sessions._states) == 10
    wf.run("y")  # without a session id: a new session each run, bounded just the same
    assert len(wf._sessions._states) == 10
    assert wf.get_session_state() == {"n": 4, "seen": ["y"] * 4}  # the last run's session


def test_changing_a_runs_output_state_does_not_change_the_session() -> None:
    wf = counter()
    out = wf.run("x", session_id="s")
    out.session_state["n"] = 1000
    assert wf.get_session_state("s") == {"n": 4, "seen": ["x"] * 4}
