"""Session state: isolation and deterministic merging for branches and nested workflows."""

from __future__ import annotations

import copy

import pytest

from plait import Parallel, Step, StepError, StepInput, Workflow
from plait._state import merge_changes
from plait.errors import StateConflictError


def increment(step_input: StepInput, run_context) -> str:  # type: ignore[no-untyped-def]
    run_context.session_state["counter"] += 1
    return "ok"


def test_five_parallel_branches_incrementing_one_counter_give_five() -> None:
    branches = [Step(name=f"b{i}", executor=increment) for i in range(5)]
    workflow = Workflow(name="w", steps=[Parallel(*branches, name="p")], session_state={"counter": 0})
    assert workflow.run("x").session_state == {"counter": 5}


def test_sync_branches_in_threads_lose_no_update_either() -> None:
    def slow_increment(step_input: StepInput, run_context) -> str:  # type: ignore[no-untyped-def]
        value = run_context.session_state["counter"]
        import time

        time.sleep(0.01)  # a read-modify-write race, if branches shared one dict
        run_context.session_state["counter"] = value + 1
        run_context.session_state.setdefault("log", []).append(run_context.step_id)
        return "ok"

    branches = [Step(name=f"b{i}", executor=slow_increment) for i in range(5)]
    workflow = Workflow(
        name="w", steps=[Parallel(*branches, name="p")], session_state={"counter": 0, "log": []}
    )
    state = workflow.run("x").session_state
    assert state == {"counter": 5, "log": ["p/b0", "p/b1", "p/b2", "p/b3", "p/b4"]}


def test_conflicting_writes_fail_naming_the_key() -> None:
    def writer(value: str):  # type: ignore[no-untyped-def]
        def write(step_input: StepInput, run_context) -> str:  # type: ignore[no-untyped-def]
            run_context.session_state["status"] = value
            return value

        return Step(name=value, executor=write)

    workflow = Workflow(name="w", steps=[Parallel(writer("draft"), writer("final"), name="p")])
    with pytest.raises(StepError) as info:
        workflow.run("x")
    cause = info.value.__cause__
    assert isinstance(cause, StateConflictError)
    assert cause.key == "status"
    assert "'draft', 'final'" in str(cause) and "Parallel 'p'" in str(cause)


def test_nested_workflow_gets_a_copy_that_merges_back() -> None:
    seen = {}

    def inner_step(step_input: StepInput, run_context) -> str:  # type: ignore[no-untyped-def]
        seen["inner_sees"] = copy.deepcopy(run_context.session_state)
        run_context.session_state["inner"] = True
        run_context.session_state["shared"]["items"].append("inner")
        return "inner"

    def outer_step(step_input: StepInput, run_context) -> str:  # type: ignore[no-untyped-def]
        seen["outer_after"] = dict(run_context.session_state)
        return "outer"

    inner = Workflow(name="inner", steps=[inner_step])
    workflow = Workflow(name="outer", steps=[inner, outer_step], session_state={"shared": {"items": []}})
    output = workflow.run("x")
    assert seen["inner_sees"] == {"shared": {"items": []}}
    assert output.session_state == {"shared": {"items": ["inner"]}, "inner": True}


def test_merge_rules() -> None:
    base = {"n": 1, "items": [1], "nested": {"a": 1, "b": 1}, "same": "x", "gone": 1}
    branches = [
        ("one", {"n": 2, "items": [1, 2], "nested": {"a": 2, "b": 1}, "same": "y", "gone": 1}),
        ("two", {"n": 11, "items": [1, 3], "nested": {"a": 1, "b": 5}, "same": "y"}),
    ]
    merge_changes(base, branches, where="test")
    assert base == {"n": 12, "items": [1, 2, 3], "nested": {"a": 2, "b": 5}, "same": "y"}


def test_merge_conflict_on_list_rewrite() -> None:
    base = {"items": [1, 2]}
    with pytest.raises(StateConflictError, match="'items'"):
        merge_changes(base, [("a", {"items": [2]}), ("b", {"items": [1, 2, 3]})], where="test")
