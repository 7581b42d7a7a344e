"""Issue #14, item 12: the content after a Parallel works as Agno's text and as plait's dict.

In Agno it is a markdown string with a section per branch, and Agno code slices, formats
and searches it (the deep-nesting example's merge step does ``previous_step_content[:500]``);
plait code reads it by branch. A :class:`plait.ParallelContent` does both, and is stored and
restored as itself. Agno code below has only its imports and model changed.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle

import pytest
from pydantic import BaseModel

from plait import (
    Agent,
    Approval,
    Condition,
    Parallel,
    ParallelContent,
    Step,
    StepInput,
    StepOutput,
    Workflow,
)
from plait._codec import decode, encode
from plait.events import ParallelExecutionCompletedEvent
from plait.storage import MemoryStorage
from plait.testing import FunctionModel


def says(name: str) -> FunctionModel:
    return FunctionModel(lambda messages: f"{name} says: {messages[-1].content}")


def test_agnos_deeply_nested_workflow_example_runs_as_written() -> None:
    # Agno's cookbook: workflow_as_a_step/deeply_nested_workflow.py, models changed
    def merge_results(step_input: StepInput) -> StepOutput:
        """Merge content from previous steps."""
        prev = step_input.previous_step_content or ""
        return StepOutput(content=f"Merged: {prev[:500]}")

    data_workflow = Workflow(
        name="Data Collection",
        description="Collects and analyzes raw data",
        steps=[
            Step(name="gather", agent=Agent(name="Data Agent", model=says("data"))),
            Step(name="analyze", agent=Agent(name="Analysis Agent", model=says("analysis"))),
        ],
    )
    opinion_workflow = Workflow(
        name="Expert Opinion",
        steps=[Step(name="opinion", agent=Agent(name="Opinion Agent", model=says("opinion")))],
    )
    level2_workflow = Workflow(
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
    outer_workflow = Workflow(
        name="Full Pipeline",
        steps=[
            Step(name="research", workflow=level2_workflow),
            Step(name="write", agent=Agent(name="Writer", model=says("writer"))),
        ],
    )
    output = outer_workflow.run(input="What is the future of renewable energy?")
    merged = output.step_results[0].steps[1].content  # type: ignore[index]
    assert merged == (
        "Merged: ## Parallel Execution Results\n\n"
        "### ✅ SUCCESS: data_branch\n"
        "analysis says: data says: What is the future of renewable energy?\n\n"
        "### ✅ SUCCESS: opinion_branch\n"
        "opinion says: What is the future of renewable energy?"
    )
    assert output.content == f"writer says: {merged}"


def parallel_run(*extra: object) -> tuple[object, StepInput]:
    seen: list[StepInput] = []

    def after(step_input: StepInput) -> str:
        seen.append(step_input)
        return "done"

    Workflow(
        name="w",
        steps=[
            Parallel(
                "Research",
                Step(name="web", executor=lambda si: "Tea came from China."),
                Step(name="papers", executor=lambda si: "Camellia sinensis, a study"),
                *extra,
            ),
            after,
        ],
    ).run("tea")
    return seen[0].previous_step_content, seen[0]


def test_as_text_it_is_agnos_aggregated_content() -> None:
    content, step_input = parallel_run()
    text = (
        "## Parallel Execution Results\n\n"
        "### ✅ SUCCESS: web\nTea came from China.\n\n"
        "### ✅ SUCCESS: papers\nCamellia sinensis, a study"
    )
    assert str(content) == f"{content}" == content.as_text() == text  # type: ignore[attr-defined]
    assert content == text and not (content != text)  # noqa: SIM202  (both operators)
    assert content[:29] == "## Parallel Execution Results" and content[0] == "#"  # type: ignore[index]
    assert "China" in content and "web" in content and "coffee" not in content
    assert content.lower().count("tea") == 1  # type: ignore[attr-defined]
    assert content.startswith("## Parallel") and content.find("papers") > 0  # type: ignore[attr-defined]
    assert content.splitlines()[2] == "### ✅ SUCCESS: web"  # type: ignore[attr-defined]
    assert content + "!" == text + "!" and "> " + content == "> " + text  # type: ignore[operator]
    assert f"{content:.10}" == text[:10]
    assert len(str(content)) == len(text)
    assert step_input.message is content  # what an agent receives, as this text


def test_by_branch_it_is_plaits_dict() -> None:
    content, step_input = parallel_run()
    expected = {"web": "Tea came from China.", "papers": "Camellia sinensis, a study"}
    assert isinstance(content, dict) and content == expected
    assert content["web"] == "Tea came from China." and content.get("nope") is None
    assert list(content) == list(content.keys()) == ["web", "papers"] and len(content) == 2
    assert dict(content) == {**content} == expected and list(content.values()) == list(expected.values())
    assert json.loads(json.dumps(content)) == expected
    assert step_input.get_step_content("Research") is content
    assert "papers" in content.keys() and "China" not in content.keys()  # noqa: SIM118  (in alone finds text)
    with pytest.raises(KeyError, match=r"no branch 'nope'; its branches: 'web', 'papers'"):
        content["nope"]  # type: ignore[index]
    with pytest.raises(AttributeError, match="no attribute 'nosuch'"):
        content.nosuch  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(TypeError, match="unhashable"):
        hash(content)


class Paper(BaseModel):
    title: str
    year: int


@dataclasses.dataclass
class Note:
    text: str


def typed_workflow(storage: MemoryStorage | None = None, **options: object) -> Workflow:
    def paper(step_input: StepInput) -> Paper:
        return Paper(title="Tea", year=2020)

    def note(step_input: StepInput) -> Note:
        return Note(text="brewed")

    def boom(step_input: StepInput) -> str:
        raise ValueError("feed down")

    def after(step_input: StepInput) -> str:
        return str(step_input.previous_step_content)

    return Workflow(
        name="typed",
        steps=[
            Parallel(
                "fan",
                Step(name="paper", executor=paper),
                Step(name="note", executor=note),
                Step(name="feed", executor=boom, skip_on_failure=True),
                Condition(name="maybe", evaluator=False, steps=[Step(name="x", executor=paper)]),
                **options,  # type: ignore[arg-type]
            ),
            Step(name="after", executor=after),
        ],
        storage=storage,
    )


TYPED_TEXT = (
    "## Parallel Execution Results\n\n"
    '### ✅ SUCCESS: paper\n{"title":"Tea","year":2020}\n\n'
    '### ✅ SUCCESS: note\n{"text": "brewed"}\n\n'
    "### ❌ FAILURE: feed\nValueError: feed down\n\n"
    "### ✅ SUCCESS: maybe\n*(No content)*"
)


def test_any_branch_type_failures_and_empty_branches() -> None:
    output = typed_workflow().run("tea")
    content = output.step_results[0].content
    assert content["paper"] == Paper(title="Tea", year=2020) and content["note"] == Note(text="brewed")
    assert content["feed"] is None and content["maybe"] is None
    assert content.failures == {"feed": "ValueError: feed down"}
    assert output.content == TYPED_TEXT


def test_a_parallel_inside_a_parallel_nests_its_sections() -> None:
    inner = Parallel("inner", Step(name="x", executor=lambda si: "X"))
    output = Workflow(
        name="w", steps=[Parallel("outer", inner, Step(name="y", executor=lambda si: "Y"))]
    ).run("t")
    assert str(output.content) == (
        "## Parallel Execution Results\n\n### ✅ SUCCESS: inner\n"
        "## Parallel Execution Results\n\n### ✅ SUCCESS: x\nX\n\n### ✅ SUCCESS: y\nY"
    )
    assert output.content["inner"]["x"] == "X"


def test_stored_and_restored_as_itself() -> None:
    content = typed_workflow().run("tea").step_results[0].content
    for again in (
        decode(json.loads(json.dumps(encode(content, "t"))), "t"),
        pickle.loads(pickle.dumps(content)),
        copy.deepcopy(content),
        copy.copy(content),
        content.copy(),
    ):
        assert type(again) is ParallelContent and again == content and str(again) == str(content)
        assert again.failures == content.failures and type(again["paper"]) is Paper


def test_a_resumed_run_and_a_cache_hit_get_it_back() -> None:
    storage = MemoryStorage()
    seen: list[object] = []

    def after(step_input: StepInput) -> str:
        seen.append(step_input.previous_step_content)
        return "done"

    wf = Workflow(
        name="w",
        steps=[typed_workflow().nodes[0], Approval(name="ok"), Step(name="after", executor=after)],
        storage=storage,
    )
    paused = wf.run("tea")
    done = wf.continue_run(paused.run_id, approve=True)
    assert done.content == "done"
    restored = seen[-1]
    assert type(restored) is ParallelContent and str(restored) == TYPED_TEXT
    assert type(restored["paper"]) is Paper  # type: ignore[index]

    # a failed branch is not cached (plait caches successful outputs): cache the two others
    branches = typed_workflow().nodes[0].steps[:2]  # type: ignore[attr-defined]
    cached = Workflow(name="c", steps=[Parallel("fan", *branches, cache=True)], storage=storage)
    first = cached.run("tea")
    hit = list(cached.run("tea", stream=True, stream_events=True))
    completed = next(e for e in hit if isinstance(e, ParallelExecutionCompletedEvent))
    assert completed.cached and type(completed.content) is ParallelContent
    assert completed.content == first.content and str(completed.content) == str(first.content)
    assert type(completed.content["paper"]) is Paper and "✅ SUCCESS: note" in completed.content
    assert completed.to_dict()["content"]["note"] == {"text": "brewed"}  # events serialize the branches


def test_old_stored_content_a_plain_dict_still_loads() -> None:
    node = typed_workflow().nodes[0]
    loaded = node.load_content({"paper": "p", "note": "n"})
    assert type(loaded) is ParallelContent and loaded["paper"] == "p"


def test_pydantic_sees_the_branches() -> None:
    class Holder(BaseModel):
        branches: dict[str, str]

    content, _ = parallel_run()
    assert Holder(branches=content).branches == dict(content)  # type: ignore[arg-type]
    assert Holder(branches=content).model_dump_json().startswith('{"branches":{"web"')  # type: ignore[arg-type]


def upper(step_input: StepInput) -> str:
    return str(step_input.input).upper()


def lower(step_input: StepInput) -> str:
    return str(step_input.input).lower()


def test_shipped_to_another_process_and_back_it_is_still_itself() -> None:
    from plait.testing import PickleRoundTripRunner

    runner = PickleRoundTripRunner()
    inner = Parallel("inner", Step(name="up", executor=upper), Step(name="down", executor=lower))
    outer = Parallel("outer", inner, Step(name="same", executor=upper), runner=runner)
    output = Workflow(name="w", steps=[outer]).run("Tea")
    assert runner.shipped == 2
    assert type(output.content["inner"]) is ParallelContent and output.content["inner"] == {
        "up": "TEA",
        "down": "tea",
    }
    assert "### ✅ SUCCESS: up\nTEA" in output.content
