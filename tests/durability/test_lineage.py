"""A replayed or forked run's lineage (``_workflow_run.run(..., lineage=...)``, which
``replay`` and ``fork`` use) is stored with the run, on its output and in its dict, and a
continued run keeps it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from plait import Approval, Step, StepInput, Workflow, WorkflowRunOutput, _workflow_run


def double(step_input: StepInput) -> int:
    return int(step_input.input) * 2


def test_lineage_is_stored_and_kept_across_a_resume(tmp_path: Path) -> None:
    wf = Workflow(
        name="w",
        steps=[Step(name="double", executor=double), Approval(name="ok", prompt="Go on?")],
        storage=f"sqlite:///{tmp_path / 'runs.db'}",
    )
    lineage = {"forked_from": "r-0", "fork_step": "double"}
    paused = asyncio.run(_workflow_run.run(wf, 21, listeners=(), stream_events=False, lineage=lineage))
    assert paused.status.value == "PAUSED" and paused.lineage == lineage

    async def stored(run_id: str):  # type: ignore[no-untyped-def]
        return await (await wf._ready_storage()).get_run(run_id)

    assert asyncio.run(stored(paused.run_id)).lineage == lineage
    done = wf.continue_run(paused.run_id, approve=True)
    assert done.status.value == "COMPLETED" and done.lineage == lineage
    assert WorkflowRunOutput.from_dict(done.to_dict()).lineage == lineage
    plain = wf.run(1)
    assert plain.lineage is None and asyncio.run(stored(plain.run_id)).lineage is None
