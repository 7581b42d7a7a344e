"""Steps, Parallel, Condition, Loop and Router."""

from __future__ import annotations

import asyncio

import pytest

from plait import (
    Condition,
    Loop,
    Parallel,
    Router,
    Step,
    StepError,
    StepInput,
    StepOutput,
    Steps,
    Workflow,
)
from plait.errors import DefinitionError


def echo(label: str):  # type: ignore[no-untyped-def]
    def step(step_input: StepInput) -> str:
        return f"{label}({step_input.message})"

    step.__name__ = label
    return step


def test_steps_group_runs_in_sequence() -> None:
    group = Steps(name="article", steps=[echo("research"), echo("write"), echo("edit")])
    output = Workflow(name="w", steps=[group, echo("publish")]).run("ai")
    assert output.content == "publish(edit(write(research(ai))))"
    assert output.step_outputs[0].step_type == "Steps"
    assert [s.step_id for s in output.step_outputs[0].steps] == [
        "article/research",
        "article/write",
        "article/edit",
    ]


def test_parallel_content_holds_every_branch_by_name() -> None:
    seen: dict[str, object] = {}

    def synthesize(step_input: StepInput) -> str:
        seen["last"] = step_input.get_last_step_content()
        seen["by_name"] = step_input.get_step_content("research")
        seen["branch"] = step_input.get_step_content("web")
        return "done"

    workflow = Workflow(
        name="w",
        steps=[Parallel(echo("web"), echo("papers"), echo("news"), name="research"), synthesize],
    )
    output = workflow.run("q")
    branches = {"web": "web(q)", "papers": "papers(q)", "news": "news(q)"}
    assert seen == {"last": branches, "by_name": branches, "branch": "web(q)"}
    parallel = output.step_outputs[0]
    assert parallel.content == branches
    assert [s.step_id for s in parallel.steps] == ["research/web", "research/papers", "research/news"]


def test_parallel_accepts_a_list_and_bounds_concurrency() -> None:
    running = 0
    peak = 0

    async def work(step_input: StepInput) -> str:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return "ok"

    steps = [Step(name=f"b{i}", executor=work) for i in range(6)]
    Workflow(name="w", steps=[Parallel(steps, name="p", max_concurrency=2)]).run("x")
    assert peak == 2


@pytest.mark.parametrize(
    ("topic", "expected"), [("ai news", "tech(ai news)"), ("cooking", "general(cooking)")]
)
def test_condition_with_else_steps(topic: str, expected: str) -> None:
    def is_tech(step_input: StepInput) -> bool:
        return "ai" in step_input.input

    workflow = Workflow(
        name="w",
        steps=[
            Condition(name="tech?", evaluator=is_tech, steps=[echo("tech")], else_steps=[echo("general")])
        ],
    )
    output = workflow.run(topic)
    assert output.content == expected
    assert output.step_outputs[0].metadata == {"result": topic == "ai news"}


def test_condition_false_without_else_passes_content_through() -> None:
    async def never(step_input: StepInput) -> bool:
        return False

    workflow = Workflow(
        name="w", steps=[echo("a"), Condition(name="c", evaluator=never, steps=[echo("x")]), echo("b")]
    )
    output = workflow.run("in")
    assert output.content == "b(a(in))"
    assert output.step_outputs[1].skipped and output.step_outputs[1].success


def test_condition_with_a_bool_evaluator() -> None:
    workflow = Workflow(name="w", steps=[Condition(name="c", evaluator=True, steps=[echo("x")])])
    assert workflow.run("in").content == "x(in)"


def test_condition_evaluator_returning_non_bool_fails_loudly() -> None:
    workflow = Workflow(name="w", steps=[Condition(name="c", evaluator=lambda si: "yes", steps=[echo("x")])])
    with pytest.raises(StepError, match=r"Condition 'c': evaluator returned 'yes' \(str\), expected a bool"):
        workflow.run("in")


def test_loop_until_end_condition() -> None:
    calls = []

    def grow(step_input: StepInput) -> str:
        calls.append(step_input.message)
        return "x" * (len(calls) * 2)

    def long_enough(outputs: list[StepOutput]) -> bool:
        return any(len(o.content) >= 6 for o in outputs)

    workflow = Workflow(
        name="w", steps=[Loop(name="loop", steps=[grow], end_condition=long_enough, max_iterations=10)]
    )
    output = workflow.run("seed")
    assert output.content == "xxxxxx"
    assert calls == ["seed", "seed", "seed"]  # each iteration receives the loop's input
    loop = output.step_outputs[0]
    assert loop.metadata == {"iterations": 3}
    assert [s.step_id for s in loop.steps] == ["loop[1]/grow", "loop[2]/grow", "loop[3]/grow"]


def test_loop_forwards_iteration_output_and_stops_at_max_iterations() -> None:
    workflow = Workflow(
        name="w",
        steps=[Loop(name="loop", steps=[echo("refine")], max_iterations=3, forward_iteration_output=True)],
    )
    output = workflow.run("draft")
    assert output.content == "refine(refine(refine(draft)))"
    assert output.step_outputs[0].metadata == {"iterations": 3}


def test_loop_end_condition_returning_non_bool_fails() -> None:
    loop = Loop(name="loop", steps=[echo("x")], end_condition=lambda outputs: None)
    with pytest.raises(StepError, match="end_condition returned None"):
        Workflow(name="w", steps=[loop]).run("in")


def test_router_by_step_list_and_name() -> None:
    tech = Step(name="tech", executor=echo("tech"))
    business = Step(name="business", executor=echo("business"))
    general = Step(name="general", executor=echo("general"))

    async def route(step_input: StepInput):  # type: ignore[no-untyped-def]
        topic = step_input.input
        if "tech" in topic:
            return tech
        if "business" in topic:
            return "business"
        if "both" in topic:
            return [tech, business]
        return [Step(name="fresh", executor=echo("fresh"))]

    workflow = Workflow(
        name="w", steps=[Router(name="topic", selector=route, choices=[tech, business, general])]
    )
    assert workflow.run("tech").content == "tech(tech)"
    assert workflow.run("business").content == "business(business)"
    output = workflow.run("both")
    assert output.content == "business(tech(both))"
    assert output.step_outputs[0].metadata == {"selected": ["tech", "business"]}
    assert workflow.run("other").content == "fresh(other)"


def test_router_unknown_name_lists_the_choices() -> None:
    choices = [Step(name=n, executor=echo(n)) for n in ("tech", "business", "general")]
    workflow = Workflow(
        name="w", steps=[Router(name="topic", selector=lambda si: "finance", choices=choices)]
    )
    with pytest.raises(StepError) as info:
        workflow.run("x")
    assert (
        str(info.value)
        == "Router 'topic': selector returned 'finance', expected one of 'tech', 'business', 'general'"
    )


def test_steps_inside_router() -> None:
    image = Steps(name="image", steps=[echo("generate_image"), echo("describe_image")])
    video = Steps(name="video", steps=[echo("generate_video"), echo("describe_video")])
    router = Router(
        name="media", selector=lambda si: [video] if "video" in si.input else [image], choices=[image, video]
    )
    workflow = Workflow(name="media", steps=[router])
    assert workflow.run("a video").content == "describe_video(generate_video(a video))"
    assert workflow.run("an image").content == "describe_image(generate_image(an image))"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: Condition(name="c", evaluator="yes", steps=[echo("x")]),
            "evaluator must be a bool or a callable",
        ),
        (lambda: Condition(name="c", evaluator=True, steps=[]), "at least one step"),
        (lambda: Loop(name="l", steps=[echo("x")], max_iterations=0), "max_iterations must be an int >= 1"),
        (lambda: Router(name="r", selector=None, choices=[echo("x")]), "selector must be a callable"),
        (lambda: Router(name="r", selector=lambda si: "x", choices=[]), "at least one step in choices"),
        (lambda: Parallel(name="p"), "at least one branch"),
        (lambda: Parallel(echo("a"), name="p", max_concurrency=0), "max_concurrency must be an int >= 1"),
        (
            lambda: Parallel(
                Step(name="a", executor=echo("a")), Step(name="a", executor=echo("b")), name="p"
            ),
            "two steps are named 'a'",
        ),
    ],
)
def test_container_definition_errors(build, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DefinitionError, match=message):
        build()
