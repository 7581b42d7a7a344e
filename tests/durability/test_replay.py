"""Recording at the provider boundary, resuming inside a step and replay (issue #15, items 1-3),
through the real OpenAI SDK against the local OpenAI-protocol server, on SQLite, PostgreSQL and
Redis. Each test uses a PostgreSQL schema or Redis prefix of its own."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plait import Agent, Parallel, ReplayDivergenceError, Step, StepInput, Workflow
from plait._record_store import INLINE, rebuild_request
from plait.storage import Storage
from tests.durability.tool_loop import storage_for
from tests.servers.openai_server import OpenAIServer, Reply, ToolCallReply
from tests.services import require_package, require_service

SCRIPT = Path(__file__).with_name("tool_loop.py")
ROOT = Path(__file__).resolve().parents[2]
SECRET = "sk-test-secret-key"


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A storage spec for tool_loop.py (and :func:`storage_for`): a schema or prefix of this test's."""
    tag = f"plait_tt_{uuid.uuid4().hex[:10]}"
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'runs.db'}"
        return
    if request.param == "postgres":
        require_service("postgresql")
        require_package("plait_postgres", "plait-postgres")
        spec = f"postgres:{tag}"
    else:
        require_service("redis")
        require_package("plait_redis", "plait-redis")
        spec = f"redis:{tag}"
    yield spec
    storage = storage_for(spec)

    async def drop() -> None:
        await storage.drop()
        await storage.close()

    asyncio.run(drop())


def loop_handler(body: dict[str, Any]) -> Reply | str:
    """Five rounds of one tool call each, then the answer."""
    done = sum(1 for m in body["messages"] if m["role"] == "tool")
    if done < 5:
        return Reply(tool_calls=[ToolCallReply("lookup", {"n": done + 1})])
    return "Looked up items 1 to 5."


# -- resuming inside a step ----------------------------------------------------------------


def test_sigkill_in_the_middle_of_a_tool_loop_resumes_from_the_record(backend: str, tmp_path: Path) -> None:
    log = tmp_path / "effects.log"
    run_id = f"loop-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PLAIT_TEST_LOG": str(log), "PYTHONPATH": str(ROOT), "PLAIT_BLOCK_AT": "3"}
    with OpenAIServer() as server:
        server.handler = loop_handler
        process = subprocess.Popen(
            [sys.executable, str(SCRIPT), backend, server.base_url, "run", run_id],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        marker = Path(f"{log}.blocked")
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the third tool call never started"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
        assert process.returncode == -signal.SIGKILL
        # three model calls made (each asked for one tool), two tools completed, the third hung
        assert len(server.chat_requests) == 3
        assert log.read_text().split() == ["1", "2"]

        env.pop("PLAIT_BLOCK_AT")
        result = subprocess.run(
            [sys.executable, str(SCRIPT), backend, server.base_url, "resume", run_id],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        output = json.loads(result.stdout.strip().splitlines()[-1])
        assert output == {"status": "COMPLETED", "content": "Looked up items 1 to 5."}
        requests = server.chat_requests
    # the completed rounds were answered from the record: the resumed process asked only for
    # rounds 4, 5 and the answer (each request carries the tool results so far)
    assert len(requests) == 6
    assert [sum(m["role"] == "tool" for m in r["messages"]) for r in requests] == [0, 1, 2, 3, 4, 5]
    # tools 1 and 2 were not called again; 3 had not completed (nothing recorded), so it ran again
    assert log.read_text().split() == ["1", "2", "3", "4", "5"]


# -- replay ---------------------------------------------------------------------------------


def shared_handler(body: dict[str, Any]) -> Reply | str:
    """A planner that calls a tool once, everyone else echoes."""
    system = next((m["content"] for m in body["messages"] if m["role"] == "system"), "")
    tools_done = sum(1 for m in body["messages"] if m["role"] == "tool")
    if "Plan" in system and tools_done == 0:
        return Reply(tool_calls=[ToolCallReply("lookup", {"n": 4})])
    last = body["messages"][-1]
    return f"[{system[:12]}] {last['content']}"


def research_workflow(
    spec: str, base_url: str, effects: list[str], *, planner_prompt: str = "Plan it."
) -> tuple[Workflow, list[Any]]:
    """Nested agents, a tool and a Parallel; with the models to close (in the test's loop)."""
    from plait_openai import OpenAIModel

    models: list[Any] = []

    def model() -> Any:
        models.append(OpenAIModel("gpt-4o-mini", base_url=base_url, api_key=SECRET))
        return models[-1]

    def lookup(n: int) -> str:
        effects.append(f"lookup {n}")
        return f"item {n} is {n * n}"

    def tally(step_input: StepInput) -> str:
        effects.append("tally")
        return f"tally of {step_input.previous_step_content}"

    planner = Agent(name="Planner", model=model(), tools=[lookup], instructions=planner_prompt)
    researcher = Agent(name="Researcher", model=model(), instructions="Research it.")
    writer = Agent(name="Writer", model=model(), instructions="Write it.")
    inner = Workflow(name="inner", steps=[Step(name="write", agent=writer)])
    workflow = Workflow(
        name="research",
        steps=[
            Step(name="plan", agent=planner),
            Parallel(Step(name="research", agent=researcher), Step(name="tally", executor=tally), name="fan"),
            inner,
        ],
        storage=storage_for(spec),
    )
    return workflow, models


async def close(workflow: Workflow, models: list[Any]) -> None:
    for model in models:
        await model.aclose()
    storage = workflow.storage
    if isinstance(storage, Storage):
        await storage.close()
    else:
        await workflow.aclose()


async def test_replay_makes_no_request_and_gives_the_same_outputs(backend: str) -> None:
    effects: list[str] = []
    with OpenAIServer() as server:
        server.handler = shared_handler
        workflow, models = research_workflow(backend, server.base_url, effects)
        original = await workflow.arun("the tides")
        assert len(server.chat_requests) == 4  # planner twice (a tool round), researcher, writer
    # the server is stopped: a live call could not even connect
    effects.clear()
    replayed = await workflow.areplay(original.run_id)
    assert replayed.run_id != original.run_id
    assert replayed.lineage == {"replay_of": original.run_id}
    assert replayed.content == original.content
    assert [o.content for o in replayed.step_outputs] == [o.content for o in original.step_outputs]
    assert replayed.metrics.input_tokens == original.metrics.input_tokens
    assert effects == ["tally"]  # the function step ran again, the tool was answered from the record
    assert replayed.replay_differences == []

    storage = await workflow._ready_storage()
    assert storage is not None
    record = await storage.get_run(replayed.run_id)
    assert record is not None and record.lineage == {"replay_of": original.run_id}
    calls = await storage.load_calls(original.run_id)
    assert sorted((c.step_id, c.kind) for c in calls) == [
        ("fan/research", "model"),
        ("inner/write", "model"),
        ("plan", "model"),
        ("plan", "model"),
        ("plan", "tool"),
    ]
    # a replay is a recorded run of its own: it can be replayed in turn
    again = await workflow.areplay(replayed.run_id)
    assert again.content == original.content
    await close(workflow, models)


async def test_replay_of_changed_code_stops_naming_the_step_and_the_change(backend: str) -> None:
    effects: list[str] = []
    with OpenAIServer() as server:
        server.handler = shared_handler
        workflow, models = research_workflow(backend, server.base_url, effects)
        original = await workflow.arun("the tides")
        changed, more = research_workflow(backend, server.base_url, effects, planner_prompt="Plan it twice.")
        with pytest.raises(ReplayDivergenceError) as caught:
            await changed.areplay(original.run_id)
        assert len(server.chat_requests) == 4  # nothing more was sent
        error = caught.value
        assert error.step_id == "plan"
        assert "step 'plan'" in str(error)
        assert '-      "content": "Plan it.",' in str(error)
        assert '+      "content": "Plan it twice.",' in str(error)
        # live=True sends what the record does not have to the model and replays the rest: the
        # planner's two requests changed, and its new answer changed the later agents' inputs
        effects.clear()
        output = await changed.areplay(original.run_id, live=True)
        assert len(server.chat_requests) == 8
        assert effects == ["tally"]  # the tool's call (same arguments) was still answered from the record
        assert output.lineage == {"replay_of": original.run_id}
        assert output.content != original.content
        differences = {d["step_id"]: d for d in output.replay_differences or []}
        assert set(differences) == {"plan", "fan/research", "fan/tally", "fan", "inner/write", "inner"}
        assert differences["fan/tally"]["original"] == "tally of [Plan it.] item 4 is 16"
        assert differences["fan/tally"]["replay"] == "tally of [Plan it twic] item 4 is 16"
    await close(workflow, models)
    await close(changed, more)


async def test_no_api_key_is_stored_and_identical_payloads_are_stored_once(backend: str) -> None:
    effects: list[str] = []
    with OpenAIServer() as server:
        server.handler = shared_handler
        workflow, models = research_workflow(backend, server.base_url, effects)
        first = await workflow.arun("the tides")
        second = await workflow.arun("the tides")
    storage = await workflow._ready_storage()
    assert storage is not None
    calls_a = await storage.load_calls(first.run_id)
    calls_b = await storage.load_calls(second.run_id)
    assert len(calls_a) == len(calls_b) == 5
    hashes = sorted({h for c in calls_a + calls_b for h in (c.request, c.response)})
    stored = await storage.load_payloads(hashes)
    # each payload once: stored apart, or (short, and not a model request) in its call's record
    inline = {h: text for c in calls_a + calls_b for h, text in c.inline.items()}
    assert set(stored) | set(inline) == set(hashes) and not set(stored) & set(inline)
    assert all(len(text) < INLINE for text in inline.values())
    assert all(c.request in stored for c in calls_a + calls_b if c.kind == "model")
    payloads = {**stored, **inline}
    # the same requests have the same fingerprints: the planner's second request carries the
    # server's new tool-call id, which the fingerprint leaves out and the stored request keeps
    assert [c.fingerprint for c in calls_a] == [c.fingerprint for c in calls_b]
    second_a, second_b = (
        next(c for c in calls if c.step_id == "plan" and c.index == 1) for calls in (calls_a, calls_b)
    )
    assert second_a.request != second_b.request  # stored as sent: the ids differ
    parsed = {h: json.loads(text) for h, text in payloads.items()}
    ids = [
        rebuild_request(c.request, parsed, {})["messages"][-1]["tool_call_id"] for c in (second_a, second_b)
    ]
    assert ids[0] != ids[1] and all(ids)
    assert len(hashes) < 4 * 5
    assert all(SECRET not in text for text in payloads.values())
    request = json.loads(payloads[calls_a[0].request])
    assert request["model"] == "openai:gpt-4o-mini"
    assert {"messages", "settings", "tools", "output_schema"} <= set(request)
    await close(workflow, models)


async def test_fork_with_replay_answers_the_calls_that_still_match(backend: str) -> None:
    effects: list[str] = []
    with OpenAIServer() as server:
        server.handler = shared_handler
        workflow, models = research_workflow(backend, server.base_url, effects)
        original = await workflow.arun("the tides")
        assert len(server.chat_requests) == 4
        effects.clear()
        same = await workflow.afork(original.run_id, at="fan/research", replay=True)
        assert len(server.chat_requests) == 4  # nothing changed: every call from the record
        assert same.content == original.content and effects == []  # tally restored, no tool call
        assert same.lineage == {"forked_from": original.run_id, "fork_step": "fan/research"}
        # a new input for the planner: its two requests differ and go live (a divergence is
        # expected, not an error); the tool call and the later agents' requests still match
        changed = await workflow.afork(original.run_id, at="plan", input="the moon", replay=True)
        requests = server.chat_requests[4:]
        assert len(requests) == 2
        assert all("the moon" in json.dumps(r["messages"]) for r in requests)
        assert effects == ["tally"]  # the function step ran; lookup(4) was answered from the record
        assert changed.content == original.content
        storage = await workflow._ready_storage()
        assert storage is not None
        recorded = await storage.load_calls(changed.run_id)  # the fork's own record, answered calls too
        assert next((c.step_id, c.kind) for c in recorded) == ("plan", "fork")  # the change, stored first
        assert sorted((c.step_id, c.kind) for c in recorded[1:]) == sorted(
            (c.step_id, c.kind) for c in await storage.load_calls(original.run_id)
        )
    await close(workflow, models)


async def test_record_false_records_nothing(backend: str) -> None:
    from plait_openai import OpenAIModel

    with OpenAIServer() as server:
        models = [OpenAIModel("gpt-4o-mini", base_url=server.base_url, api_key="k") for _ in range(2)]
        agent = Agent(name="A", model=models[0])
        quiet = Agent(name="Q", model=models[1], record=False)
        storage = storage_for(backend)
        off = Workflow(name="off", steps=[Step(name="a", agent=agent)], storage=storage, record=False)
        out_off = await off.arun("x")
        on = Workflow(
            name="on", steps=[Step(name="a", agent=agent), Step(name="q", agent=quiet)], storage=storage
        )
        out_on = await on.arun("x")
        ready = await on._ready_storage()
        assert ready is not None
        assert await ready.load_calls(out_off.run_id) == []
        assert [c.step_id for c in await ready.load_calls(out_on.run_id)] == ["a"]
        with pytest.raises(ReplayDivergenceError, match="step 'q'"):
            await on.areplay(out_on.run_id)  # the unrecorded agent's call has nothing to answer it
        for model in models:
            await model.aclose()
    await off.aclose()
    await on.aclose()
    if isinstance(storage, Storage):
        await storage.close()
