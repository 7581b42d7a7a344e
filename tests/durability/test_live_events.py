"""A stored run's events are written as it goes (with its checkpoints, at most every
EVENT_INTERVAL seconds), so another process (plait serve, plait runs show) follows a run it
does not execute before the run ends; nothing is written twice and nothing is lost."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from plait import RunStatus, Step, StepInput, StepOutput, Workflow
from plait.storage import SqliteDb


async def slow(step_input: StepInput) -> StepOutput:
    await asyncio.sleep(1.5)
    return StepOutput(content="slow done")


async def test_another_reader_sees_the_events_of_a_running_run(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    steps = [Step(name=f"quick{i}", executor=lambda step_input, i=i: f"quick {i}") for i in range(3)]
    workflow = Workflow(
        name="live", steps=[*steps, Step(name="slow", executor=slow)], storage=url, store_events=True
    )
    reader = SqliteDb(str(tmp_path / "runs.db"))
    await reader.setup()
    handle = await workflow.astart("x", run_id="live-run")
    try:
        seen: list[dict] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            record = await reader.get_run("live-run")
            seen = await reader.load_events("live-run")
            if any(e.get("event") == "StepCompleted" and e.get("step_name") == "quick2" for e in seen):
                break
            await asyncio.sleep(0.05)
        assert record is not None and record.status == RunStatus.RUNNING.value  # before it ended
        assert [e["step_name"] for e in seen if e.get("event") == "StepCompleted"][:3] == [
            "quick0",
            "quick1",
            "quick2",
        ]
        output = await handle.wait(30)
        assert output.status == RunStatus.COMPLETED
        events = await reader.load_events("live-run")
        names = [e["event"] for e in events]
        assert names[0] == "WorkflowStarted" and names[-1] == "WorkflowCompleted"
        completed = [e["step_name"] for e in events if e["event"] == "StepCompleted"]
        assert completed == ["quick0", "quick1", "quick2", "slow"]  # each once, in order
    finally:
        await reader.close()
        await workflow.aclose()
