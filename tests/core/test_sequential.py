"""Sequential workflows: content flow, StepInput helpers, every kind of executor."""

from __future__ import annotations

import asyncio

import pytest

from plait import RunContext, RunStatus, Step, StepInput, StepOutput, StepType, Workflow
from plait.errors import DefinitionError


def add_one(step_input: StepInput) -> StepOutput:
    value = step_input.previous_step_content
    return StepOutput(content=(step_input.input if value is None else value) + 1)


def test_content_flows_from_step_to_step() -> None:
    workflow = Workflow(name="chain", steps=[add_one, add_one, add_one])
    output = workflow.run(1)
    assert output.content == 4
    assert output.status is RunStatus.COMPLETED
    assert [o.step_name for o in output.step_outputs] == ["add_one", "add_one_2", "add_one_3"]
    assert [o.step_id for o in output.step_outputs] == ["add_one", "add_one_2", "add_one_3"]


def test_step_input_helpers_see_every_earlier_step() -> None:
    seen: dict[str, object] = {}

    def first(step_input: StepInput) -> str:
        return f"first:{step_input.input}"

    def second(step_input: StepInput) -> str:
        return "second"

    def last(step_input: StepInput) -> str:
        seen["first"] = step_input.get_step_content("first")
        seen["output"] = step_input.get_step_output("second").content  # type: ignore[union-attr]
        seen["last"] = step_input.get_last_step_content()
        seen["all"] = step_input.get_all_previous_content()
        seen["missing"] = step_input.get_step_content("nope")
        return "done"

    Workflow(name="helpers", steps=[first, second, last]).run("x")
    assert seen == {
        "first": "first:x",
        "output": "second",
        "last": "second",
        "all": "## first\nfirst:x\n\n## second\nsecond",
        "missing": None,
    }


class SyncCallable:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, step_input: StepInput) -> StepOutput:
        self.calls += 1
        return StepOutput(content=f"sync-class({step_input.message})")


class AsyncCallable:
    async def __call__(self, step_input: StepInput) -> StepOutput:
        await asyncio.sleep(0)
        return StepOutput(content=f"async-class({step_input.message})")


class StreamingCallable:
    async def __call__(self, step_input: StepInput):  # type: ignore[no-untyped-def]
        yield "chunk"
        yield StepOutput(content=f"async-gen-class({step_input.message})")


def test_every_executor_kind() -> None:
    async def async_fn(step_input: StepInput) -> str:
        return f"async({step_input.message})"

    def sync_gen(step_input: StepInput):  # type: ignore[no-untyped-def]
        yield "progress"
        yield StepOutput(content=f"gen({step_input.message})")

    async def async_gen(step_input: StepInput):  # type: ignore[no-untyped-def]
        yield {"progress": 1}
        yield StepOutput(content=f"agen({step_input.message})")

    def text_only_gen(step_input: StepInput):  # type: ignore[no-untyped-def]
        yield "a"
        yield "b"

    sync_class = SyncCallable()
    workflow = Workflow(
        name="kinds",
        steps=[
            Step(name="sync class", executor=sync_class),
            Step(name="async class", executor=AsyncCallable()),
            Step(name="async fn", executor=async_fn),
            Step(name="sync gen", executor=sync_gen),
            Step(name="async gen", executor=async_gen),
            Step(name="streaming class", executor=StreamingCallable()),
            Step(name="text gen", executor=text_only_gen),
        ],
    )
    output = workflow.run("in")
    contents = [o.content for o in output.step_outputs]
    assert contents == [
        "sync-class(in)",
        "async-class(sync-class(in))",
        "async(async-class(sync-class(in)))",
        "gen(async(async-class(sync-class(in))))",
        "agen(gen(async(async-class(sync-class(in)))))",
        "async-gen-class(agen(gen(async(async-class(sync-class(in))))))",
        "ab",
    ]
    assert sync_class.calls == 1
    assert [o.executor_type for o in output.step_outputs[:3]] == ["class", "class", "function"]
    assert output.step_outputs[0].step_type == StepType.STEP


def test_run_context_parameter_gives_session_state_and_ids() -> None:
    seen: dict[str, object] = {}

    def counter(step_input: StepInput, run_context: RunContext) -> str:
        run_context.session_state["count"] = run_context.session_state.get("count", 0) + 1
        seen["ids"] = (run_context.run_id, run_context.session_id, run_context.step_id)
        return "ok"

    workflow = Workflow(name="state", steps=[counter], session_state={"count": 10})
    output = workflow.run("x", session_id="s1")
    assert output.session_state == {"count": 11}
    assert seen["ids"] == (output.run_id, "s1", "counter")
    # session state persists across runs of one session, and sessions are separate
    assert workflow.run("x", session_id="s1").session_state == {"count": 12}
    assert workflow.run("x", session_id="s2").session_state == {"count": 11}
    assert workflow.session_state == {"count": 10}


def test_arun_and_run_inside_a_running_loop() -> None:
    workflow = Workflow(name="chain", steps=[add_one, add_one])

    async def main() -> tuple[int, int]:
        awaited = await workflow.arun(1)
        # run() from inside a running event loop moves to a thread of its own
        nested = workflow.run(10)
        return awaited.content, nested.content

    assert asyncio.run(main()) == (3, 12)


def test_get_last_run_output() -> None:
    workflow = Workflow(name="chain", steps=[add_one])
    assert workflow.get_last_run_output() is None
    output = workflow.run(1)
    assert workflow.get_last_run_output() is output


def test_input_schema_validates_input() -> None:
    from pydantic import BaseModel

    class Topic(BaseModel):
        topic: str
        depth: int = 1

    def use(step_input: StepInput) -> str:
        return f"{step_input.input.topic}/{step_input.input.depth}"

    workflow = Workflow(name="typed", steps=[use], input_schema=Topic)
    assert workflow.run({"topic": "ai", "depth": 2}).content == "ai/2"
    assert workflow.run('{"topic": "ml"}').content == "ml/1"
    with pytest.raises(DefinitionError, match="does not match Topic"):
        workflow.run({"depth": "x"})


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Step(name="x"), "exactly one of agent=, team=, executor= or workflow=, got none"),
        (
            lambda: Step(name="x", executor=add_one, workflow=Workflow(name="w", steps=[add_one])),
            "got executor and workflow",
        ),
        (lambda: Step(name="x", executor=42), "expected a function or a callable object"),
        (
            lambda: Workflow(
                name="w", steps=[Step(name="a", executor=add_one), Step(name="a", executor=add_one)]
            ),
            "two steps are named 'a'",
        ),
        (lambda: Workflow(name="w", steps=[42]), "expected a Step, Steps, Parallel"),
        (lambda: Workflow(name="w", steps=None), "expected steps="),
        (lambda: Workflow(name="w", steps=[]), "at least one step"),
        (lambda: Step(name="x", executor=add_one, timeout=-1), "timeout must be a positive, finite number"),
        (lambda: Step(name="x", executor=add_one, on_error="ignore"), "on_error must be 'fail' or 'skip'"),
        (lambda: Step(name="", executor=add_one), "non-empty name"),
    ],
)
def test_invalid_definitions_fail_at_construction(build, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DefinitionError, match=message):
        build()
