"""What a type checker knows about a workflow's results (the ``Workflow.run``/``arun``
overloads): checked by mypy in test_typed_example.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import assert_type

from plait import Step, StepInput, StepOutput, Workflow, WorkflowRunOutput
from plait.events import Event


def shout(step_input: StepInput) -> StepOutput:
    return StepOutput(content=str(step_input.input).upper())


def workflows() -> None:
    workflow = Workflow(name="shout", steps=[Step(name="shout", executor=shout)])
    output = workflow.run("hi")
    assert_type(output, WorkflowRunOutput)
    result: WorkflowRunOutput = workflow.run("hi")
    assert result.content == "HI"
    events = workflow.run("hi", stream=True)
    assert_type(events, Iterator[Event])
    assert_type(workflow.run("hi", stream_events=True), Iterator[Event])
    for event in workflow.run("hi", stream=True, stream_events=True):
        assert isinstance(event, Event)
    # the run's other options keep their types in every overload (RunArguments)
    assert_type(workflow.run("hi", session_id="s", user_id="u", metadata={"k": 1}), WorkflowRunOutput)
    assert_type(workflow.run("hi", stream=True, run_id="r-1"), Iterator[Event])


async def workflows_async() -> None:
    workflow = Workflow(name="shout", steps=[Step(name="shout", executor=shout)])
    assert_type(await workflow.arun("hi"), WorkflowRunOutput)
    result: WorkflowRunOutput = await workflow.arun("hi")
    assert result.content == "HI"
    events = workflow.arun("hi", stream=True)
    assert_type(events, AsyncIterator[Event])
    async for event in events:
        assert isinstance(event, Event)
