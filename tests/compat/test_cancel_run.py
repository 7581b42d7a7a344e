"""Issue #14, item 14: ``workflow.cancel_run(run_id)`` / ``acancel_run`` as in Agno.

From another thread, task or process, the run stops at its next safe point (before its
next step), is stored as CANCELLED, returns a WorkflowRunOutput with
``status=RunStatus.CANCELLED`` (after a WorkflowCancelledEvent) and can be continued.
cancel_run answers True when the run was running, False otherwise.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from plait import Loop, RunContext, RunStatus, Step, StepInput, StepOutput, Workflow
from plait.errors import DefinitionError
from plait.events import WorkflowCancelledEvent


class Gate:
    """A first step that waits until the test lets it go, so the test can cancel meanwhile."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls: list[str] = []

    def first(self, step_input: StepInput) -> str:
        self.calls.append("first")
        self.entered.set()
        assert self.release.wait(10)
        return "first done"

    def second(self, step_input: StepInput) -> str:
        self.calls.append("second")
        return f"second after {step_input.previous_step_content}"

    def workflow(self, **options: Any) -> Workflow:
        return Workflow(
            name="Cancellable",
            steps=[Step(name="first", executor=self.first), Step(name="second", executor=self.second)],
            **options,
        )


@pytest.fixture(params=["memory", "sqlite"])
def storage(request: Any, tmp_path: Path) -> str | None:
    return None if request.param == "memory" else f"sqlite:///{tmp_path / 'runs.db'}"


def test_cancel_from_another_thread(storage: str | None) -> None:
    gate = Gate()
    workflow = gate.workflow(storage=storage)
    result: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: result.update(output=workflow.run("x", run_id="run-1")))
    runner.start()
    assert gate.entered.wait(10)
    assert workflow.cancel_run("run-1") is True
    gate.release.set()
    runner.join(10)
    output = result["output"]
    assert output.status == RunStatus.CANCELLED and output.status.value == "CANCELLED"
    assert output.content == "Workflow run run-1 was cancelled"
    assert [o.step_name for o in output.step_outputs] == ["first"]
    assert gate.calls == ["first"]  # the next step never started
    assert workflow.cancel_run("run-1") is False  # it is no longer running
    if storage is not None:
        stored = asyncio.run(_record(workflow, "run-1"))
        assert stored.status == "CANCELLED"
        # resumable: the completed step is restored, the rest runs
        resumed = workflow.continue_run("run-1")
        assert resumed.status == RunStatus.COMPLETED and resumed.content == "second after first done"
        assert gate.calls == ["first", "second"]
        workflow.close()


async def _record(workflow: Workflow, run_id: str) -> Any:
    storage = await workflow._ready_storage()
    assert storage is not None
    return await storage.get_run(run_id)


async def test_cancel_an_asyncio_task_and_stream_the_cancelled_event() -> None:
    started = asyncio.Event()

    async def first(step_input: StepInput) -> str:
        started.set()
        await asyncio.sleep(0.05)
        return "first"

    async def second(step_input: StepInput) -> str:
        raise AssertionError("the cancelled run went on")

    workflow = Workflow(
        name="w", steps=[Step(name="first", executor=first), Step(name="second", executor=second)]
    )

    async def consume() -> list[Any]:
        return [e async for e in workflow.arun("x", run_id="task-run", stream=True, stream_events=True)]

    task = asyncio.create_task(consume())
    await started.wait()
    assert await workflow.acancel_run("task-run") is True
    events = await task
    cancelled = [e for e in events if isinstance(e, WorkflowCancelledEvent)]
    assert len(cancelled) == 1 and cancelled[0].reason == "Workflow run task-run was cancelled"
    assert not any(e.event == "StepStarted" and e.step_name == "second" for e in events)
    assert workflow.get_last_run_output() is not None
    assert workflow.get_last_run_output().status == RunStatus.CANCELLED  # type: ignore[union-attr]


def test_cancel_stops_a_loop_between_iterations_and_sync_code_sees_it() -> None:
    seen: list[bool] = []
    workflow: Workflow

    def tick(step_input: StepInput, run_context: RunContext) -> StepOutput:
        seen.append(run_context.cancelled)
        if len(seen) == 3:
            assert workflow.cancel_run(run_context.run_id) is True
            seen.append(run_context.cancelled)  # true at once, for code that checks it
        return StepOutput(content=len(seen))

    workflow = Workflow(
        name="w", steps=[Loop(name="loop", steps=[Step(name="tick", executor=tick)], max_iterations=50)]
    )
    output = workflow.run("x")
    assert output.status == RunStatus.CANCELLED
    assert seen == [False, False, False, True]


def test_unknown_and_finished_runs_are_not_cancelled(storage: str | None) -> None:
    workflow = Workflow(name="w", steps=[lambda si: "ok"], storage=storage)
    assert workflow.cancel_run("no-such-run") is False
    with pytest.raises(DefinitionError, match="cancel_run expects a run id"):
        workflow.cancel_run(None)  # type: ignore[arg-type]
    done = workflow.run("x")
    assert workflow.cancel_run(done.run_id) is False
    assert asyncio.run(workflow.acancel_run(done.run_id)) is False
    if storage is not None:
        assert asyncio.run(_record(workflow, done.run_id)).status == "COMPLETED"
        workflow.close()


def test_a_cancelled_run_of_a_nested_workflow_ends_the_whole_run() -> None:
    gate = Gate()
    inner = Workflow(
        name="inner",
        steps=[Step(name="first", executor=gate.first), Step(name="second", executor=gate.second)],
    )
    after: list[str] = []
    workflow = Workflow(
        name="outer", steps=[inner, Step(name="after", executor=lambda si: after.append("x"))]
    )
    result: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: result.update(output=workflow.run("x", run_id="outer-1")))
    runner.start()
    assert gate.entered.wait(10)
    assert workflow.cancel_run("outer-1") is True
    gate.release.set()
    runner.join(10)
    assert result["output"].status == RunStatus.CANCELLED
    assert result["output"].content == "Workflow run outer-1 was cancelled"
    assert gate.calls == ["first"] and after == []


SCRIPT = """
import json, sys, time
from plait import Step, Workflow

def slow(step_input):
    time.sleep(0.05)
    return step_input.input

steps = [Step(name=f"s{i}", executor=slow) for i in range(200)]
workflow = Workflow(name="long", steps=steps, storage=sys.argv[1])
workflow.cancel_check_interval = 0.05
output = workflow.run("x", run_id="proc-run")
done = sum(1 for o in output.step_outputs)
print(json.dumps({"status": output.status.value, "content": output.content, "done": done}))
"""


def test_cancel_a_run_in_another_process_through_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    script = tmp_path / "long.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = {**os.environ}
    env.pop("PLAIT_STORAGE", None)
    child = subprocess.Popen(
        [sys.executable, str(script), url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        workflow = Workflow(name="long", steps=[lambda si: si.input], storage=url)
        deadline = time.monotonic() + 30
        while True:  # wait until the child's run is stored as running
            record = asyncio.run(_record(workflow, "proc-run")) if (tmp_path / "runs.db").exists() else None
            if record is not None and record.status == "RUNNING":
                break
            assert time.monotonic() < deadline, "the child's run never started"
            time.sleep(0.05)
        workflow.close()
        assert workflow.cancel_run("proc-run") is True
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, err
    result = json.loads(out)
    assert result["status"] == "CANCELLED" and result["content"] == "Workflow run proc-run was cancelled"
    assert 0 < result["done"] < 200
    assert asyncio.run(_record(workflow, "proc-run")).status == "CANCELLED"
    assert workflow.cancel_run("proc-run") is False
    workflow.close()
    # continued here, the spent request does not cancel it again; done steps are restored
    ran: list[str] = []

    def quick(step_input: StepInput) -> Any:
        ran.append("x")
        return step_input.input

    same = Workflow(name="long", steps=[Step(name=f"s{i}", executor=quick) for i in range(200)], storage=url)
    resumed = same.continue_run("proc-run", on_changed="continue")  # its steps are new code: quick, not slow
    assert resumed.status == RunStatus.COMPLETED and len(ran) == 200 - result["done"]
    same.close()


def test_a_running_run_whose_process_died_is_marked_cancelled(tmp_path: Path) -> None:
    from plait.storage import RunRecord

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    workflow = Workflow(name="w", steps=[lambda si: "ok"], storage=url)

    async def orphan() -> None:  # a RUNNING record nobody holds the lease of
        storage = await workflow._ready_storage()
        assert storage is not None
        await storage.save_run(
            RunRecord(run_id="orphan", workflow_id="w", workflow_name="w", session_id="s", status="RUNNING")
        )

    asyncio.run(orphan())
    assert workflow.cancel_run("orphan") is True
    assert asyncio.run(_record(workflow, "orphan")).status == "CANCELLED"
    assert workflow.continue_run("orphan").status == RunStatus.COMPLETED
    workflow.close()


def test_a_cancel_before_the_run_starts_is_remembered_as_in_agno() -> None:
    calls: list[str] = []
    workflow = Workflow(name="w", steps=[Step(name="only", executor=lambda si: calls.append("ran"))])
    assert workflow.cancel_run("not-yet") is False  # nothing runs under that id yet ...
    output = workflow.run("x", run_id="not-yet")  # ... but when it starts, it is cancelled
    assert output.status == RunStatus.CANCELLED and calls == []
    assert workflow.run("x", run_id="not-yet").status == RunStatus.COMPLETED  # the request is spent


def test_a_failed_run_that_is_not_running_is_not_cancelled_by_a_late_request(tmp_path: Path) -> None:
    attempts = {"n": 0}

    def flaky(step_input: StepInput) -> str:
        attempts["n"] += 1
        if attempts["n"] == 1:
            raise RuntimeError("down")
        return "ok"

    workflow = Workflow(
        name="w", steps=[Step(name="flaky", executor=flaky)], storage=f"sqlite:///{tmp_path / 'r.db'}"
    )
    with pytest.raises(Exception, match="down"):
        workflow.run("x", run_id="failed")
    assert workflow.cancel_run("failed") is False
    assert workflow.continue_run("failed").status == RunStatus.COMPLETED
    workflow.close()
