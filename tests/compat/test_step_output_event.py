"""Issue #14, item 9: Agno's ``StepOutputEvent`` in ``stream=True``.

Agno yields one per function step at the top of a workflow, with or without
``stream_events`` (agents and teams stream their content as content events; containers
report through their own events). Written as Agno code reads it, with only the imports
(``agno.run.workflow`` -> ``plait.events``) and the model changed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

from plait import Agent, Approval, Parallel, Step, StepInput, StepOutput, Workflow
from plait.events import (
    RunContentEvent,
    StepCompletedEvent,
    StepOutputEvent,
    StepStartedEvent,
    WorkflowCompletedEvent,
    WorkflowStartedEvent,
)
from plait.storage import MemoryStorage
from plait.testing import FunctionModel


def research(step_input: StepInput) -> StepOutput:
    return StepOutput(content=f"research on {step_input.input}")


def summarize(step_input: StepInput) -> Iterator[object]:
    yield "summing up... "
    yield StepOutput(content=f"summary of {step_input.previous_step_content}")


writer = Agent(name="Writer", model=FunctionModel(lambda messages: "a fine draft"))


def workflow() -> Workflow:
    return Workflow(
        name="Events",
        steps=[
            Step(name="research", executor=research),
            Parallel("fan", Step(name="a", executor=research), Step(name="b", executor=research)),
            Step(name="write", agent=writer),
            Step(name="summary", executor=summarize),
        ],
    )


def test_stream_yields_a_step_output_event_per_top_level_function_step() -> None:
    events = list(workflow().run("tea", stream=True))
    outputs = [e for e in events if isinstance(e, StepOutputEvent)]
    # Agno: not for the agent step, the Parallel, or the branches inside it
    assert [(e.step_name, e.step_index) for e in outputs] == [("research", 0), ("summary", 3)]
    first = outputs[0]
    assert first.event == "StepOutput" and first.content == "research on tea"
    assert first.success and first.error is None and not first.stop
    assert first.step_output is not None and first.step_output.step_id == "research"
    assert first.step_output.metrics is not None  # the finished output, metrics filled in
    final = events[-1]
    assert isinstance(final, WorkflowCompletedEvent)
    assert outputs[1].step_output is final.step_results[3]
    # what stream=True gave before is all still there, and still no step events
    assert isinstance(events[0], WorkflowStartedEvent)
    assert any(isinstance(e, RunContentEvent) and e.content == "summing up... " for e in events)
    assert not any(isinstance(e, (StepStartedEvent, StepCompletedEvent)) for e in events)
    assert json.loads(first.to_json())["step_output"]["content"] == "research on tea"


def test_with_stream_events_it_comes_before_the_steps_completed_event() -> None:
    events = list(workflow().run("tea", stream=True, stream_events=True))
    names = [
        (type(e).__name__, e.step_id)
        for e in events
        if isinstance(e, (StepOutputEvent, StepCompletedEvent)) and e.step_id in ("research", "summary")
    ]
    assert names == [
        ("StepOutputEvent", "research"),
        ("StepCompletedEvent", "research"),
        ("StepOutputEvent", "summary"),
        ("StepCompletedEvent", "summary"),
    ]


def test_async_stream_too() -> None:
    async def collect() -> list[StepOutputEvent]:
        return [e async for e in workflow().arun("tea", stream=True) if isinstance(e, StepOutputEvent)]

    assert [e.step_name for e in asyncio.run(collect())] == ["research", "summary"]
    assert [e.step_name for e in asyncio.run(collect())] == ["research", "summary"]  # a second loop


def test_a_nested_workflows_own_top_level_steps_report_theirs() -> None:
    inner = Workflow(name="Inner", steps=[Step(name="gather", executor=research)])
    outer = Workflow(
        name="Outer",
        steps=[
            Step(name="nested", workflow=inner),
            Parallel("fan", Step(name="deep", workflow=inner)),
            Step(name="finish", executor=research),
        ],
    )
    outputs = [e for e in outer.run("tea", stream=True) if isinstance(e, StepOutputEvent)]
    assert [(e.step_id, e.nested_depth, e.step_index) for e in outputs] == [
        ("nested/gather", 1, 0),
        ("fan/deep/gather", 1, 0),
        ("finish", 0, 2),
    ]


def test_skipped_and_stopping_steps_report_their_output() -> None:
    def boom(step_input: StepInput) -> str:
        raise ValueError("feed down")

    def halt(step_input: StepInput) -> StepOutput:
        return StepOutput(content="enough", stop=True)

    wf = Workflow(
        name="w",
        steps=[
            Step(name="fetch", executor=boom, skip_on_failure=True),
            halt,
            Step(name="never", executor=research),
        ],
    )
    outputs = [e for e in wf.run("tea", stream=True) if isinstance(e, StepOutputEvent)]
    assert [(e.step_name, e.success, e.stop) for e in outputs] == [
        ("fetch", False, False),
        ("halt", True, True),
    ]
    assert outputs[0].error == "ValueError: feed down"


def test_a_resumed_run_reports_its_restored_steps_too() -> None:
    wf = Workflow(
        name="w",
        steps=[research, Approval(name="ok"), Step(name="after", executor=research)],
        storage=MemoryStorage(),
    )
    paused = wf.run("tea")
    resumed = list(wf.continue_run(paused.run_id, approve=True, stream=True))
    assert [e.step_name for e in resumed if isinstance(e, StepOutputEvent)] == ["research", "after"]


def test_a_run_without_a_stream_is_unchanged() -> None:
    output = workflow().run("tea")
    assert output.content == "summary of a fine draft"
