"""Issue #14, item 6: ``run(..., user_id=...)`` as in Agno: in RunContext, on the output,
stored with the run (every backend) and filterable when runs are listed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from plait import RunContext, Step, StepInput, Workflow
from plait.errors import DefinitionError
from plait.storage import MemoryStorage, Storage
from tests.storage.conftest import BACKENDS


def test_user_id_reaches_run_context_and_the_output() -> None:
    seen: list[Any] = []

    def whoami(step_input: StepInput, run_context: RunContext) -> str:
        seen.append(run_context.user_id)
        return f"hello {run_context.user_id}"

    inner = Workflow(name="inner", steps=[Step(name="inner_who", executor=whoami)])
    workflow = Workflow(name="w", steps=[Step(name="who", executor=whoami), inner])
    output = workflow.run("x", user_id="ada@example.com")
    assert output.content == "hello ada@example.com" and output.user_id == "ada@example.com"
    assert seen == ["ada@example.com", "ada@example.com"]  # a nested workflow's step too
    assert asyncio.run(workflow.arun("x", user_id="bob")).user_id == "bob"
    assert workflow.run("x").user_id is None


def test_user_id_and_metadata_survive_to_dict_and_from_dict() -> None:
    import datetime as dt

    from plait import WorkflowRunOutput

    workflow = Workflow(name="w", steps=[lambda si: "ok"], metadata={"at": dt.date(2026, 1, 2)})
    output = workflow.run("x", user_id="ada", metadata={"pair": (1, 2)})
    loaded = WorkflowRunOutput.from_dict(json.loads(json.dumps(output.to_dict())))
    assert loaded.user_id == "ada" and loaded.metadata == {"pair": (1, 2), "at": dt.date(2026, 1, 2)}
    assert loaded == output


def test_workflow_user_id_is_the_default() -> None:
    workflow = Workflow(name="w", steps=[lambda si: "ok"], user_id="team-bot")
    assert workflow.run("x").user_id == "team-bot"
    assert workflow.run("x", user_id="ada").user_id == "ada"
    with pytest.raises(DefinitionError, match="user_id must be a str, got 42"):
        workflow.run("x", user_id=42)  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="user_id must be a str"):
        Workflow(name="w", steps=[lambda si: "ok"], user_id=7)  # type: ignore[arg-type]


@pytest.fixture(params=sorted(BACKENDS))
async def backend(request: Any, tmp_path: Path) -> Any:
    storage: Storage = BACKENDS[request.param](tmp_path)
    await storage.setup()
    yield storage
    drop = getattr(storage, "drop", None)  # PostgreSQL and Redis: their test-only cleanup
    if drop is not None:
        await drop()
    await storage.close()


async def test_user_id_is_stored_filtered_and_kept_by_continue_run(backend: Storage) -> None:
    attempts = {"n": 0}
    seen: list[Any] = []

    def flaky(step_input: StepInput, run_context: RunContext) -> str:
        attempts["n"] += 1
        seen.append(run_context.user_id)
        if attempts["n"] == 1:
            raise RuntimeError("down")
        return "ok"

    workflow = Workflow(name="users", steps=[Step(name="flaky", executor=flaky)], storage=backend)
    with pytest.raises(Exception, match="down"):
        await workflow.arun("x", user_id="ada", run_id="u-ada")
    await workflow.arun("y", user_id="bob", run_id="u-bob")
    await workflow.arun("z", run_id="u-none")
    stored = await backend.get_run("u-ada")
    assert stored is not None and stored.user_id == "ada" and stored.status == "ERROR"
    assert [r.run_id for r in await backend.list_runs(user_id="ada")] == ["u-ada"]
    assert [r.run_id for r in await backend.list_runs(user_id="bob", workflow_id="users")] == ["u-bob"]
    output = await workflow.acontinue_run("u-ada")
    assert output.user_id == "ada" and seen[-1] == "ada"
    resumed = await backend.get_run("u-ada")
    assert resumed is not None and resumed.user_id == "ada" and resumed.status == "COMPLETED"
    assert [r.run_id for r in await backend.list_runs(user_id="ada", status="COMPLETED")] == ["u-ada"]


def test_an_old_run_without_user_id_reads_as_none() -> None:
    from plait.storage import RunRecord

    old = (
        '{"run_id": "r", "workflow_id": "w", "workflow_name": "w", "session_id": "s", "status": "completed"}'
    )
    record = RunRecord.model_validate_json(old)
    assert record.user_id is None and record.metadata is None

    storage = MemoryStorage()
    asyncio.run(storage.save_run(record))
    assert asyncio.run(storage.list_runs(user_id="anyone")) == []
