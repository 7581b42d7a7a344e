"""Definition-time errors (#17 item 5): "did you mean" for registry names, executor signatures
checked when the step is built, not when it runs."""

from __future__ import annotations

import functools
import subprocess
import sys

import pytest

from plait import Agent, Condition, FallbackModel, Loop, Router, Step, StepInput, Team, Workflow
from plait.errors import DefinitionError


def test_misspelled_model_provider_suggests_the_close_one_at_construction() -> None:
    with pytest.raises(
        DefinitionError, match=r"Agent 'Writer'.*no model named 'opnai'.*did you mean 'openai'\?"
    ):
        Agent(name="Writer", model="opnai:gpt-4o-mini", instructions="Write.")
    with pytest.raises(
        DefinitionError, match=r"Team 'Desk'.*no model named 'antropic'.*did you mean 'anthropic'\?"
    ):
        Team(name="Desk", members=[Agent(name="A", model="offline:demo")], model="antropic:claude-haiku-4-5")
    with pytest.raises(DefinitionError, match=r"FallbackModel.*no model named 'opnai'"):
        FallbackModel("offline:demo", "opnai:gpt-4o-mini")
    with pytest.raises(DefinitionError, match=r"no model named 'opnai'"):
        Agent(name="Writer", model=["offline:demo", "opnai:gpt-4o-mini"])


def test_misspelled_storage_scheme_suggests_the_close_one_at_construction() -> None:
    with pytest.raises(
        DefinitionError, match=r"Workflow 'W'.*no storage named 'sqlit'.*did you mean 'sqlite'\?"
    ):
        Workflow(name="W", steps=[Step(name="s", executor=lambda step_input: "ok")], storage="sqlit:///x.db")


def test_a_storage_url_error_shows_the_scheme_only() -> None:
    with pytest.raises(DefinitionError) as caught:
        Workflow(
            name="W",
            steps=[Step(name="s", executor=lambda step_input: "ok")],
            storage="postgrs://u:s3cret@h/db",
        )
    assert "s3cret" not in str(caught.value) and "did you mean 'postgres" in str(caught.value)


def test_a_name_far_from_all_gets_no_suggestion() -> None:
    with pytest.raises(DefinitionError) as caught:
        Agent(name="Writer", model="zzzzzz:gpt", instructions="Write.")
    assert "did you mean" not in str(caught.value) and "known:" in str(caught.value)


def test_known_and_builtin_providers_pass_without_building_the_registry() -> None:
    """A provider a known distribution provides passes at construction whether installed or not
    (a missing one gets its install hint when used), and so do the built-in names, without
    importing the plugin registry."""
    script = (
        "import sys\n"
        "from plait import Agent, Step, Workflow\n"
        "Agent(name='A', model='openai:gpt-4o-mini'); Agent(name='B', model='offline:demo')\n"
        "Agent(name='C', model='litellm:openai/gpt-4o-mini'); Agent(name='D', model='test:x')\n"
        "Workflow(name='W', steps=[Step(name='s', executor=lambda s: 1)], storage='sqlite:///:memory:')\n"
        "Workflow(name='V', steps=[Step(name='s', executor=lambda s: 1)], storage='redis://127.0.0.1:6379/0')\n"
        "print('plait.plugins' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_the_builtin_names_are_what_the_builtins_register() -> None:
    from plait._lookup import BUILTIN_NAMES
    from plait.plugins import BUILTIN_PLUGIN, get_registry

    registry = get_registry()
    for kind, names in BUILTIN_NAMES.items():
        builtin = {key for key, entry in registry.entries(kind).items() if entry.plugin == BUILTIN_PLUGIN}
        assert builtin == set(names), kind


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
