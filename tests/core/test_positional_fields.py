"""The run frame builds a few hot-path dataclasses positionally (plait._workflow_run: a class
call's keywords cost a dict on CPython 3.11); the field order it relies on stays put."""

from __future__ import annotations

import dataclasses

from plait import StepOutput, WorkflowRunOutput


def test_the_run_output_fields_the_run_frame_passes_by_position() -> None:
    names = [f.name for f in dataclasses.fields(WorkflowRunOutput)][:16]
    assert names == [
        "run_id",
        "workflow_id",
        "workflow_name",
        "session_id",
        "status",
        "content",
        "step_outputs",
        "input",
        "error",
        "duration",
        "session_state",
        "parent_run_id",
        "pending",
        "step_executor_runs",
        "user_id",
        "metadata",
    ]


def test_the_step_output_fields_a_nested_run_passes_by_position() -> None:
    assert [f.name for f in dataclasses.fields(StepOutput)][:4] == ["content", "success", "error", "stop"]
