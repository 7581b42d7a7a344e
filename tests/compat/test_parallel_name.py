"""Issue #14, item 10: ``Parallel("name", step_a, step_b)``, a string first argument is the name."""

from __future__ import annotations

import pytest

from plait import Parallel, Step, StepInput, StepOutput, Workflow
from plait.errors import DefinitionError


def web(step_input: StepInput) -> StepOutput:
    return StepOutput(content=f"web results for {step_input.input}")


def papers(step_input: StepInput) -> StepOutput:
    return StepOutput(content=f"papers on {step_input.input}")


def test_a_string_first_argument_names_the_parallel() -> None:
    research = Parallel(
        "Research Phase", Step(name="web", executor=web), Step(name="papers", executor=papers)
    )
    assert research.name == "Research Phase"
    assert [step.name for step in research.steps] == ["web", "papers"]
    output = Workflow(name="w", steps=[research]).run("tea")
    parallel_output = output.step_outputs[0]
    assert parallel_output.step_name == "Research Phase"
    assert parallel_output.step_type == "Parallel"
    assert [s.step_name for s in parallel_output.steps or []] == ["web", "papers"]


def test_the_keyword_name_still_works_and_a_name_given_twice_is_an_error() -> None:
    assert Parallel(Step(name="web", executor=web), name="research").name == "research"
    with pytest.raises(DefinitionError, match="name is given twice"):
        Parallel("research", Step(name="web", executor=web), name="other")
