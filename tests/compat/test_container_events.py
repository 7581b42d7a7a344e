"""Issue #14, item 2: the containers' own events in ``stream=True, stream_events=True``.

Written as Agno code reads them (``agno.run.workflow`` events, imported from
``plait.events``). They subclass plait's StepStartedEvent / StepCompletedEvent, so code
that handles those keeps working. The engine emits a node's ``started_event`` and
``completed_event``: the tests of the stream wait for that change of the engine.
"""

from __future__ import annotations

from plait import Condition, Loop, Parallel, Router, Step, StepInput, StepOutput, Steps, Workflow
from plait.events import (
    ConditionExecutionCompletedEvent,
    ConditionExecutionStartedEvent,
    LoopExecutionCompletedEvent,
    LoopExecutionStartedEvent,
    LoopIterationCompletedEvent,
    LoopIterationStartedEvent,
    ParallelExecutionCompletedEvent,
    ParallelExecutionStartedEvent,
    RouterExecutionCompletedEvent,
    RouterExecutionStartedEvent,
    StepCompletedEvent,
    StepsExecutionCompletedEvent,
    StepsExecutionStartedEvent,
    StepStartedEvent,
)


def research(step_input: StepInput) -> StepOutput:
    return StepOutput(content=f"research on {step_input.input}")


def write(step_input: StepInput) -> StepOutput:
    return StepOutput(content=f"draft of {step_input.previous_step_content}")


def is_tech(step_input: StepInput) -> bool:
    return "tech" in str(step_input.input)


def route(step_input: StepInput) -> list:  # type: ignore[type-arg]
    return [tech_step, write_step]


tech_step = Step(name="tech", executor=research)
write_step = Step(name="write_it", executor=write)


def workflow() -> Workflow:
    return Workflow(
        name="Containers",
        steps=[
            Parallel("Research", Step(name="web", executor=research), Step(name="papers", executor=research)),
            Condition(
                name="Tech check",
                evaluator=is_tech,
                steps=[Step(name="deep", executor=research)],
                else_steps=[Step(name="light", executor=write)],
            ),
            Loop(name="Refine", steps=[Step(name="refine", executor=write)], max_iterations=2),
            Router(name="Route", selector=route, choices=[tech_step, write_step]),
            Steps(
                name="Publish", steps=[Step(name="edit", executor=write), Step(name="post", executor=write)]
            ),
        ],
    )


def events(text: str) -> list:  # type: ignore[type-arg]
    return list(workflow().run(text, stream=True, stream_events=True))


def only(stream: list, cls: type) -> object:  # type: ignore[type-arg]
    found = [e for e in stream if type(e) is cls]
    assert len(found) == 1, (cls.__name__, found)
    return found[0]


def test_the_container_events_are_step_events_with_agnos_names_and_fields() -> None:
    for started, completed, step_type in [
        (ParallelExecutionStartedEvent, ParallelExecutionCompletedEvent, "Parallel"),
        (ConditionExecutionStartedEvent, ConditionExecutionCompletedEvent, "Condition"),
        (LoopExecutionStartedEvent, LoopExecutionCompletedEvent, "Loop"),
        (RouterExecutionStartedEvent, RouterExecutionCompletedEvent, "Router"),
        (StepsExecutionStartedEvent, StepsExecutionCompletedEvent, "Steps"),
    ]:
        assert issubclass(started, StepStartedEvent) and issubclass(completed, StepCompletedEvent)
        assert started().event == started.__name__.removesuffix("Event")  # "ParallelExecutionStarted"
        assert completed().event == completed.__name__.removesuffix("Event")
        assert started().step_type == completed().step_type == step_type
    assert Parallel.started_event is ParallelExecutionStartedEvent
    assert Parallel.completed_event is ParallelExecutionCompletedEvent
    assert Step.started_event is StepStartedEvent and Step.completed_event is StepCompletedEvent


def test_each_node_gives_the_fields_of_its_events() -> None:
    output = workflow().run("tech news")
    parallel, condition, loop, router, steps = output.step_outputs
    nodes = workflow().nodes
    assert nodes[0].started_event_fields() == {"parallel_step_count": 2}
    assert nodes[0].completed_event_fields(parallel)["step_results"] == parallel.steps
    fields = nodes[1].completed_event_fields(condition)
    assert (fields["condition_result"], fields["branch"], fields["executed_steps"]) == (True, "if", 1)
    assert nodes[2].started_event_fields() == {"max_iterations": 2}
    fields = nodes[2].completed_event_fields(loop)
    assert fields["total_iterations"] == 2 and [len(r) for r in fields["all_results"]] == [1, 1]
    assert nodes[3].completed_event_fields(router)["selected_steps"] == ["tech", "write_it"]
    assert nodes[4].started_event_fields() == {"steps_count": 2}
    assert nodes[4].completed_event_fields(steps)["executed_steps"] == 2


def test_stream_events_delivers_the_container_events() -> None:
    stream = events("tech news")

    parallel_started = only(stream, ParallelExecutionStartedEvent)
    assert parallel_started.step_name == "Research" and parallel_started.parallel_step_count == 2  # type: ignore[attr-defined]
    parallel_done = only(stream, ParallelExecutionCompletedEvent)
    assert [r.step_name for r in parallel_done.step_results] == ["web", "papers"]  # type: ignore[attr-defined]

    only(stream, ConditionExecutionStartedEvent)
    condition = only(stream, ConditionExecutionCompletedEvent)
    assert condition.condition_result is True and condition.branch == "if"  # type: ignore[attr-defined]
    assert condition.executed_steps == 1  # type: ignore[attr-defined]
    assert [r.step_name for r in condition.step_results] == ["deep"]  # type: ignore[attr-defined]

    assert only(stream, LoopExecutionStartedEvent).max_iterations == 2  # type: ignore[attr-defined]
    iterations = [e for e in stream if isinstance(e, LoopIterationCompletedEvent)]
    assert [e.iteration for e in iterations] == [1, 2]
    assert [e.should_continue for e in iterations] == [True, False]
    assert [len(e.iteration_results) for e in iterations] == [1, 1]
    assert [e.iteration for e in stream if isinstance(e, LoopIterationStartedEvent)] == [1, 2]
    loop = only(stream, LoopExecutionCompletedEvent)
    assert loop.total_iterations == 2 and len(loop.all_results) == 2  # type: ignore[attr-defined]

    only(stream, RouterExecutionStartedEvent)
    router = only(stream, RouterExecutionCompletedEvent)
    assert router.selected_steps == ["tech", "write_it"] and router.executed_steps == 2  # type: ignore[attr-defined]

    steps = only(stream, StepsExecutionCompletedEvent)
    assert only(stream, StepsExecutionStartedEvent).steps_count == 2  # type: ignore[attr-defined]
    assert steps.steps_count == 2 and steps.executed_steps == 2  # type: ignore[attr-defined]

    # plait's own handling: every container start and end is still a step event
    kinds = [e.step_type for e in stream if isinstance(e, StepStartedEvent)]
    assert {"Parallel", "Condition", "Loop", "Router", "Steps", "Step"} <= set(kinds)
    assert sum(isinstance(e, StepCompletedEvent) for e in stream) == len(kinds)


def test_a_false_condition_without_else_reports_no_branch() -> None:
    wf = Workflow(name="w", steps=[Condition(name="c", evaluator=False, steps=[research])])
    stream = list(wf.run("x", stream=True, stream_events=True))
    done = only(stream, ConditionExecutionCompletedEvent)
    assert done.condition_result is False and done.branch is None and done.executed_steps == 0  # type: ignore[attr-defined]


def test_the_else_branch_is_named_else() -> None:
    done = only(events("cooking"), ConditionExecutionCompletedEvent)
    assert done.condition_result is False and done.branch == "else"  # type: ignore[attr-defined]
    assert [r.step_name for r in done.step_results] == ["light"]  # type: ignore[attr-defined]


def test_loop_iteration_events_carry_agnos_fields() -> None:
    # emitted by the Loop itself: no engine change needed
    wf = Workflow(
        name="w", steps=[Loop(name="Refine", steps=[Step(name="refine", executor=write)], max_iterations=3)]
    )
    stream = list(wf.run("x", stream=True, stream_events=True))
    started = [e for e in stream if isinstance(e, LoopIterationStartedEvent)]
    assert [(e.iteration, e.max_iterations) for e in started] == [(1, 3), (2, 3), (3, 3)]
    completed = [e for e in stream if isinstance(e, LoopIterationCompletedEvent)]
    assert [e.should_continue for e in completed] == [True, True, False]
    assert all(e.max_iterations == 3 for e in completed)
    assert [[r.step_name for r in e.iteration_results] for e in completed] == [["refine"]] * 3
