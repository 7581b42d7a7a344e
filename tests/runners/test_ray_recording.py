"""Branches RayRunner ships to its workers are recorded and replayed (issue #15): the agent's
model and tool calls in a worker are stored by the driver, and a replay with the model server
stopped answers them all from the record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from plait.errors import StepError
from tests.durability import shipped, test_replay
from tests.servers.openai_server import OpenAIServer

pytestmark = pytest.mark.slow

backend = test_replay.backend  # the fixture: SQLite, and a PostgreSQL schema / Redis prefix of its own


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


async def test_a_ray_worker_killed_mid_tool_loop_loses_none_of_its_finished_calls(
    ray_runner: Any, backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker wrote each call to the run's storage as it completed (Storage.reopen), so
    the resume answers the model and tool calls made before the SIGKILL from the record."""
    import os
    import signal

    from plait import Agent, Parallel, Step, Workflow
    from plait_openai import OpenAIModel
    from tests.durability.tool_loop import storage_for

    monkeypatch.delenv("PLAIT_DIE_AFTER", raising=False)
    log, marker = str(tmp_path / "lookups.log"), str(tmp_path / "killed")

    def lookup(n: int) -> str:
        """Look up item n."""
        if n == 2 and not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)  # the Ray worker running this branch
        with open(log, "a") as f:
            f.write(f"{n}\n")
        return f"item {n} is {n * n}"

    with OpenAIServer() as server:
        server.handler = shipped.handler
        model = OpenAIModel("gpt-4o-mini", base_url=server.base_url, api_key="sk-test-secret-key")
        agent = Agent(name="Looker", model=model, tools=[lookup], instructions="Look items up.")
        workflow = Workflow(
            name="ray-killed",
            steps=[
                Parallel(
                    Step(name="research", agent=agent), Step(name="tally", executor=shipped.tally), name="fan"
                )
            ],
            storage=(store := storage_for(backend)),
            runner=ray_runner,
        )
        try:
            with pytest.raises(StepError, match="died"):
                await workflow.arun("items 1 and 2", run_id="killed-mid-loop")
            assert len(server.chat_requests) == 2  # the second asked for lookup(2), which killed it
            storage = await workflow._ready_storage()
            assert storage is not None
            calls = await storage.load_calls("killed-mid-loop")
            assert [(c.kind, c.index) for c in calls] == [("model", 0), ("tool", 0), ("model", 1)]

            output = await workflow.acontinue_run("killed-mid-loop")
            assert output.content["research"] == "Looked up items 1 and 2."
            assert len(server.chat_requests) == 3  # only the request after lookup(2) was made again
        finally:
            await model.aclose()
            await workflow.aclose()
            if not isinstance(store, str):  # a storage object is its owner's to close
                await store.close()
    assert Path(log).read_text().split() == ["1", "2"]  # lookup(1) did not run again
