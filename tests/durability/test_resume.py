"""Pauses, approvals, resuming failed runs, the step cache, durability modes, sessions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from plait import Approval, Loop, Parallel, RejectedError, RunStatus, Step, StepError, StepInput, Workflow
from plait.errors import DefinitionError
from plait.events import StepCompletedEvent, WorkflowPausedEvent
from plait.storage import MemoryStorage, StorageError

ROOT = Path(__file__).resolve().parents[2]


def text(label: str):  # type: ignore[no-untyped-def]
    def step(step_input: StepInput) -> str:
        return f"{label}({step_input.message})"

    step.__name__ = label
    return step


def test_pause_in_a_nested_parallel_branch_continues_from_another_process(storage_url: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    script = str(Path(__file__).with_name("approvals.py"))

    def call(*args: str) -> dict[str, object]:
        result = subprocess.run(
            [sys.executable, script, storage_url, *args], env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        data: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
        return data

    paused = call("run")
    assert paused["status"] == "PAUSED"
    assert paused["pending"] == [
        {
            "step_id": "edit/checks/legal",
            "step_name": "legal",
            "kind": "confirm",
            "prompt": "Legal sign-off?",
            "schema": None,
            "choices": None,
        }
    ]
    done = call("continue", str(paused["run_id"]), "yes")
    assert done["status"] == "COMPLETED"
    assert done["content"] == "published after ['legal', 'review']"
    rejected = call("continue", str(call("run")["run_id"]), "no")
    assert rejected["status"] == "COMPLETED"  # stopped on purpose: nothing after the rejection ran
    assert rejected["content"] == {
        "review": "reviewed draft about plait",
        "legal": "Stopped: Legal sign-off? was rejected",
    }


def test_approval_kinds_and_policies() -> None:
    class Brief(BaseModel):
        audience: str
        words: int

    ran: list[str] = []

    def record(step_input: StepInput) -> str:
        ran.append(str(step_input.message))
        return f"done({step_input.message})"

    workflow = Workflow(
        name="kinds",
        steps=[
            Approval(name="brief", prompt="Who is it for?", kind="input", schema=Brief),
            Approval(
                name="route",
                kind="choice",
                routes={"short": [Step(name="short", executor=record)], "long": [record]},
            ),
            Approval(name="ship", on_reject=[Step(name="fallback", executor=text("fallback"))]),
        ],
        storage=MemoryStorage(),
    )
    first = workflow.run("x")
    assert [p.kind for p in first.pending or []] == ["input"]
    assert first.pending[0].schema["required"] == ["audience", "words"]  # type: ignore[index]
    with pytest.raises(ValueError, match="does not match Brief"):
        workflow.continue_run(first.run_id, answers={"brief": {"audience": "devs"}})
    second = workflow.continue_run(first.run_id, answers={"brief": {"audience": "devs", "words": 300}})
    assert second.pending[0].choices == ["short", "long"]  # type: ignore[index]
    with pytest.raises(ValueError, match=r"expected one of \['short', 'long'\]"):
        workflow.continue_run(first.run_id, answer="medium")
    third = workflow.continue_run(first.run_id, answer="short")
    assert ran == ["audience='devs' words=300"]
    final = workflow.continue_run(third.run_id, approve=False)
    assert final.status is RunStatus.COMPLETED
    assert final.content == "fallback(done(audience='devs' words=300))"
    assert ran == ["audience='devs' words=300"]  # restored steps did not run again


def test_rejection_with_fail_policy_fails_the_run() -> None:
    workflow = Workflow(name="w", steps=[text("a"), Approval(name="ok")], storage=MemoryStorage())
    paused = workflow.run("x")
    with pytest.raises(StepError) as info:
        workflow.continue_run(paused.run_id, approve=False)
    assert isinstance(info.value.__cause__, RejectedError)


def test_pause_events_and_a_completed_run_cannot_continue() -> None:
    workflow = Workflow(name="w", steps=[text("a"), Approval(name="ok")], storage=MemoryStorage())
    events = list(workflow.run("x", stream=True))
    assert isinstance(events[-1], WorkflowPausedEvent) and events[-1].pending[0]["step_id"] == "ok"
    run_id = events[-1].run_id
    resumed = list(workflow.continue_run(run_id, approve=True, stream=True, stream_events=True))
    restored = [e for e in resumed if isinstance(e, StepCompletedEvent) and e.restored]
    assert [e.step_id for e in restored] == ["a"]
    with pytest.raises(DefinitionError, match="already ended as COMPLETED"):
        workflow.continue_run(run_id, approve=True)
    with pytest.raises(DefinitionError, match="no approval step 'nope'"):
        workflow.continue_run(workflow.run("y").run_id, answers={"nope": True})


def test_failed_run_resumes_at_the_right_loop_iteration() -> None:
    calls: list[str] = []
    fail_at = {"iteration": 2}

    def body(step_input: StepInput, run_context) -> str:  # type: ignore[no-untyped-def]
        count = run_context.session_state["n"] = run_context.session_state.get("n", 0) + 1
        calls.append(f"body{count}")
        if count == fail_at["iteration"]:
            raise RuntimeError("transient")
        return f"{step_input.message}+{count}"

    storage = MemoryStorage()
    workflow = Workflow(
        name="w",
        steps=[
            text("start"),
            Loop(name="loop", steps=[body], max_iterations=3, forward_iteration_output=True),
        ],
        storage=storage,
    )
    with pytest.raises(StepError, match=r"loop\[2\]/body"):
        workflow.run("x", run_id="r1")
    fail_at["iteration"] = 0
    output = workflow.continue_run("r1")
    assert output.content == "start(x)+1+2+3"
    assert calls == ["body1", "body2", "body2", "body3"]  # iteration 1 was not redone


def test_step_cache_reuses_outputs_and_says_so() -> None:
    calls: list[str] = []

    def expensive(step_input: StepInput) -> str:
        calls.append(step_input.input)
        return f"computed({step_input.input})"

    storage = MemoryStorage()
    workflow = Workflow(name="w", steps=[Step(name="e", executor=expensive, cache=60)], storage=storage)
    assert workflow.run("a").content == "computed(a)"
    events = list(workflow.run("a", stream_events=True))
    completed = next(e for e in events if isinstance(e, StepCompletedEvent))
    assert completed.cached and completed.content == "computed(a)"
    assert workflow.run("b").content == "computed(b)"
    assert calls == ["a", "b"]
    # another workflow object with the same definition and storage shares the cache
    other = Workflow(name="w", steps=[Step(name="e", executor=expensive, cache=True)], storage=storage)
    assert other.run("a").content == "computed(a)" and calls == ["a", "b"]


@pytest.mark.parametrize("durability", ["step", "batch", "exit"])
async def test_durability_modes_all_checkpoint_every_step(durability: str) -> None:
    storage = MemoryStorage()
    workflow = Workflow(
        name="w",
        steps=[text("a"), Parallel(text("b"), text("c"), name="p")],
        storage=storage,
        durability=durability,
    )  # type: ignore[arg-type]
    output = await workflow.arun("x")
    checkpoints = await storage.load_checkpoints(output.run_id)
    assert sorted(c.step_id for c in checkpoints) == ["a", "p", "p/b", "p/c"]
    record = await storage.get_run(output.run_id)
    assert record is not None and record.status == "COMPLETED" and record.content == output.content


async def test_unserializable_output_names_the_step() -> None:
    workflow = Workflow(
        name="w", steps=[Step(name="bad", executor=lambda si: object())], storage=MemoryStorage()
    )
    with pytest.raises(StorageError, match="the output of step 'bad' cannot be stored as JSON"):
        await workflow.arun("x")


async def test_session_state_persists_across_workflow_objects_and_events_are_stored(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"

    def count(step_input: StepInput, run_context) -> int:  # type: ignore[no-untyped-def]
        run_context.session_state["visits"] = run_context.session_state.get("visits", 0) + 1
        return int(run_context.session_state["visits"])

    first = Workflow(name="w", steps=[count], storage=url, store_events=True)
    assert (await first.arun("x", session_id="s")).content == 1
    second = Workflow(name="w", steps=[count], storage=url)
    output = await second.arun("x", session_id="s")
    assert output.content == 2
    storage = await first._ready_storage()
    assert storage is not None
    events = await storage.load_events((await storage.list_runs(limit=2))[-1].run_id)
    assert [e["event"] for e in events] == [
        "WorkflowStarted",
        "StepStarted",
        "StepOutput",  # Agno's StepOutputEvent, for a function step at the top
        "StepCompleted",
        "WorkflowCompleted",
    ]


def test_storage_credentials_never_show(tmp_path: Path) -> None:
    with pytest.raises(Exception) as info:
        Workflow(name="w", steps=[text("a")], storage="nosuchdb://user:hunter2@127.0.0.1/db").run("x")
    assert "hunter2" not in str(info.value)
    from plait.storage import redact_url

    assert (
        redact_url("postgresql://me:hunter2@127.0.0.1:5432/test") == "postgresql://me:***@127.0.0.1:5432/test"
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://me:hunter2@127.0.0.1:5432/test", "postgresql://me:***@127.0.0.1:5432/test"),
        (
            "postgresql://127.0.0.1/test?password=hunter2&sslmode=require",
            "postgresql://127.0.0.1/test?password=***&sslmode=require",
        ),
        ("redis://:hunter2@[::1]:6379/0", "redis://:***@[::1]:6379/0"),
        ("sqlite:///runs.db", "sqlite:///runs.db"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    from plait.storage import redact_url

    assert redact_url(url) == shown
