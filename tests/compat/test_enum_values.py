"""Issue #14, item 5: Agno's values of StepType and RunStatus.

Written as Agno code (its workflow examples and tests compare against these strings),
with only the imports changed; plait keeps its extra status, COMPLETED_WITH_ERRORS.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

from plait import (
    Condition,
    Loop,
    Parallel,
    Router,
    RunStatus,
    Step,
    StepInput,
    StepOutput,
    Steps,
    StepType,
    Workflow,
)
from plait.storage import MemoryStorage, RunRecord, resolve_storage, status_spellings


def research(step_input: StepInput) -> StepOutput:
    return StepOutput(content=f"research on {step_input.input}")


def write(step_input: StepInput) -> StepOutput:
    return StepOutput(content=f"article from {step_input.previous_step_content}")


def test_step_types_have_agnos_values() -> None:
    inner = Workflow(name="inner", steps=[Step(name="inner_step", executor=write)])
    workflow = Workflow(
        name="types",
        steps=[
            Step(name="research", executor=research),
            Steps(name="group", steps=[Step(name="grouped", executor=write)]),
            Parallel(Step(name="a", executor=research), Step(name="b", executor=research), name="fan"),
            Condition(name="check", evaluator=True, steps=[Step(name="checked", executor=write)]),
            Loop(name="refine", steps=[Step(name="again", executor=write)], max_iterations=1),
            Router(name="route", selector=lambda step_input: "x", choices=[Step(name="x", executor=write)]),
            Step(name="nested", workflow=inner),
        ],
    )
    output = workflow.run("tea")
    assert [o.step_type for o in output.step_outputs] == [
        "Step",
        "Steps",
        "Parallel",
        "Condition",
        "Loop",
        "Router",
        "Workflow",
    ]
    assert output.step_outputs[2].step_type == StepType.PARALLEL
    assert StepType.PARALLEL.value == "Parallel" and StepType.FUNCTION.value == "Function"


def test_run_status_has_agnos_values() -> None:
    output = Workflow(name="w", steps=[research]).run("tea")
    assert output.status.value == "COMPLETED"
    assert output.status == RunStatus.COMPLETED == "COMPLETED"
    assert output.status is RunStatus.completed  # Agno's member names are aliases
    assert [s.value for s in RunStatus] == [
        "PENDING",
        "QUEUED",
        "RUNNING",
        "COMPLETED",
        "COMPLETED_WITH_ERRORS",
        "ERROR",
        "CANCELLED",
        "PAUSED",
    ]


def test_a_skipped_step_gives_completed_with_errors_in_the_same_style() -> None:
    def boom(step_input: StepInput) -> str:
        raise ValueError("no")

    output = Workflow(name="w", steps=[Step(name="boom", executor=boom, skip_on_failure=True)]).run("x")
    assert output.status.value == "COMPLETED_WITH_ERRORS"


def test_streamed_completion_reports_the_status_value() -> None:
    events = list(Workflow(name="w", steps=[research]).run("tea", stream=True))
    assert events[-1].status == "COMPLETED"


def test_values_stored_by_older_versions_still_load(tmp_path: Path) -> None:
    assert RunStatus("completed") is RunStatus.COMPLETED
    assert RunStatus("completed_with_errors") is RunStatus.COMPLETED_WITH_ERRORS
    assert StepType("parallel") is StepType.PARALLEL
    old = {"run_id": "r1", "workflow_id": "w", "workflow_name": "w", "session_id": "s", "status": "paused"}
    assert RunRecord.model_validate_json(json.dumps(old)).status == "PAUSED"
    assert status_spellings("paused") == ("PAUSED", "paused")

    async def scenario() -> None:
        storage = resolve_storage(f"sqlite:///{tmp_path / 'old.db'}")
        assert storage is not None
        await storage.setup()
        await storage.save_run(RunRecord(**{**old, "status": "PAUSED"}))
        # a row written by an older plait: the status column and the JSON both lower case
        conn = sqlite3.connect(tmp_path / "old.db")
        conn.execute(
            "INSERT INTO plait_runs (run_id, workflow_id, status, created_at, data) VALUES (?, ?, ?, ?, ?)",
            ("r0", "w", "paused", 0.0, json.dumps({**old, "run_id": "r0"})),
        )
        conn.commit()
        conn.close()
        found = await storage.list_runs(status="PAUSED")
        assert sorted(r.run_id for r in found) == ["r0", "r1"]
        assert {r.status for r in found} == {"PAUSED"}
        await storage.close()
        memory = MemoryStorage()
        await memory.save_run(RunRecord(**old))
        assert [r.run_id for r in await memory.list_runs(status="paused")] == ["r1"]

    asyncio.run(scenario())
