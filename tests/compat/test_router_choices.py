"""Issue #14, item 11: ``Router(choices=[a, [b, c]])`` and ``selector(step_input, step_choices)``."""

from __future__ import annotations

from plait import Router, Step, StepInput, StepOutput, Steps, Workflow


def quick_answer(step_input: StepInput) -> StepOutput:
    return StepOutput(content=f"quick: {step_input.input}")


def deep_research(step_input: StepInput) -> StepOutput:
    return StepOutput(content=f"research: {step_input.input}")


def write_report(step_input: StepInput) -> StepOutput:
    return StepOutput(content=f"report from {step_input.previous_step_content}")


quick = Step(name="quick", executor=quick_answer)
research = Step(name="research", executor=deep_research)
report = Step(name="report", executor=write_report)


def test_a_list_in_choices_is_a_steps_sequence() -> None:
    def selector(step_input: StepInput, step_choices: list) -> list:  # type: ignore[type-arg]
        # Agno's pattern: pick among the prepared choices by position
        return [step_choices[0]] if "?" in str(step_input.input) else [step_choices[1]]

    router = Router(name="depth", selector=selector, choices=[quick, [research, report]])
    assert isinstance(router.choices[1], Steps)
    assert router.choices[1].name == "steps_group_1"  # Agno's generated name
    workflow = Workflow(name="w", steps=[router])
    deep = workflow.run("tea history")
    assert deep.content == "report from research: tea history"
    assert deep.step_outputs[0].steps is not None
    assert deep.step_outputs[0].steps[0].step_type == "Steps"
    assert workflow.run("why tea?").content == "quick: why tea?"


def test_the_selector_gets_the_choices_when_it_declares_step_choices() -> None:
    seen: list[list[str]] = []

    def by_name(step_input: StepInput, step_choices: list) -> str:  # type: ignore[type-arg]
        names = [step.name for step in step_choices]
        seen.append(names)
        return names[-1]

    output = Workflow(name="w", steps=[Router(name="pick", selector=by_name, choices=[quick, research])]).run(
        "x"
    )
    assert seen == [["quick", "research"]]
    assert output.content == "research: x"


async def test_an_async_selector_with_step_choices() -> None:
    async def selector(step_input: StepInput, step_choices: list) -> object:  # type: ignore[type-arg]
        return step_choices[0]

    output = await Workflow(
        name="w", steps=[Router(name="pick", selector=selector, choices=[quick, research])]
    ).arun("x")
    assert output.content == "quick: x"


def test_a_selector_without_step_choices_is_called_as_before() -> None:
    output = Workflow(
        name="w", steps=[Router(name="pick", selector=lambda si: "quick", choices=[quick])]
    ).run("x")
    assert output.content == "quick: x"
