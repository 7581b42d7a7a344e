"""The step cache: what a hit replays, and what decides whether there is one (issue 12, items 7, 8)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from plait import CachePolicy, Step, StepInput, Workflow
from plait.errors import DefinitionError
from plait.events import StepCompletedEvent
from plait.storage import MemoryStorage

ROOT = Path(__file__).resolve().parents[2]


def test_a_cache_hit_replays_the_steps_session_state_changes(tmp_path: Path) -> None:
    calls: list[str] = []

    def bill(step_input: StepInput, run_context) -> str:  # type: ignore[no-untyped-def]
        calls.append(step_input.input)
        state = run_context.session_state
        state["charged"] = state.get("charged", 0) + 2
        state.setdefault("log", []).append("billed")
        state["last"] = (step_input.input, 1)
        state.pop("scratch", None)
        state["usage"] = {**state.get("usage", {}), "tokens": state.get("usage", {}).get("tokens", 0) + 10}
        return f"answer({step_input.input})"

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    workflow = Workflow(name="w", steps=[Step(name="bill", executor=bill, cache=True)], storage=url)
    workflow.run("q", session_id="first", session_state={"charged": 1, "scratch": 0, "usage": {"tokens": 0}})
    again = Workflow(name="w", steps=[Step(name="bill", executor=bill, cache=True)], storage=url)
    out = again.run(
        "q",
        session_id="second",
        session_state={"charged": 5, "log": ["start"], "scratch": 1, "usage": {"tokens": 1, "model": "m"}},
    )
    assert calls == ["q"]  # the second run was a hit
    assert out.content == "answer(q)"
    assert out.session_state == {
        "charged": 7,  # numbers: the step's change is added again
        "log": ["start", "billed"],  # lists: what the step appended is appended again
        "last": ("q", 1),  # other values: set again, typed
        "usage": {"tokens": 11, "model": "m"},  # dicts: the same rules, key by key
    }  # and "scratch", which the step removed, is removed again


def _run_flow(path: Path, url: str) -> str:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{path.parent}"}
    code = (
        "from plait import Step, Workflow\n"
        "import userflow\n"
        f"wf = Workflow(name='w', steps=[Step(name='fmt', executor=userflow.fmt, cache=True)], storage={url!r})\n"
        "print(wf.run('text').content)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_a_changed_function_body_is_not_served_the_old_output(tmp_path: Path) -> None:
    module = tmp_path / "userflow.py"
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    module.write_text("def fmt(step_input):\n    return step_input.input.upper()\n")
    assert _run_flow(module, url) == "TEXT"
    assert _run_flow(module, url) == "TEXT"  # a hit is still a hit in a new process
    module.write_text("def fmt(step_input):\n    return step_input.input.title() + '!'\n")
    assert _run_flow(module, url) == "Text!"
    module.write_text(
        "SUFFIX = '?'\n\ndef fmt(step_input, suffix='!!'):\n    return step_input.input + suffix\n"
    )
    assert _run_flow(module, url) == "text!!"
    module.write_text("def fmt(step_input, suffix='~'):\n    return step_input.input + suffix\n")
    assert _run_flow(module, url) == "text~"  # a changed default is a changed identity


class Formatter:
    def __init__(self, mode: str) -> None:
        self.mode = mode

    def __call__(self, step_input: StepInput) -> str:
        return str(getattr(str(step_input.input), self.mode)())


def test_differently_configured_executor_objects_do_not_share_an_entry() -> None:
    storage = MemoryStorage()

    def run(executor: object) -> object:
        workflow = Workflow(
            name="w", steps=[Step(name="fmt", executor=executor, cache=True)], storage=storage
        )
        return workflow.run("MiXed").content

    assert run(Formatter("upper")) == "MIXED"
    assert run(Formatter("lower")) == "mixed"
    assert run(Formatter("upper")) == "MIXED"


def _closure_step(suffix: str) -> object:
    def step(step_input: StepInput) -> str:
        return f"{step_input.input}{suffix}"

    return step


def test_closure_values_are_part_of_the_identity() -> None:
    storage = MemoryStorage()

    def run(executor: object) -> object:
        workflow = Workflow(name="w", steps=[Step(name="s", executor=executor, cache=True)], storage=storage)
        return workflow.run("x").content

    assert run(_closure_step("-a")) == "x-a"
    assert run(_closure_step("-b")) == "x-b"


class Client:
    """Holds something plait cannot read the configuration of."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def __call__(self, step_input: StepInput) -> str:
        return "fetched"


class IdentifiedClient(Client):
    def cache_identity(self) -> object:
        return "endpoint-v1"


def test_cache_is_refused_where_the_identity_cannot_be_established() -> None:
    with pytest.raises(DefinitionError, match=r"Step 'fetch'.*the executor.lock is a _thread:lock") as info:
        Step(name="fetch", executor=Client(), cache=True)
    assert "CachePolicy(version=...)" in str(info.value) and "cache_identity()" in str(info.value)
    lock = threading.Lock()
    with pytest.raises(DefinitionError, match=r"'lock' \(a closure variable of"):
        Step(name="fetch", executor=lambda si: lock and "x", cache=60)
    # a version, or the object's own identity, makes it cacheable
    storage = MemoryStorage()
    for executor, policy in [(Client(), CachePolicy(version="1")), (IdentifiedClient(), True)]:
        workflow = Workflow(
            name="w", steps=[Step(name="fetch", executor=executor, cache=policy)], storage=storage
        )
        assert workflow.run("x").content == "fetched"
        assert next(
            e for e in workflow.run("x", stream_events=True) if isinstance(e, StepCompletedEvent)
        ).cached


def test_cache_without_storage_warns_at_construction() -> None:
    monkey = pytest.MonkeyPatch()
    monkey.delenv("PLAIT_STORAGE", raising=False)
    try:
        with pytest.warns(UserWarning, match=r"step 'e' has cache= but workflow 'w' has no storage"):
            Workflow(name="w", steps=[Step(name="e", executor=lambda si: 1, cache=True)])
    finally:
        monkey.undo()


def test_an_agents_identity_changes_with_its_tools_code() -> None:
    from plait import Agent
    from plait.testing import EchoModel

    def lookup(city: str) -> str:
        return f"sunny in {city}"

    def changed(city: str) -> str:
        return f"rainy in {city}"

    changed.__name__ = changed.__qualname__ = "lookup"

    def identity(tool: object) -> object:
        return Agent(name="a", model=EchoModel(), tools=[tool]).cache_identity()

    assert identity(lookup) == identity(lookup)
    assert identity(lookup) != identity(changed)
