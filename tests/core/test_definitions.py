"""Bad definitions fail at construction with a DefinitionError that says what was
expected and what was given; a tree too deep or containing itself is reported as such."""

from __future__ import annotations

import math
from typing import Any

import pytest

from plait import Agent, Loop, Parallel, RetryPolicy, Step, StepInput, Steps, Team, Workflow
from plait.errors import DefinitionError
from plait.models import ModelSettings
from plait.primitives import MAX_DEPTH
from plait.testing import FunctionModel


def noop(step_input: StepInput) -> str:
    return "ok"


model = FunctionModel(lambda messages: "hi")

BAD: list[tuple[str, Any, str]] = [
    (
        "Step timeout=nan",
        lambda: Step(name="s", executor=noop, timeout=math.nan),
        "timeout must be a positive, finite",
    ),
    ("Step timeout=inf", lambda: Step(name="s", executor=noop, timeout=math.inf), "got inf"),
    ("Step timeout=0", lambda: Step(name="s", executor=noop, timeout=0), "got 0"),
    ("Step timeout=-1", lambda: Step(name="s", executor=noop, timeout=-1), "got -1"),
    ("Step timeout=True", lambda: Step(name="s", executor=noop, timeout=True), "got True"),
    ("Step timeout='5'", lambda: Step(name="s", executor=noop, timeout="5"), "got '5'"),
    (
        "Workflow timeout=nan",
        lambda: Workflow(name="w", steps=[noop], timeout=math.nan),
        "Workflow 'w': timeout",
    ),
    (
        "Step max_retries=nan",
        lambda: Step(name="s", executor=noop, max_retries=math.nan),
        "max_retries must be an int",
    ),
    (
        "RetryPolicy initial_delay=nan",
        lambda: RetryPolicy(initial_delay=math.nan),
        "initial_delay must be a finite",
    ),
    ("RetryPolicy max_delay=inf", lambda: RetryPolicy(max_delay=math.inf), "max_delay"),
    ("RetryPolicy multiplier=nan", lambda: RetryPolicy(multiplier=math.nan), "multiplier"),
    (
        "RetryPolicy multiplier=0.5",
        lambda: RetryPolicy(multiplier=0.5),
        "multiplier must be a finite number >= 1",
    ),
    ("RetryPolicy jitter=nan", lambda: RetryPolicy(jitter=math.nan), "jitter"),
    ("RetryPolicy jitter=2", lambda: RetryPolicy(jitter=2), "jitter must be within 0..1"),
    ("RetryPolicy max_attempts=0", lambda: RetryPolicy(max_attempts=0), "max_attempts must be an int >= 1"),
    ("RetryPolicy max_attempts=True", lambda: RetryPolicy(max_attempts=True), "max_attempts"),
    ("RetryPolicy retry_on=(1,)", lambda: RetryPolicy(retry_on=(1,)), "tuple of exception types"),  # type: ignore[arg-type]
    ("RetryPolicy retry_on=()", lambda: RetryPolicy(retry_on=()), "non-empty tuple"),
    (
        "Steps with no steps",
        lambda: Steps(name="group", steps=[]),
        "Steps 'group': expected at least one step",
    ),
    (
        "sinks='console'",
        lambda: Workflow(name="w", steps=[noop], sinks="console"),
        "did you mean sinks=['console']",
    ),
    ("sinks=[5]", lambda: Workflow(name="w", steps=[noop], sinks=[5]), "got 5"),
    (
        "Parallel max_concurrency=nan",
        lambda: Parallel(noop, name="p", max_concurrency=math.nan),
        "max_concurrency",
    ),
    ("Parallel max_concurrency=0", lambda: Parallel(noop, name="p", max_concurrency=0), "max_concurrency"),
    ("Loop max_iterations=2.5", lambda: Loop(name="l", steps=[noop], max_iterations=2.5), "max_iterations"),
    ("Agent(name=5)", lambda: Agent(name=5, model=model), "name must be a non-empty string, got 5"),
    ("Agent(name='')", lambda: Agent(name="", model=model), "name must be a non-empty string"),
    ("Agent(retry=3)", lambda: Agent(name="a", model=model, retry=3), "retry must be a RetryPolicy"),
    (
        "Agent(settings={})",
        lambda: Agent(name="a", model=model, settings={"temperature": 0}),
        "settings must be ModelSettings",
    ),
    (
        "Agent(instructions=5)",
        lambda: Agent(name="a", model=model, instructions=5),
        "instructions must be a string",
    ),
    ("Agent(instructions=[1])", lambda: Agent(name="a", model=model, instructions=[1]), "list of strings"),
    ("Agent(tools=5)", lambda: Agent(name="a", model=model, tools=5), "tools must be a list"),
    ("Agent(tools=noop)", lambda: Agent(name="a", model=model, tools=noop), "tools must be a list"),
    (
        "Agent(max_tool_rounds=nan)",
        lambda: Agent(name="a", model=model, max_tool_rounds=math.nan),
        "max_tool_rounds",
    ),
    (
        "Team(name=5)",
        lambda: Team(name=5, members=[Agent(name="a", model=model)], model=model),
        "name must be a non-empty string",
    ),
    (
        "Team(max_tool_rounds=-1)",
        lambda: Team(name="t", members=[Agent(name="a", model=model)], model=model, max_tool_rounds=-1),
        "max_tool_rounds",
    ),
]


@pytest.mark.parametrize(("what", "build", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_a_definition_error_saying_what_was_expected(
    what: str, build: Any, message: str
) -> None:
    with pytest.raises(DefinitionError) as info:
        build()
    assert message in str(info.value), str(info.value)


def test_good_input_still_builds() -> None:
    assert RetryPolicy(retry_on=TimeoutError).retry_on == (TimeoutError,)
    assert Step(name="s", executor=noop, timeout=0.5).timeout == 0.5
    Agent(name="a", model=model, settings=ModelSettings(temperature=0), instructions=("a", "b"), tools=())
    Workflow(name="w", steps=[noop], sinks=("console",))


# -- depth and self-containment ------------------------------------------------------


def chain(levels: int) -> Workflow:
    """``levels`` workflows, each the only step of the next."""
    wf = Workflow(name="w0", steps=[Step(name="s", executor=noop)])
    for i in range(1, levels):
        wf = Workflow(name=f"w{i}", steps=[wf])
    return wf


def test_the_deepest_allowed_nesting_runs_everywhere(tmp_path: Any) -> None:
    wf = chain(MAX_DEPTH)  # 99 nested workflow steps and the innermost step: 100 levels
    assert wf.run("x").status == "COMPLETED"
    events = list(wf.run("x", stream=True, stream_events=True))
    assert max(e.nested_depth for e in events) == MAX_DEPTH - 1
    wf.storage = f"sqlite:///{tmp_path / 'runs.db'}"
    out = wf.run("x")
    assert out.status == "COMPLETED"
    with pytest.raises(DefinitionError, match="more than 100 levels"):
        Workflow(name="one more", steps=[wf])


def test_a_tree_deeper_than_the_limit_fails_at_construction_naming_the_limit() -> None:
    with pytest.raises(DefinitionError, match=r"Workflow 'w100': steps nest more than 100 levels deep"):
        chain(MAX_DEPTH + 1)
    deep: Any = Step(name="leaf", executor=noop)
    with pytest.raises(DefinitionError, match="more than 100 levels"):
        for i in range(MAX_DEPTH + 1):
            deep = Steps(name=f"g{i}", steps=[deep])
        Workflow(name="containers", steps=[deep])


def test_a_workflow_that_contains_itself_is_reported_as_such() -> None:
    outer = chain(3)  # w2 > w1 > w0
    middle = outer.nodes[0].workflow
    assert middle is not None
    middle.nodes.append(Step(name="again", workflow=outer))  # a cycle, made after construction
    with pytest.raises(DefinitionError, match=r"Workflow 'w2': step 'w1' contains itself: w1/again/w1"):
        outer.run("x")
    with pytest.raises(DefinitionError, match="contains itself"):
        Workflow(name="host", steps=[outer])
