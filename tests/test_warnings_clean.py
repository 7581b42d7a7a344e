"""plait's own code raises no warnings: an application that runs with ``-W error`` (and
``-X dev``, which adds ResourceWarning and asyncio debug checks) is not broken by plait.

The suite itself runs with ``filterwarnings = ["error"]`` but filters a few third-party
warnings (pyproject.toml); this test runs with no filter at all, in a fresh interpreter,
over the core, the plugin registry (every installed plugin is loaded) and SQLite storage.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import asyncio
    import sys

    from plait import Agent, Approval, Condition, Loop, Parallel, Step, StepInput, StepOutput, Workflow
    from plait.plugins import get_registry
    from plait.sinks import JsonlSink
    from plait.testing import FunctionModel

    registry = get_registry()
    assert not registry.errors, registry.errors       # every installed plugin loads cleanly

    def get_weather(city: str) -> str:
        \"\"\"The weather in a city.\"\"\"
        return f"sunny in {city}"

    def reply(messages):
        if messages[-1].role == "tool":
            return "It is " + messages[-1].content
        from plait.models import ToolCall
        return ToolCall("c1", "get_weather", {"city": "Paris"})

    agent = Agent(name="Weather", model=FunctionModel(reply), tools=[get_weather])

    def count(step_input: StepInput, run_context) -> StepOutput:
        run_context.session_state["n"] = run_context.session_state.get("n", 0) + 1
        return StepOutput(content=f"counted {step_input.input}")

    async def shout(step_input: StepInput) -> str:
        await asyncio.sleep(0)
        return str(step_input.previous_step_content).upper()

    workflow = Workflow(
        name="warnings",
        steps=[
            Parallel(Step(name="a", executor=count), Step(name="b", executor=count), name="fan"),
            Condition(name="maybe", evaluator=True, steps=[Step(name="weather", agent=agent)]),
            Loop(name="again", steps=[Step(name="shout", executor=shout)], end_condition=lambda o: True),
            Step(name="cached", executor=shout, cache=60),
            Approval(name="ok", prompt="Go on?"),
        ],
        storage=f"sqlite:///{sys.argv[1]}/runs.db",
        sinks=[JsonlSink(f"{sys.argv[1]}/events.jsonl")],
    )
    paused = workflow.run("topic", session_id="s")
    assert paused.status == "PAUSED", paused.status
    done = workflow.continue_run(paused.run_id, approve=True)
    assert done.status == "COMPLETED", done.status
    events = list(workflow.run("again", session_id="s", stream=True, stream_events=True))
    assert any(e.event == "WorkflowCompleted" or "Pause" in e.event for e in events), [e.event for e in events][-3:]

    async def main():
        out = await workflow.arun("async", session_id="t")
        assert out.status == "PAUSED"
    asyncio.run(main())
    asyncio.run(main())                                 # a second event loop, after the first closed
    workflow.close()
    print("clean")
    """
)


def test_a_plait_application_runs_under_W_error_and_X_dev(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(SCRIPT)
    result = subprocess.run(
        [sys.executable, "-W", "error", "-X", "dev", str(script), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.strip().endswith("clean")
    assert "Warning" not in result.stderr, result.stderr[-4000:]
