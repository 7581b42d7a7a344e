"""Issue #14, item 7: Agno's session state accessors on a workflow:
``get_session_state()`` / ``aget_session_state()`` and ``update_session_state(updates,
session_id=None)`` / ``aupdate_session_state`` (atomic against runs committing with storage)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from plait import RunContext, Step, StepInput, Workflow
from plait.errors import DefinitionError


def add_item(step_input: StepInput, run_context: RunContext) -> str:
    items = run_context.session_state.setdefault("items", [])
    items.append(step_input.input)
    return f"{len(items)} items"


def shopping(**options: Any) -> Workflow:
    return Workflow(name="Shopping", steps=[Step(name="add", executor=add_item)], **options)


@pytest.fixture(params=["memory", "sqlite"])
def storage(request: Any, tmp_path: Path) -> str | None:
    return None if request.param == "memory" else f"sqlite:///{tmp_path / 'runs.db'}"


def test_get_session_state_without_an_id_is_the_current_session(storage: str | None) -> None:
    workflow = shopping(storage=storage)
    assert workflow.get_session_state() is None  # no session yet
    output = workflow.run("milk")
    assert workflow.get_session_state() == {"items": ["milk"]}
    assert workflow.get_session_state(output.session_id) == {"items": ["milk"]}
    fixed = shopping(storage=storage, session_id="kitchen")
    fixed.run("eggs")
    assert fixed.get_session_state() == {"items": ["eggs"]}
    assert asyncio.run(fixed.aget_session_state()) == {"items": ["eggs"]}
    workflow.close()
    fixed.close()


def test_update_session_state_merges_keys_and_the_next_run_sees_them(storage: str | None) -> None:
    workflow = shopping(storage=storage, session_id="s1", session_state={"owner": "ada"})
    workflow.run("milk")
    after = workflow.update_session_state({"budget": 20, "owner": "bob"})
    assert after == {"owner": "bob", "items": ["milk"], "budget": 20}
    workflow.run("bread")
    assert workflow.get_session_state() == {"owner": "bob", "items": ["milk", "bread"], "budget": 20}
    # the returned dict is a copy: changing it changes nothing stored
    after["budget"] = 0
    assert workflow.get_session_state()["budget"] == 20
    workflow.close()


def test_update_session_state_of_a_new_session_starts_from_the_initial_state(storage: str | None) -> None:
    workflow = shopping(storage=storage, session_state={"owner": "ada"})
    assert workflow.update_session_state({"budget": 5}, session_id="fresh") == {"owner": "ada", "budget": 5}
    workflow.run("tea", session_id="fresh")
    assert workflow.get_session_state("fresh") == {"owner": "ada", "budget": 5, "items": ["tea"]}
    assert asyncio.run(workflow.aupdate_session_state({"n": 1}, "fresh"))["n"] == 1
    workflow.close()


def test_update_session_state_mistakes() -> None:
    workflow = shopping()
    with pytest.raises(DefinitionError, match="update_session_state: no session: pass session_id="):
        workflow.update_session_state({"a": 1})
    with pytest.raises(DefinitionError, match="expected a dict of updates, got list"):
        workflow.update_session_state([("a", 1)], session_id="s")  # type: ignore[arg-type]


def test_an_update_while_a_run_executes_is_not_lost(storage: str | None) -> None:
    started, release = threading.Event(), threading.Event()

    def slow(step_input: StepInput, run_context: RunContext) -> str:
        run_context.session_state["visits"] = run_context.session_state.get("visits", 0) + 1
        started.set()
        assert release.wait(10)
        return "done"

    workflow = Workflow(name="w", steps=[Step(name="slow", executor=slow)], storage=storage, session_id="s")
    runner = threading.Thread(target=workflow.run, args=("x",))
    runner.start()
    assert started.wait(10)
    # with storage, as another process would: a second workflow object on the same file
    other = (
        workflow
        if storage is None
        else Workflow(name="w", steps=[Step(name="slow", executor=slow)], storage=storage)
    )
    assert other.update_session_state({"note": "from outside"}, session_id="s") == {"note": "from outside"}
    release.set()
    runner.join(10)
    assert workflow.get_session_state() == {"note": "from outside", "visits": 1}
    workflow.close()
    other.close()


def test_concurrent_updates_from_threads_all_land(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    workflows = [shopping(storage=url) for _ in range(8)]

    def update(i: int) -> None:
        for j in range(5):
            workflows[i].update_session_state({f"k{i}-{j}": j}, session_id="shared")

    threads = [threading.Thread(target=update, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    state = workflows[0].get_session_state("shared")
    assert state is not None and len(state) == 40
    for workflow in workflows:
        workflow.close()


def test_updates_from_two_event_loops(storage: str | None) -> None:
    workflow = shopping(session_id="s", storage=storage)
    asyncio.run(workflow.aupdate_session_state({"a": 1}))
    asyncio.run(workflow.aupdate_session_state({"b": 2}))
    asyncio.run(workflow.arun("jam"))
    assert workflow.get_session_state() == {"a": 1, "b": 2, "items": ["jam"]}
    workflow.close()
