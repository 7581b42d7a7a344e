"""Budgets that pause for a person (``Budget(on_exceeded="pause")``), through the real OpenAI SDK
against the local OpenAI-protocol server, in SQLite, PostgreSQL and Redis storage: the run pauses
before the call that would cross the limit (the server never sees it), ``continue_run`` with a
raised budget goes on with what was spent still counted, a rejection fails it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from plait import Agent, Approval, Budget, Parallel, Step, Workflow
from plait.errors import BudgetExceededError, DefinitionError
from plait.retry import RetryPolicy
from tests.servers import openai_server as openai
from tests.servers.openai_server import openai_server

__all__ = ["openai_server"]

FAST = RetryPolicy(max_attempts=2, initial_delay=0.001, max_delay=0.01, jitter=0)


def _model(server: openai.OpenAIServer) -> Any:
    from plait_openai import OpenAIModel

    return OpenAIModel("gpt-4o-mini", base_url=server.base_url, api_key="test", retry=FAST)


def _pipeline(model: Any, storage: str, budget: Budget) -> Workflow:
    steps = [
        Step(name=name, agent=Agent(name=name.title(), model=model)) for name in ("research", "write", "edit")
    ]
    return Workflow(name=f"budgeted-{uuid.uuid4().hex[:8]}", steps=steps, storage=storage, budget=budget)


async def _record(workflow: Workflow, run_id: str) -> Any:
    storage = await workflow._ready_storage()
    assert storage is not None
    return await storage.get_run(run_id)


async def test_a_run_pauses_before_the_call_and_resumes_with_a_raised_budget(
    storage_url: str, openai_server: openai.OpenAIServer
) -> None:
    model = _model(openai_server)
    workflow = _pipeline(model, storage_url, Budget(max_requests=1, on_exceeded="pause"))
    try:
        paused = await workflow.arun("AI")
        assert str(paused.status) == "PAUSED"
        assert len(openai_server.chat_requests) == 1  # the server never saw the call that would exceed
        (request,) = paused.pending or []
        assert (request.step_id, request.kind) == ("write", "confirm")
        assert request.budget is not None
        assert {k: request.budget[k] for k in ("limit", "maximum", "used", "needed")} == {
            "limit": "max_requests",
            "maximum": 1,
            "used": 1,
            "needed": 1,
        }
        assert "max_requests=1, 1 used, the next call needs 1" in request.prompt
        record = await _record(workflow, paused.run_id)
        (meter,) = record.metrics["budget"].values()
        assert meter["used"]["max_requests"] == 1 and meter["left"] == {"max_requests": 0}

        # raised to 2: one more call, then the second pause, at the total carried across the resume
        again = await workflow.acontinue_run(
            paused.run_id, approve=True, budget=Budget(max_requests=2, on_exceeded="pause")
        )
        assert str(again.status) == "PAUSED" and [p.step_id for p in again.pending or []] == ["edit"]
        assert again.pending[0].budget["used"] == 2  # type: ignore[index]
        assert len(openai_server.chat_requests) == 2

        done = await workflow.acontinue_run(
            paused.run_id, approve=True, budget=Budget(max_requests=5, on_exceeded="pause")
        )
        assert str(done.status) == "COMPLETED"
        assert len(openai_server.chat_requests) == 3
        record = await _record(workflow, paused.run_id)
        (meter,) = record.metrics["budget"].values()
        assert meter["used"]["max_requests"] == 3 and meter["raised"] is True
    finally:
        await workflow.aclose()
        await model.aclose()


async def test_a_rejected_budget_pause_fails_the_run(
    storage_url: str, openai_server: openai.OpenAIServer
) -> None:
    model = _model(openai_server)
    workflow = _pipeline(model, storage_url, Budget(max_requests=2, on_exceeded="pause"))
    try:
        paused = await workflow.arun("AI")
        assert [p.step_id for p in paused.pending or []] == ["edit"]
        with pytest.raises(BudgetExceededError) as raised:
            await workflow.acontinue_run(paused.run_id, approve=False)
        error = raised.value
        assert (error.limit, error.maximum, error.used, error.step_path) == ("max_requests", 2, 2, "edit")
        assert "rejected" in str(error)
        assert len(openai_server.chat_requests) == 2
        record = await _record(workflow, paused.run_id)
        assert record.status == "ERROR" and "BudgetExceededError" in record.error
    finally:
        await workflow.aclose()
        await model.aclose()


async def test_an_agent_budget_pauses_inside_its_tool_loop_and_resumes_without_repeating_calls(
    tmp_path: Path, openai_server: openai.OpenAIServer
) -> None:
    def lookup(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    openai_server.enqueue(
        openai.Reply(tool_calls=[openai.ToolCallReply("lookup", {"city": "Oslo"}, id="c1")])
    )
    model = _model(openai_server)
    agent = Agent(
        name="Weather", model=model, tools=[lookup], budget=Budget(max_requests=1, on_exceeded="pause")
    )
    workflow = Workflow(
        name="weather", steps=[Step(name="ask", agent=agent)], storage=f"sqlite:///{tmp_path}/r.db"
    )
    paused = await workflow.arun("Weather in Oslo?")
    assert [(p.step_id, p.budget["budget_of"]) for p in paused.pending or []] == [("ask", "agent 'Weather'")]  # type: ignore[index]
    assert len(openai_server.chat_requests) == 1
    openai_server.enqueue(openai.Reply("It is sunny in Oslo."))
    # max_tool_calls=1 holds: the tool call answered from the record is not counted twice
    done = await workflow.acontinue_run(
        paused.run_id, approve=True, budget=Budget(max_requests=2, max_tool_calls=1)
    )
    assert str(done.status) == "COMPLETED" and done.content == "It is sunny in Oslo."
    # the first call was answered from the run's record, not asked again
    assert len(openai_server.chat_requests) == 2
    await workflow.aclose()
    await model.aclose()


async def test_budget_pauses_in_a_nested_workflow_and_in_parallel_branches(
    tmp_path: Path, openai_server: openai.OpenAIServer
) -> None:
    model = _model(openai_server)
    inner = Workflow(
        name="inner",
        steps=[
            Step(name="i1", agent=Agent(name="I1", model=model)),
            Step(name="i2", agent=Agent(name="I2", model=model)),
        ],
    )
    workflow = Workflow(
        name="nested-budget",
        steps=[
            Step(name="nested", workflow=inner),
            Parallel(
                Step(name="left", agent=Agent(name="L", model=model)),
                Step(name="right", agent=Agent(name="R", model=model)),
                name="fan",
            ),
        ],
        storage=f"sqlite:///{tmp_path}/r.db",
        budget=Budget(max_requests=1, on_exceeded="pause"),
    )
    paused = await workflow.arun("go")
    assert [p.step_id for p in paused.pending or []] == ["nested/i2"]
    assert len(openai_server.chat_requests) == 1
    again = await workflow.acontinue_run(paused.run_id, budget=Budget(max_requests=2, on_exceeded="pause"))
    assert sorted(p.step_id for p in again.pending or []) == ["fan/left", "fan/right"]  # both branches wait
    assert len(openai_server.chat_requests) == 2
    done = await workflow.acontinue_run(paused.run_id, approve=True)  # each paused call goes through once
    assert str(done.status) == "COMPLETED"
    assert len(openai_server.chat_requests) == 4
    await workflow.aclose()
    await model.aclose()


async def test_budget_pause_input_is_checked(tmp_path: Path, openai_server: openai.OpenAIServer) -> None:
    with pytest.raises(DefinitionError, match="on_exceeded must be 'fail' or 'pause', got 'bogus'"):
        Budget(max_requests=1, on_exceeded="bogus")  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="soft=True never stops"):
        Budget(max_requests=1, soft=True, on_exceeded="pause")
    model = _model(openai_server)
    unstored = Workflow(
        name="unstored",
        steps=[Agent(name="A", model=model)],
        budget=Budget(max_requests=1, on_exceeded="pause"),
    )
    with pytest.raises(DefinitionError, match="on_exceeded='pause' needs a workflow run with storage"):
        await unstored.arun("hi")
    assert openai_server.chat_requests == []
    # budget= on a run that waits at an Approval, not on a budget
    approving = Workflow(
        name="approving",
        steps=[Agent(name="A", model=model), Approval(name="ok", prompt="Ship?")],
        storage=f"sqlite:///{tmp_path}/r.db",
    )
    paused = await approving.arun("hi")
    with pytest.raises(DefinitionError, match=r"is not paused on a budget.*waiting at ok"):
        await approving.acontinue_run(paused.run_id, approve=True, budget=Budget(max_requests=3))
    budgeted = _pipeline(model, f"sqlite:///{tmp_path}/r.db", Budget(max_requests=1, on_exceeded="pause"))
    paused = await budgeted.arun("hi")
    with pytest.raises(DefinitionError, match="a raised budget goes with approve=True"):
        await budgeted.acontinue_run(paused.run_id, approve=False, budget=Budget(max_requests=3))
    with pytest.raises(DefinitionError, match="budget must be a Budget"):
        await budgeted.acontinue_run(paused.run_id, approve=True, budget={"max_requests": 3})  # type: ignore[arg-type]
    await approving.aclose()
    await budgeted.aclose()
    await model.aclose()


FLOWS = """
import os
from plait import Agent, Budget, Step, Workflow
from plait.retry import RetryPolicy
from plait_openai import OpenAIModel

model = OpenAIModel("gpt-4o-mini", base_url=os.environ["TEST_OPENAI_URL"], api_key="test",
                    retry=RetryPolicy(max_attempts=2, initial_delay=0.001, max_delay=0.01, jitter=0))
workflow = Workflow(
    name="cli budget",
    steps=[Step(name="research", agent=Agent(name="R", model=model)),
           Step(name="write", agent=Agent(name="W", model=model))],
    budget=Budget(max_requests=1, on_exceeded="pause"),
    store_events=True,
)
"""


def _plait(tmp_path: Path, *args: str, url: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "COLUMNS": "200", "TEST_OPENAI_URL": url}
    environment.pop("PLAIT_STORAGE", None)
    return subprocess.run(
        [sys.executable, "-m", "plait.cli", *args],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_cli_shows_a_budget_pause_and_approves_it_with_a_raised_budget(
    tmp_path: Path, openai_server: openai.OpenAIServer
) -> None:
    (tmp_path / "flows.py").write_text(FLOWS)
    openai_server.enqueue(openai.ErrorReply(503, "overloaded"))  # one retry, recorded in the events
    ran = _plait(tmp_path, "run", "flows.py:workflow", "AI", url=openai_server.base_url)
    assert ran.returncode == 0, ran.stderr
    assert "To raise the budget that paused, add --budget-max-requests N" in ran.stdout  # the pause panel
    run_id = json.loads(_plait(tmp_path, "runs", "list", "--json", url="").stdout)[0]["run_id"]
    assert len(openai_server.chat_requests) == 2  # the failed attempt and its retry; no third call
    shown = _plait(tmp_path, "runs", "show", run_id, url="")
    assert shown.returncode == 0, shown.stderr
    assert (
        "waiting at write: Agent 'W': the budget of workflow 'cli budget' would be exceeded" in shown.stdout
    )
    assert "budget of workflow 'cli budget' (pauses): max_requests 1 of 1 used, 0 left" in shown.stdout
    assert "model retry at research: attempt 1 failed" in shown.stdout
    rejected_input = _plait(
        tmp_path, "runs", "approve", run_id, "--reject", "--budget-max-requests", "3", url=""
    )
    assert rejected_input.returncode == 2 and "goes with approving" in rejected_input.stderr
    approved = _plait(
        tmp_path,
        "runs",
        "approve",
        run_id,
        "--budget-max-requests",
        "2",
        "--json",
        url=openai_server.base_url,
    )
    assert approved.returncode == 0, approved.stderr
    assert json.loads(approved.stdout)["status"] == "COMPLETED"
    assert len(openai_server.chat_requests) == 3
    shown = _plait(tmp_path, "runs", "show", run_id, url="")
    assert (
        "budget of workflow 'cli budget' (pauses, raised by a person): max_requests 2 of 2 used"
        in shown.stdout
    )


CRASHING = """
import json, os, signal, sys
from plait import Agent, Budget, Step, Workflow
from plait_openai import OpenAIModel

model = OpenAIModel("gpt-4o-mini", base_url=os.environ["TEST_OPENAI_URL"], api_key="test")

def crash(step_input):
    if os.environ.get("CRASH"):
        os.kill(os.getpid(), signal.SIGKILL)
    return "survived"

workflow = Workflow(
    name="crashing budget " + sys.argv[1],
    steps=[Step(name="research", agent=Agent(name="R", model=model)),
           Step(name="crash", executor=crash),
           Step(name="write", agent=Agent(name="W", model=model))],
    budget=Budget(max_requests=1, on_exceeded="pause"),
    storage=os.environ["STORAGE"],
)
workflow.lease_ttl = 1.0
if os.environ.get("CRASH"):
    workflow.run("AI", run_id=sys.argv[1])
else:
    output = workflow.continue_run(sys.argv[1], wait=True)
    print(json.dumps({"status": str(output.status), "pending": [p.to_dict() for p in output.pending or []]}))
"""


def test_what_was_spent_before_a_crash_still_counts_after_the_resume(
    storage_url: str, run_id: str, tmp_path: Path, openai_server: openai.OpenAIServer
) -> None:
    script = tmp_path / "crashing.py"
    script.write_text(CRASHING)
    env = {**os.environ, "TEST_OPENAI_URL": openai_server.base_url, "STORAGE": storage_url}
    crashed = subprocess.run(
        [sys.executable, str(script), run_id],
        env={**env, "CRASH": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert crashed.returncode == -9, crashed.stderr  # killed in the step after the first call
    assert len(openai_server.chat_requests) == 1
    resumed = subprocess.run(
        [sys.executable, str(script), run_id], env=env, capture_output=True, text=True, timeout=120
    )
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout)
    # the request made before the crash was saved with its step's checkpoint: no fresh budget
    assert result["status"] == "PAUSED"
    assert [(p["step_id"], p["budget"]["used"]) for p in result["pending"]] == [("write", 1)]
    assert len(openai_server.chat_requests) == 1


async def test_a_budget_pause_is_in_the_events_and_on_the_span(
    tmp_path: Path, openai_server: openai.OpenAIServer
) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from plait.events import BudgetUpdatedEvent, StepPausedEvent, WorkflowPausedEvent

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    model = _model(openai_server)
    workflow = _pipeline(model, f"sqlite:///{tmp_path}/r.db", Budget(max_requests=1, on_exceeded="pause"))
    workflow.tracer_provider = provider
    events = [e async for e in workflow.arun("AI", stream=True, stream_events=True)]
    updated = [e for e in events if isinstance(e, BudgetUpdatedEvent)]
    assert [(e.used, e.left) for e in updated] == [({"max_requests": 1}, {"max_requests": 0})]
    (step_paused,) = [e for e in events if isinstance(e, StepPausedEvent)]
    assert step_paused.step_id == "write" and "max_requests=1, 1 used" in step_paused.prompt
    (paused,) = [e for e in events if isinstance(e, WorkflowPausedEvent)]
    assert paused.pending[0]["budget"]["limit"] == "max_requests"
    marked = [
        dict(event.attributes or {})
        for span in exporter.get_finished_spans()
        for event in span.events
        if event.name == "budget.paused"
    ]
    assert marked == [
        {
            "plait.budget.of": f"workflow {workflow.name!r}",
            "plait.budget.limit": "max_requests",
            "plait.budget.maximum": 1,
            "plait.budget.used": 1,
            "plait.budget.needed": 1,
        }
    ]
    await workflow.aclose()
    await model.aclose()
