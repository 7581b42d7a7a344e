"""The step cache: what a hit replays, and what decides whether there is one (issue 12, items 7, 8)."""

from __future__ import annotations

from pathlib import Path

from plait import Step, StepInput, Workflow


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
