"""Issue #14, item 16: Agno's agent run events, ``RunEvent.run_started`` / ``run_completed``.

An agent run streamed with ``stream_events=True`` (on its own, or as a step of a workflow
streamed so) starts with a RunStarted event and ends with RunCompleted (RunError when it
fails); a team's with TeamRunStarted / TeamRunCompleted. The code is Agno's
(cookbook/02_agents/14_advanced/basic_agent_events.py and the workflow run_control
examples) with only the imports and the model changed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from plait import Agent, Parallel, RunEvent, Step, Team, TeamRunEvent, Workflow
from plait.errors import BadRequestError, StepError
from plait.events import (
    RunCompletedEvent,
    RunContentEvent,
    RunErrorEvent,
    RunStartedEvent,
    TeamRunCompletedEvent,
    ToolCallCompletedEvent,
    ToolCallStartedEvent,
)
from plait.models import ToolCall
from plait.testing import FunctionModel


def get_price(symbol: str) -> str:
    """The price of a stock."""
    return f"{symbol}: 190.5"


def finance_model() -> FunctionModel:
    def reply(messages: Any) -> Any:
        if messages[-1].role == "tool":
            return iter(["Apple ", "trades ", "at ", "190.5"])
        return ToolCall("c1", "get_price", {"symbol": "AAPL"})

    return FunctionModel(reply, model="finance")


finance_agent = Agent(id="finance-agent", name="Finance Agent", model=finance_model(), tools=[get_price])


async def run_agent_with_events(prompt: str) -> list[str]:
    # Agno's loop, collecting what it prints
    printed: list[str] = []
    async for run_output_event in finance_agent.arun(prompt, stream=True, stream_events=True):
        if run_output_event.event in [RunEvent.run_started, RunEvent.run_completed]:
            printed.append(f"EVENT: {run_output_event.event}")
        if run_output_event.event in [RunEvent.tool_call_started]:
            printed.append(f"TOOL CALL: {run_output_event.tool_name}")
        if run_output_event.event in [RunEvent.tool_call_completed]:
            printed.append(f"TOOL CALL RESULT: {run_output_event.result}")
        if run_output_event.event in [RunEvent.run_content]:
            printed.append(run_output_event.content)
    return printed


def test_agnos_agent_events_loop() -> None:
    assert asyncio.run(run_agent_with_events("What is the price of Apple stock?")) == [
        "EVENT: RunStarted",
        "TOOL CALL: get_price",
        "TOOL CALL RESULT: AAPL: 190.5",
        "Apple ",
        "trades ",
        "at ",
        "190.5",
        "EVENT: RunCompleted",
    ]


def test_run_event_values_are_agnos() -> None:
    assert [e.value for e in RunEvent] == [
        "RunStarted",
        "RunContent",
        "RunCompleted",
        "RunError",
        "ToolCallStarted",
        "ToolCallCompleted",
    ]
    assert RunEvent.run_started == "RunStarted" and RunStartedEvent().event == RunEvent.run_started
    assert TeamRunEvent.run_started == "TeamRunStarted" and TeamRunEvent.run_completed == "TeamRunCompleted"
    from plait.agent import RunEvent as from_agent  # Agno: from agno.agent import RunEvent
    from plait.team import TeamRunEvent as from_team  # Agno: from agno.team import TeamRunEvent

    assert from_agent is RunEvent and from_team is TeamRunEvent


def test_standalone_events_carry_the_agent_and_its_output() -> None:
    events = list(finance_agent.run("price?", stream=True, stream_events=True))
    started, completed = events[0], events[-1]
    assert isinstance(started, RunStartedEvent) and isinstance(completed, RunCompletedEvent)
    assert started.agent_id == "finance-agent" and started.agent_name == "Finance Agent"
    assert started.model == "function:finance" and started.model_provider == "function"
    assert started.run_id == started.agent_run_id == completed.agent_run_id
    assert completed.content == "Apple trades at 190.5" and completed.content_type == "str"
    assert completed.input_tokens > 0 and completed.output_tokens == 4
    assert completed.to_dict()["event"] == "RunCompleted"
    assert finance_agent.get_last_run_output().run_id == started.agent_run_id  # type: ignore[union-attr]


def test_stream_without_stream_events_has_content_only() -> None:
    events = list(finance_agent.run("price?", stream=True))
    assert events and all(isinstance(e, RunContentEvent) for e in events)


def test_structured_content_is_named_by_its_class() -> None:
    class Forecast(BaseModel):
        city: str
        high: int

    agent = Agent(
        name="Weather", model=FunctionModel(lambda m: '{"city": "Oslo", "high": 3}'), output_schema=Forecast
    )
    completed = list(agent.run("Oslo", stream=True, stream_events=True))[-1]
    assert isinstance(completed, RunCompletedEvent)
    assert completed.content == Forecast(city="Oslo", high=3) and completed.content_type == "Forecast"
    assert completed.to_dict()["content"] == {"city": "Oslo", "high": 3}


def test_a_failing_run_ends_with_run_error() -> None:
    def broken(messages: Any) -> str:
        raise BadRequestError("the prompt is too long", provider="function")

    agent = Agent(name="Broken", model=FunctionModel(broken))
    seen: list[Any] = []
    with pytest.raises(BadRequestError):
        for event in agent.run("x", stream=True, stream_events=True):
            seen.append(event)
    assert [e.event for e in seen] == ["RunStarted", "RunError"]
    assert isinstance(seen[1], RunErrorEvent)
    assert seen[1].error_type == "BadRequestError" and "too long" in seen[1].error


# -- inside a workflow ---------------------------------------------------------------------------


def research_workflow() -> Workflow:
    news_agent = Agent(name="News Agent", model="offline:demo", instructions="You are a news researcher.")
    search_agent = Agent(
        name="Search Agent", model="offline:demo", instructions="You are a search specialist."
    )
    summary_agent = Agent(name="Summary Agent", model="offline:demo", instructions="You are a summarizer.")
    return Workflow(
        name="Parallel Research Workflow",
        steps=[
            Parallel(
                Step(name="News Research", agent=news_agent),
                Step(name="Web Search", agent=search_agent),
                name="Parallel Research",
            ),
            Step(name="Summarize", agent=summary_agent),
        ],
    )


def test_agent_steps_stream_run_started_and_completed() -> None:
    workflow = research_workflow()
    events = list(
        workflow.run(input="Research machine learning developments", stream=True, stream_events=True)
    )
    runs = [e for e in events if e.event in [RunEvent.run_started, RunEvent.run_completed]]
    assert sorted((e.event, e.step_name) for e in runs) == [
        ("RunCompleted", "News Research"),
        ("RunCompleted", "Summarize"),
        ("RunCompleted", "Web Search"),
        ("RunStarted", "News Research"),
        ("RunStarted", "Summarize"),
        ("RunStarted", "Web Search"),
    ]
    output = workflow.get_last_run_output()
    assert output is not None
    for event in runs:  # stamped with the workflow run; agent_run_id is the agent's own run
        assert event.run_id == output.run_id and event.workflow_name == "Parallel Research Workflow"
        assert event.parent_step_id == "Parallel Research" or event.step_name == "Summarize"
    summarize = [e for e in events if e.step_name == "Summarize" and e.event != "RunContent"]
    assert [e.event for e in summarize] == ["StepStarted", "RunStarted", "RunCompleted", "StepCompleted"]
    completed = next(e for e in runs if isinstance(e, RunCompletedEvent) and e.step_name == "Summarize")
    assert completed.content == output.content


def test_a_workflow_stream_without_stream_events_leaves_them_out() -> None:
    events = list(research_workflow().run(input="ml", stream=True))
    assert not [e for e in events if isinstance(e, (RunStartedEvent, RunCompletedEvent))]
    assert any(isinstance(e, RunContentEvent) for e in events)


def test_a_workflow_without_listeners_builds_no_run_events() -> None:
    built: list[Any] = []
    original = RunStartedEvent.__init__

    def spy(self: Any, **fields: Any) -> None:
        built.append(fields)
        original(self, **fields)

    RunStartedEvent.__init__ = spy  # type: ignore[method-assign]
    try:
        research_workflow().run("ml")
        list(research_workflow().run("ml", stream=True))
    finally:
        RunStartedEvent.__init__ = original  # type: ignore[method-assign]
    assert built == []


def test_stored_events_include_agent_runs(tmp_path: Path) -> None:
    agent = Agent(name="Writer", model="offline:demo", instructions="Write.")
    workflow = Workflow(
        name="stored", steps=[agent], storage=f"sqlite:///{tmp_path / 'runs.db'}", store_events=True
    )
    output = workflow.run("tea")

    async def load() -> list[dict[str, Any]]:
        storage = await workflow._ready_storage()
        return await storage.load_events(output.run_id)

    names = [e["event"] for e in asyncio.run(load())]
    assert names.index("RunStarted") < names.index("RunCompleted") < names.index("WorkflowCompleted")


def test_team_runs_have_team_events_and_member_runs_theirs() -> None:
    def leader(messages: Any) -> str:
        return '{"member": "Analyst"}'

    analyst = Agent(name="Analyst", model=FunctionModel(lambda m: "analysis"))
    team = Team(name="Desk", members=[analyst], model=FunctionModel(leader), mode="route")
    events = list(
        Workflow(name="w", steps=[Step(name="ask", team=team)]).run("q", stream=True, stream_events=True)
    )
    own = [(e.event, getattr(e, "team_name", None) or getattr(e, "agent_name", None)) for e in events]
    own = [
        pair
        for pair in own
        if pair[0] in ("TeamRunStarted", "TeamRunCompleted", "RunStarted", "RunCompleted")
    ]
    # the leader is the team's own model call: no RunStarted of its own
    assert own == [
        ("TeamRunStarted", "Desk"),
        ("RunStarted", "Analyst"),
        ("RunCompleted", "Analyst"),
        ("TeamRunCompleted", "Desk"),
    ]
    completed = next(e for e in events if isinstance(e, TeamRunCompletedEvent))
    assert completed.content == "analysis" and completed.team_run_id


def test_agent_events_inside_an_executor_function_step() -> None:
    agent = Agent(name="Helper", model=FunctionModel(lambda m: "help"))

    def step(step_input: Any) -> str:
        return str(agent.run(step_input.input).content)

    events = list(Workflow(name="w", steps=[step]).run("x", stream=True, stream_events=True))
    names = [(e.event, e.step_name) for e in events if isinstance(e, (RunStartedEvent, RunCompletedEvent))]
    assert names == [("RunStarted", "step"), ("RunCompleted", "step")]


def test_a_failing_agent_step_streams_run_error() -> None:
    def broken(messages: Any) -> str:
        raise BadRequestError("refused", provider="function")

    workflow = Workflow(
        name="w", steps=[Step(name="ask", agent=Agent(name="B", model=FunctionModel(broken)))]
    )
    seen: list[str] = []
    with pytest.raises(StepError):
        for event in workflow.run("x", stream=True, stream_events=True):
            seen.append(event.event)
    assert seen.index("RunStarted") < seen.index("RunError") < seen.index("StepError")


def test_events_are_emitted_per_run_across_event_loops() -> None:
    async def count() -> int:
        kinds = (RunStartedEvent, RunCompletedEvent, ToolCallStartedEvent, ToolCallCompletedEvent)
        return len(
            [
                e
                async for e in finance_agent.arun("p", stream=True, stream_events=True)
                if isinstance(e, kinds)
            ]
        )

    assert asyncio.run(count()) == 4
    assert asyncio.run(count()) == 4
