"""Agno: a nested workflow's own events (and its steps' events) carry the outer step that hosts
it as ``parent_step_id``; a top-level workflow's own events have none."""

from __future__ import annotations

from plait import Step, StepInput, StepOutput, Workflow
from plait.events import StepStartedEvent, WorkflowCompletedEvent, WorkflowStartedEvent


def draft(step_input: StepInput) -> StepOutput:
    return StepOutput(content=f"draft of {step_input.input}")


def test_a_nested_workflows_events_name_the_hosting_step() -> None:
    inner = Workflow(name="inner", steps=[Step(name="draft", executor=draft)])
    outer = Workflow(name="outer", steps=[Step(name="write", workflow=inner)])
    events = list(outer.run("AI", stream=True, stream_events=True))

    host = next(e for e in events if isinstance(e, StepStartedEvent) and e.step_name == "write")
    nested = [
        e
        for e in events
        if isinstance(e, WorkflowStartedEvent | WorkflowCompletedEvent) and e.nested_depth == 1
    ]
    assert len(nested) == 2
    assert all(e.parent_step_id == host.step_id for e in nested), [e.parent_step_id for e in nested]
    inner_step = next(e for e in events if isinstance(e, StepStartedEvent) and e.step_name == "draft")
    assert inner_step.parent_step_id == host.step_id

    top = [
        e
        for e in events
        if isinstance(e, WorkflowStartedEvent | WorkflowCompletedEvent) and e.nested_depth == 0
    ]
    assert len(top) == 2 and all(e.parent_step_id is None for e in top)
