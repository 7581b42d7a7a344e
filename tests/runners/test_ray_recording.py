"""Branches RayRunner ships to its workers are recorded and replayed (issue #15): the agent's
model and tool calls in a worker are stored by the driver, and a replay with the model server
stopped answers them all from the record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from plait.errors import StepError
from tests.durability import shipped
from tests.servers.openai_server import OpenAIServer

pytestmark = pytest.mark.slow


async def test_a_replay_of_a_parallel_run_on_ray_makes_no_live_call(
    ray_runner: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PLAIT_DIE_AFTER", raising=False)
    log = tmp_path / "lookups.log"
    with OpenAIServer() as server:
        server.handler = shipped.handler
        workflow, model = shipped.build(
            f"sqlite:///{tmp_path / 'runs.db'}", server.base_url, ray_runner, log=log
        )
        original = await workflow.arun("items 1 and 2")
        assert original.content["research"] == "Looked up items 1 and 2."
        assert len(server.chat_requests) == 3
    assert log.read_text().split() == ["1", "2"]  # the tool ran in the worker
    storage = await workflow._ready_storage()
    assert storage is not None
    calls = await storage.load_calls(original.run_id)
    assert [(c.step_id, c.kind, c.index) for c in calls] == [
        ("fan/research", "model", 0),
        ("fan/research", "tool", 0),
        ("fan/research", "model", 1),
        ("fan/research", "tool", 1),
        ("fan/research", "model", 2),
    ]
    replayed = await workflow.areplay(original.run_id)  # the server is stopped
    assert dict(replayed.content) == dict(original.content)
    assert replayed.replay_differences == []
    assert log.read_text().split() == ["1", "2"]  # no tool ran again
    await model.aclose()
    await workflow.aclose()


async def test_the_calls_of_a_branch_that_failed_on_ray_are_stored_and_not_made_again(
    ray_runner: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PLAIT_DIE_AFTER", raising=False)
    log = tmp_path / "lookups.log"
    with OpenAIServer() as server:
        server.handler = shipped.handler
        workflow, model = shipped.build_failing(
            f"sqlite:///{tmp_path / 'runs.db'}", server.base_url, ray_runner, tmp_path / "failed", log=log
        )
        with pytest.raises(StepError, match="check failed"):
            await workflow.arun("items 1 and 2", run_id="ray-failing")
        assert len(server.chat_requests) == 3
        storage = await workflow._ready_storage()
        assert storage is not None
        calls = await storage.load_calls("ray-failing")
        assert [c.kind for c in calls] == ["model", "tool", "model", "tool", "model"]
        assert {c.step_id for c in calls} == {"fan/research/ask"}
        output = await workflow.acontinue_run("ray-failing")
        assert output.content["research"] == "checked: Looked up items 1 and 2."
        assert len(server.chat_requests) == 3  # answered from the record
    assert log.read_text().split() == ["1", "2"]  # the tools did not run again
    await model.aclose()
    await workflow.aclose()
