"""Nested workflows to any depth, fully-Python workflows, and the event stream."""

from __future__ import annotations

import asyncio

from plait import Agent, Parallel, Step, StepInput, StepOutput, StepType, Workflow, WorkflowExecutionInput
from plait.events import (
    RunContentEvent,
    StepCompletedEvent,
    StepOutputEvent,
    StepStartedEvent,
    WorkflowCompletedEvent,
    WorkflowStartedEvent,
)
from plait.testing import FunctionModel


def agent(name: str) -> Agent:
    def reply(messages):  # type: ignore[no-untyped-def]
        yield f"{name} says: "
        yield messages[-1].content

    return Agent(name=name, model=FunctionModel(reply), instructions=f"You are {name}.")


def merge_results(step_input: StepInput) -> str:
    branches = step_input.previous_step_content
    return " | ".join(f"{k}={v}" for k, v in branches.items())


def deep_pipeline() -> Workflow:
    data_workflow = Workflow(
        name="Data Collection",
        steps=[Step(name="gather", agent=agent("gatherer")), Step(name="analyze", agent=agent("analyst"))],
    )
    opinion_workflow = Workflow(name="Expert Opinion", steps=[Step(name="opinion", agent=agent("expert"))])
    level2 = Workflow(
        name="Comprehensive Research",
        steps=[
            Parallel(
                Step(name="data_branch", workflow=data_workflow),
                Step(name="opinion_branch", workflow=opinion_workflow),
                name="parallel_research",
            ),
            Step(name="merge", executor=merge_results),
        ],
    )
    return Workflow(
        name="Full Pipeline",
        steps=[Step(name="research", workflow=level2), Step(name="write", agent=agent("writer"))],
    )


def test_three_level_nesting_with_parallel_produces_the_right_content() -> None:
    output = deep_pipeline().run("AI")
    assert output.content == (
        "writer says: data_branch=analyst says: gatherer says: AI | opinion_branch=expert says: AI"
    )
    research = output.step_outputs[0]
    assert research.step_type == StepType.WORKFLOW
    assert research.steps[0].steps[0].steps[1].step_id == "research/parallel_research/data_branch/analyze"  # type: ignore[index]


def test_event_depths_names_and_parents_in_a_three_level_nested_workflow() -> None:
    events = list(deep_pipeline().run("AI", stream=True, stream_events=True))
    started = [
        (e.nested_depth, e.workflow_name, e.step_id) for e in events if isinstance(e, WorkflowStartedEvent)
    ]
    assert started[0] == (0, "Full Pipeline", None)
    assert started[1] == (1, "Comprehensive Research", "research")
    assert sorted(started[2:]) == [
        (2, "Data Collection", "research/parallel_research/data_branch"),
        (2, "Expert Opinion", "research/parallel_research/opinion_branch"),
    ]
    steps = {
        e.step_id: (e.nested_depth, e.workflow_name, e.parent_step_id)
        for e in events
        if isinstance(e, StepStartedEvent)
    }
    assert steps["research"] == (0, "Full Pipeline", None)
    assert steps["research/parallel_research"] == (1, "Comprehensive Research", "research")
    assert steps["research/parallel_research/data_branch"] == (
        1,
        "Comprehensive Research",
        "research/parallel_research",
    )
    assert steps["research/parallel_research/data_branch/gather"] == (
        2,
        "Data Collection",
        "research/parallel_research/data_branch",
    )
    assert steps["research/merge"] == (1, "Comprehensive Research", "research")
    assert steps["write"] == (0, "Full Pipeline", None)
    content = [(e.nested_depth, e.step_id) for e in events if isinstance(e, RunContentEvent)]
    assert (2, "research/parallel_research/opinion_branch/opinion") in content
    assert (0, "write") in content
    # every nested run has its own run id, linked to its parent
    runs = {
        e.workflow_name: (e.run_id, e.parent_run_id) for e in events if isinstance(e, WorkflowStartedEvent)
    }
    assert runs["Comprehensive Research"][1] == runs["Full Pipeline"][0]
    assert runs["Data Collection"][1] == runs["Comprehensive Research"][0]
    # every started step completed, and the run ended last
    completed = {e.step_id for e in events if isinstance(e, StepCompletedEvent)}
    assert completed == set(steps)
    assert isinstance(events[-1], WorkflowCompletedEvent) and events[-1].nested_depth == 0


def test_stream_without_step_events_gives_run_and_content_events_only() -> None:
    events = list(deep_pipeline().run("AI", stream=True))
    kinds = {type(e).__name__ for e in events}
    # and Agno's StepOutputEvent for a function step at the top of a workflow (the nested "merge")
    assert kinds == {"WorkflowStartedEvent", "WorkflowCompletedEvent", "RunContentEvent", "StepOutputEvent"}
    assert [e.step_id for e in events if isinstance(e, StepOutputEvent)] == ["research/merge"]


def test_auto_wrap_equals_explicit_step() -> None:
    inner = Workflow(name="Research Workflow", steps=[lambda si: f"r({si.input})"])
    auto = Workflow(name="a", steps=[inner, lambda si: si.message + "!"])
    explicit = Workflow(
        name="b", steps=[Step(name="Research Workflow", workflow=inner), lambda si: si.message + "!"]
    )
    a, b = auto.run("x"), explicit.run("x")
    assert a.content == b.content == "r(x)!"
    assert a.step_outputs[0].step_name == b.step_outputs[0].step_name == "Research Workflow"


def test_fully_python_workflow() -> None:
    writer = agent("writer")

    def custom(workflow: Workflow, execution_input: WorkflowExecutionInput) -> str:
        draft = writer.run(execution_input.message)
        return f"Final: {draft.content}"

    async def custom_async(workflow: Workflow, execution_input: WorkflowExecutionInput) -> StepOutput:
        draft = await writer.arun(execution_input.input)
        return StepOutput(content=f"Async: {draft.content}")

    assert Workflow(name="py", steps=custom).run("topic").content == "Final: writer says: topic"
    assert asyncio.run(Workflow(name="py", steps=custom_async).arun("t")).content == "Async: writer says: t"
    nested = Workflow(name="outer", steps=[Workflow(name="py", steps=custom), lambda si: si.message.upper()])
    assert nested.run("t").content == "FINAL: WRITER SAYS: T"


def test_agent_events_yielded_by_an_executor_are_adopted_by_the_workflow() -> None:
    planner = agent("planner")

    async def plan(step_input: StepInput):  # type: ignore[no-untyped-def]
        async for event in planner.arun(step_input.input, stream=True, stream_events=True):
            yield event
        response = planner.get_last_run_output()
        yield StepOutput(content=f"Plan: {response.content}")  # type: ignore[union-attr]

    inner = Workflow(name="inner", steps=[Step(name="plan", executor=plan)])
    events = list(Workflow(name="outer", steps=[inner]).run("launch", stream=True, stream_events=True))
    content = [e for e in events if isinstance(e, RunContentEvent)]
    assert "".join(e.content for e in content) == "planner says: launch"
    assert {(e.nested_depth, e.step_id, e.workflow_name) for e in content} == {(1, "inner/plan", "inner")}
    assert events[-1].content == "Plan: planner says: launch"  # type: ignore[attr-defined]


def test_early_close_of_a_stream_cancels_the_run() -> None:
    cancelled = []

    async def slow(step_input: StepInput) -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return "late"

    stream = Workflow(name="w", steps=[lambda si: "first", slow]).run("x", stream=True, stream_events=True)
    first = next(iter(stream))
    assert isinstance(first, WorkflowStartedEvent)
    stream.close()
    assert cancelled == [True]


def test_events_serialize_to_json() -> None:
    event = next(
        e
        for e in deep_pipeline().run("AI", stream=True, stream_events=True)
        if isinstance(e, StepCompletedEvent)
    )
    data = event.to_dict()
    assert data["event"] == "StepCompleted" and data["step_id"] == event.step_id
    assert '"nested_depth":' in event.to_json()
