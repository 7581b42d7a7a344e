"""Issue #14, item 3: a ``session_state`` parameter, as Agno's step functions, evaluators,
selectors, end conditions and tools declare it.

Code that declares ``session_state`` gets the run's live session state dict (the one
``run_context.session_state`` is); what it changes there is the run's state, kept by the
session and merged after parallel branches like any change made through ``run_context``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from plait import (
    Agent,
    Condition,
    Loop,
    Parallel,
    Router,
    RunContext,
    Step,
    StepInput,
    StepOutput,
    Tool,
    Workflow,
)
from plait.models import ToolCall
from plait.testing import FunctionModel

# -- Agno's shopping-list pattern: functions that read and write session_state ---------------


def add_item(step_input: StepInput, session_state: dict[str, Any]) -> StepOutput:
    session_state["shopping_list"].append(step_input.input)
    return StepOutput(content=f"Added {step_input.input}; list: {session_state['shopping_list']}")


def list_is_long(step_input: StepInput, session_state: dict[str, Any]) -> bool:
    return len(session_state["shopping_list"]) >= 2


def announce(step_input: StepInput) -> StepOutput:
    return StepOutput(content="the list is long")


def pick_route(step_input: StepInput, session_state: dict[str, Any]) -> str:
    session_state["routed"] = session_state.get("routed", 0) + 1
    return "shop" if session_state["shopping_list"] else "rest"


def shop(step_input: StepInput) -> StepOutput:
    return StepOutput(content="shopping")


def rest(step_input: StepInput) -> StepOutput:
    return StepOutput(content="resting")


def shopping_workflow() -> Workflow:
    return Workflow(
        name="Shopping",
        steps=[
            Step(name="add", executor=add_item),
            Condition(name="long", evaluator=list_is_long, steps=[Step(name="announce", executor=announce)]),
            Router(
                name="route",
                selector=pick_route,
                choices=[Step(name="shop", executor=shop), Step(name="rest", executor=rest)],
            ),
        ],
        session_state={"shopping_list": []},
    )


def test_executor_evaluator_and_selector_share_the_sessions_state() -> None:
    workflow = shopping_workflow()
    first = workflow.run("milk", session_id="s1")
    assert first.session_state == {"shopping_list": ["milk"], "routed": 1}
    assert first.step_outputs[1].steps == []  # one item: the evaluator said False
    second = workflow.run("eggs", session_id="s1")  # the session kept the list
    assert second.session_state == {"shopping_list": ["milk", "eggs"], "routed": 2}
    assert second.step_outputs[0].content == "Added eggs; list: ['milk', 'eggs']"
    assert second.step_outputs[1].steps[0].content == "the list is long"  # type: ignore[index]
    assert second.content == "shopping"
    # another session starts from the workflow's session_state
    assert workflow.run("tea", session_id="s2").session_state == {"shopping_list": ["tea"], "routed": 1}


def test_loop_end_condition_reads_the_state() -> None:
    def count(step_input: StepInput, session_state: dict[str, Any]) -> StepOutput:
        session_state["rounds"] = session_state.get("rounds", 0) + 1
        return StepOutput(content=session_state["rounds"])

    def enough(outputs: list[StepOutput], session_state: dict[str, Any]) -> bool:
        return bool(session_state["rounds"] >= 3)

    output = Workflow(
        name="w", steps=[Loop(name="again", steps=[count], end_condition=enough, max_iterations=10)]
    ).run("go")
    assert output.session_state == {"rounds": 3}
    assert output.content == 3


def test_it_is_the_same_dict_as_run_context_session_state() -> None:
    seen: list[bool] = []

    def both(step_input: StepInput, run_context: RunContext, session_state: dict[str, Any]) -> str:
        seen.append(session_state is run_context.session_state)
        session_state["by_param"] = True
        run_context.session_state["by_context"] = True
        return "ok"

    output = Workflow(name="w", steps=[both]).run("x")
    assert seen == [True]
    assert output.session_state == {"by_param": True, "by_context": True}


def test_async_and_generator_executors_get_it_too() -> None:
    async def remember(step_input: StepInput, session_state: dict[str, Any]) -> StepOutput:
        await asyncio.sleep(0)
        session_state["async"] = step_input.input
        return StepOutput(content="remembered")

    async def stream(step_input: StepInput, session_state: dict[str, Any]) -> AsyncIterator[str]:
        session_state["streamed"] = True
        yield "a"
        yield "b"

    output = Workflow(name="w", steps=[remember, stream]).run("tea")
    assert output.session_state == {"async": "tea", "streamed": True}
    assert output.content == "ab"


def test_parallel_branches_merge_their_changes() -> None:
    def left(step_input: StepInput, session_state: dict[str, Any]) -> str:
        session_state["left"] = 1
        return "l"

    def right(step_input: StepInput, session_state: dict[str, Any]) -> str:
        session_state["right"] = 2
        return "r"

    output = Workflow(
        name="w",
        steps=[Parallel(Step(name="left", executor=left), Step(name="right", executor=right), name="both")],
        session_state={"kept": 0},
    ).run("x")
    assert output.session_state == {"kept": 0, "left": 1, "right": 2}


def test_a_function_with_only_kwargs_is_not_given_session_state() -> None:
    received: list[list[str]] = []

    def flexible(step_input: StepInput, **kwargs: Any) -> str:
        received.append(sorted(kwargs))
        return "ok"

    Workflow(name="w", steps=[flexible]).run("x")
    assert received == [["run_context"]]  # as before: **kwargs receives run_context only


def test_a_function_step_in_a_timed_out_workflow_gets_it_off_the_loop() -> None:
    def slow(step_input: StepInput, session_state: dict[str, Any]) -> str:  # offloaded: a thread
        session_state["thread"] = True
        return "ok"

    output = Workflow(name="w", steps=[slow], timeout=5).run("x")
    assert output.session_state == {"thread": True}


# -- tools ----------------------------------------------------------------------------------


def add_to_list(session_state: dict[str, Any], item: str) -> str:
    """Add an item to the shopping list."""
    session_state.setdefault("shopping_list", []).append(item)
    return f"The shopping list is now {session_state['shopping_list']}"


def shopping_model(items: list[str]) -> FunctionModel:
    def reply(messages: Any) -> Any:
        if messages[-1].role == "tool":
            return "done"
        return [ToolCall(f"c{i}", "add_to_list", {"item": item}) for i, item in enumerate(items)]

    return FunctionModel(reply)


def test_a_tools_session_state_is_not_in_its_schema() -> None:
    definition = Tool(add_to_list).definition
    assert definition.parameters["properties"] == {"item": {"title": "Item", "type": "string"}}
    assert definition.parameters["required"] == ["item"]


def test_a_tool_changes_the_workflows_state() -> None:
    agent = Agent(name="Shopper", model=shopping_model(["milk", "bread"]), tools=[add_to_list])
    workflow = Workflow(name="w", steps=[Step(name="shop", agent=agent)], session_state={"shopping_list": []})
    output = workflow.run("buy milk and bread", session_id="s")
    assert output.session_state == {"shopping_list": ["milk", "bread"]}
    assert workflow.run("again", session_id="s").session_state == {
        "shopping_list": ["milk", "bread", "milk", "bread"]
    }


def test_a_standalone_agents_tools_share_one_state_per_run() -> None:
    seen: list[int] = []

    def count(session_state: dict[str, Any], item: str) -> str:
        """Count items."""
        session_state["n"] = session_state.get("n", 0) + 1
        seen.append(session_state["n"])
        return "ok"

    def reply(messages: Any) -> Any:
        if messages[-1].role == "tool":
            return (
                "done"
                if len([m for m in messages if m.role == "tool"]) >= 2
                else ToolCall("b", "count", {"item": "b"})
            )
        return ToolCall("a", "count", {"item": "a"})

    agent = Agent(name="Counter", model=FunctionModel(reply), tools=[count])
    assert agent.run("go").content == "done"
    assert agent.run("go").content == "done"
    assert seen == [1, 2, 1, 2]  # the calls of one run share its state; the next run starts fresh


# -- storage: what the parameter writes is stored as what run_context writes ------------------


def test_state_written_through_the_parameter_is_stored_like_run_contexts(tmp_path: Path) -> None:
    when = dt.datetime(2026, 12, 2, 9, 30, tzinfo=dt.UTC)
    value = {"list": ["milk"], "pair": (1, 2), "by_id": {1: "one"}, "when": when}

    def by_param(step_input: StepInput, session_state: dict[str, Any]) -> str:
        session_state.update(value)
        return "written"

    def by_context(step_input: StepInput, run_context: RunContext) -> str:
        run_context.session_state.update(value)
        return "written"

    def read(step_input: StepInput, session_state: dict[str, Any]) -> dict[str, Any]:
        return dict(session_state)

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    Workflow(name="w", steps=[by_param], storage=url).run("x", session_id="param")
    Workflow(name="w", steps=[by_context], storage=url).run("x", session_id="context")
    param = Workflow(name="w", steps=[read], storage=url).run("x", session_id="param").content
    context = Workflow(name="w", steps=[read], storage=url).run("x", session_id="context").content
    assert param == context  # a stored session is JSON (see the storage docs): the same JSON
    assert param["list"] == ["milk"] and param["pair"] == [1, 2]


@pytest.mark.parametrize("name", ["session_state"])
def test_tool_call_of_the_model_cannot_set_session_state(name: str) -> None:
    # a model that sends session_state as an argument does not replace the run's state
    def reply(messages: Any) -> Any:
        if messages[-1].role == "tool":
            return messages[-1].content
        return ToolCall("a", "add_to_list", {"item": "tea", name: {"shopping_list": ["evil"]}})

    agent = Agent(name="Shopper", model=FunctionModel(reply), tools=[add_to_list])
    output = Workflow(name="w", steps=[agent], session_state={"shopping_list": []}).run("x")
    assert output.session_state == {"shopping_list": ["tea"]}


def test_a_selector_with_step_choices_and_session_state() -> None:
    def pick(step_input: StepInput, step_choices: list[Any], session_state: dict[str, Any]) -> Any:
        session_state["choices"] = [c.name for c in step_choices]
        return step_choices[1]

    output = Workflow(
        name="w",
        steps=[
            Router(
                name="r",
                selector=pick,
                choices=[Step(name="shop", executor=shop), Step(name="rest", executor=rest)],
            )
        ],
    ).run("x")
    assert output.content == "resting" and output.session_state == {"choices": ["shop", "rest"]}
