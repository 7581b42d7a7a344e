"""Typed content comes back as itself after a resume and from the step cache (issue 12, item 4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from plait import Step, StepInput, Workflow
from plait._codec import decode
from plait.storage import StorageError
from tests.durability import typed_steps

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = str(Path(__file__).with_name("typed_steps.py"))


def _script(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, SCRIPT, *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_typed_outputs_and_state_survive_a_crash_and_a_resume_in_a_new_process(
    storage_url: str, run_id: str
) -> None:
    crashed = _script(storage_url, "run", run_id)
    assert crashed.returncode == -9, crashed.stderr  # SIGKILL inside the last step
    resumed = _script(storage_url, "continue", run_id)
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert result["status"] == "COMPLETED"
    assert json.loads(result["content"]) == {"problems": [], "sum": 3}


@pytest.mark.parametrize("kind", sorted(typed_steps.samples()))
def test_each_type_comes_back_from_a_resume_and_a_cache_hit(kind: str, tmp_path: Path) -> None:
    expected = typed_steps.samples()[kind]
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    fail = {"now": True}
    produced: list[str] = []

    def produce(step_input: StepInput, run_context) -> Any:  # type: ignore[no-untyped-def]
        produced.append(kind)
        run_context.session_state["value"] = typed_steps.samples()[kind]
        return typed_steps.samples()[kind]

    def use(step_input: StepInput, run_context) -> str:  # type: ignore[no-untyped-def]
        if fail["now"]:
            raise RuntimeError("transient")
        content = step_input.previous_step_content
        state = run_context.session_state["value"]
        assert type(content) is type(expected) and content == expected, repr(content)[:200]
        assert type(state) is type(expected) and state == expected, repr(state)[:200]
        return "ok"

    def build() -> Workflow:
        return Workflow(
            name="w",
            steps=[Step(name="produce", executor=produce, cache=True), Step(name="use", executor=use)],
            storage=url,
        )

    with pytest.raises(Exception, match="transient"):
        build().run("in", run_id="r1", session_id="s1")
    fail["now"] = False
    assert build().continue_run("r1").content == "ok"  # the resume: produce is restored, not re-run
    assert produced == [kind]
    assert build().run("in", session_id="s2").content == "ok"  # the cache hit in a fresh session
    assert produced == [kind]


def test_a_class_named_in_stored_data_is_never_imported() -> None:
    data = {"$plait": "model", "cls": "plait_never_imported_module:Evil", "v": {}}
    with pytest.raises(
        StorageError, match="plait_never_imported_module:Evil, which this process may not rebuild"
    ):
        decode(data, "the stored output of step 'x'")
    assert "plait_never_imported_module" not in sys.modules


def test_unstorable_content_is_rejected_when_stored_naming_the_step(tmp_path: Path) -> None:
    class Handle:
        pass

    workflow = Workflow(
        name="w",
        steps=[Step(name="opener", executor=lambda si: Handle())],
        storage=f"sqlite:///{tmp_path / 'r.db'}",
    )
    with pytest.raises(
        StorageError, match=r"the output of step 'opener' cannot be stored as JSON: a .*Handle"
    ):
        workflow.run("x")
