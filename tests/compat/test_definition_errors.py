"""Definition-time errors (#17 item 5): "did you mean" for registry names, executor signatures
checked when the step is built, not when it runs."""

from __future__ import annotations

import functools

import pytest

from plait import Agent, Condition, Loop, Router, Step, StepInput, Workflow
from plait.errors import DefinitionError, PluginError


def test_misspelled_model_provider_suggests_the_close_one() -> None:
    agent = Agent(name="Writer", model="opnai:gpt-4o-mini", instructions="Write.")
    with pytest.raises(PluginError, match=r"no model named 'opnai'.*did you mean 'openai'\?"):
        agent.run("tea")


def test_misspelled_storage_scheme_suggests_the_close_one() -> None:
    workflow = Workflow(
        name="W", steps=[Step(name="s", executor=lambda step_input: "ok")], storage="sqlit:///x.db"
    )
    with pytest.raises(PluginError, match=r"no storage named 'sqlit'.*did you mean 'sqlite'\?"):
        workflow.run("x")


def test_a_name_far_from_all_gets_no_suggestion() -> None:
    agent = Agent(name="Writer", model="zzzzzz:gpt", instructions="Write.")
    with pytest.raises(PluginError) as caught:
        agent.run("tea")
    assert "did you mean" not in str(caught.value) and "known:" in str(caught.value)


def test_executor_without_a_parameter_is_refused_at_construction() -> None:
    with pytest.raises(DefinitionError) as caught:
        Workflow(name="W", steps=[lambda: 1])
    message = str(caught.value)
    assert "Step '<lambda>' executor" in message and "lambda()" in message and "StepInput" in message


def test_executor_with_two_required_parameters_names_step_and_signature() -> None:
    def summarize(step_input, style):  # type: ignore[no-untyped-def]
        return style

    with pytest.raises(DefinitionError, match=r"Step 'summary' executor: summarize\(step_input, style\)"):
        Step(name="summary", executor=summarize)


class Callable1:
    def __call__(self, step_input: StepInput) -> str:
        return "c"


class Callable0:
    def __call__(self) -> str:
        return "c"


class Holder:
    def method(self, step_input: StepInput) -> str:
        return "m"


def two(a: object, b: object) -> object:
    return a


def injected(step_input: StepInput, session_state: dict, run_context: object = None) -> str:  # type: ignore[type-arg]
    return "i"


@pytest.mark.parametrize(
    "executor",
    [
        lambda step_input: "x",
        lambda *args: "x",
        lambda step_input, extra=2: "x",
        lambda step_input, **kwargs: "x",
        Callable1(),
        Holder().method,
        functools.partial(two, b=1),
        injected,
    ],
    ids=["plain", "varargs", "default", "kwargs", "callable-object", "bound-method", "partial", "injected"],
)
def test_executors_that_take_a_step_input_are_accepted(executor: object) -> None:
    workflow = Workflow(name="W", steps=[Step(name="s", executor=executor)], session_state={})  # type: ignore[arg-type]
    assert workflow.run("x").status == "COMPLETED"


@pytest.mark.parametrize(
    "executor",
    [Callable0(), functools.partial(two, 1, 2), lambda *, step_input: 1],
    ids=["callable-object", "partial-full", "keyword-only"],
)
def test_executors_that_cannot_take_a_step_input_are_refused(executor: object) -> None:
    with pytest.raises(DefinitionError, match="Step 's' executor"):
        Step(name="s", executor=executor)  # type: ignore[arg-type]


def test_evaluator_selector_and_end_condition_are_checked_too() -> None:
    step = Step(name="s", executor=lambda step_input: "x")
    with pytest.raises(DefinitionError, match="Condition 'c' evaluator"):
        Condition(name="c", evaluator=lambda: True, steps=[step])
    with pytest.raises(DefinitionError, match="Router 'r' selector"):
        Router(name="r", selector=lambda: [step], choices=[step])
    with pytest.raises(DefinitionError, match=r"Loop 'l' end_condition.*outputs"):
        Loop(name="l", steps=[step], end_condition=lambda a, b: True)
