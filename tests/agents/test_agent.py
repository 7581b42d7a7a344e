"""Agents on the model protocol, with FunctionModel: messages, tools, structured output, streaming."""

from __future__ import annotations

import asyncio
import threading

import pytest
from pydantic import BaseModel

from plait import Agent, Parallel, PlaitError, Step, StepInput, Workflow
from plait.errors import DefinitionError, RateLimitError
from plait.events import ModelRetryEvent, RunContentEvent, ToolCallCompletedEvent, ToolCallStartedEvent
from plait.models import Message, ModelRequest, ToolCall
from plait.retry import RetryPolicy
from plait.testing import FunctionModel


def test_instructions_arrive_as_system_messages_and_input_last() -> None:
    seen: list[list[tuple[str, str | None]]] = []

    def reply(messages: list[Message]) -> str:
        seen.append([(m.role, m.content) for m in messages])
        return "ok"

    agent = Agent(
        name="a", model=FunctionModel(reply), instructions=["Be brief.", "Cite sources."], role="analyst"
    )
    output = agent.run("What is plait?")
    assert output.content == "ok"
    assert seen == [
        [
            ("system", "Your role: analyst"),
            ("system", "Be brief."),
            ("system", "Cite sources."),
            ("user", "What is plait?"),
        ]
    ]
    assert output.usage.input_tokens == 3 + 2 + 2 + 3 and output.usage.output_tokens == 1
    assert agent.get_last_run_output() is output


def test_parallel_contents_arrive_as_one_message_with_a_section_per_branch() -> None:
    seen: list[str | None] = []

    def reply(messages: list[Message]) -> str:
        seen.append(messages[-1].content)
        return "synthesis"

    synthesizer = Agent(name="s", model=FunctionModel(reply), instructions="Combine.")
    workflow = Workflow(
        name="w",
        steps=[Parallel(lambda si: "one", Step(name="b", executor=lambda si: "two"), name="p"), synthesizer],
    )
    workflow.run("x")
    # Agno's aggregated text of a Parallel (issue #14, item 12)
    assert seen == [
        "## Parallel Execution Results\n\n### ✅ SUCCESS: <lambda>\none\n\n### ✅ SUCCESS: b\ntwo"
    ]


def test_tool_loop_with_sync_and_async_tools() -> None:
    calls: list[str] = []

    def get_weather(city: str, unit: str = "C") -> str:
        """Current weather in a city."""
        calls.append(f"weather:{city}:{unit}:{threading.current_thread().name}")
        return f"21{unit} in {city}"

    async def get_time(city: str) -> str:
        calls.append(f"time:{city}")
        return "12:00"

    def model(messages: list[Message], request: ModelRequest):  # type: ignore[no-untyped-def]
        assert [t.name for t in request.tools] == ["get_weather", "get_time"]
        assert request.tools[0].description == "Current weather in a city."
        assert request.tools[0].parameters["required"] == ["city"]
        if messages[-1].role == "user":
            return [
                ToolCall("c1", "get_weather", {"city": "Paris"}),
                ToolCall("c2", "get_time", {"city": "Paris"}),
            ]
        results = {m.tool_call_id: m.content for m in messages if m.role == "tool"}
        return f"It is {results['c2']} and {results['c1']}."

    agent = Agent(
        name="a", model=FunctionModel(model), instructions="Use tools.", tools=[get_weather, get_time]
    )
    events = list(agent.run("weather?", stream=True, stream_events=True))
    assert agent.get_last_run_output().content == "It is 12:00 and 21C in Paris."  # type: ignore[union-attr]
    assert sorted(c.split(":")[0] for c in calls) == ["time", "weather"]
    weather = next(c for c in calls if c.startswith("weather"))
    assert not weather.endswith("MainThread")  # sync tools run off the event loop
    started = [e for e in events if isinstance(e, ToolCallStartedEvent)]
    done = [e for e in events if isinstance(e, ToolCallCompletedEvent)]
    assert [(e.tool_name, e.arguments) for e in started] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {"city": "Paris"}),
    ]
    assert sorted(e.result for e in done) == ["12:00", "21C in Paris"]  # the two tools ran concurrently


def test_tool_errors_go_back_to_the_model_and_invalid_arguments_too() -> None:
    def divide(a: int, b: int) -> float:
        return a / b

    def model(messages: list[Message]):  # type: ignore[no-untyped-def]
        tool_messages = [m for m in messages if m.role == "tool"]
        if len(tool_messages) == 0:
            return ToolCall("1", "divide", {"a": 1, "b": 0})
        if len(tool_messages) == 1:
            return ToolCall("2", "divide", {"a": "x", "b": 1})
        return " | ".join(m.content or "" for m in tool_messages)

    output = Agent(name="a", model=FunctionModel(model), tools=[divide]).run("go")
    first, second = output.content.split(" | ")
    assert first == "Error: ZeroDivisionError: division by zero"
    assert second.startswith("Error: ValidationError") and "a" in second


def test_tool_round_limit() -> None:
    model = FunctionModel(lambda messages: ToolCall("x", "noop", {}))
    agent = Agent(name="looper", model=model, tools=[lambda: "again"], max_tool_rounds=3)
    agent.tools[0].name = "noop"
    agent._tools = {"noop": agent.tools[0]}
    with pytest.raises(PlaitError, match="still calling tools after max_tool_rounds=3"):
        agent.run("x")


class Review(BaseModel):
    score: int
    verdict: str


def test_structured_output_validated_with_one_repair_round() -> None:
    replies = iter(['```json\n{"score": "high"}\n```', '{"score": 9, "verdict": "ship it"}'])
    seen: list[str] = []

    def model(messages: list[Message]) -> str:
        seen.append(messages[-1].content or "")
        return next(replies)

    agent = Agent(name="reviewer", model=FunctionModel(model), instructions="Review.", output_schema=Review)
    output = agent.run("the draft")
    assert output.content == Review(score=9, verdict="ship it")
    assert seen[1].startswith("That reply was not valid")
    workflow = Workflow(name="w", steps=[agent, lambda si: si.previous_step_content.verdict])
    replies = iter(['{"score": 1, "verdict": "no"}'])
    assert workflow.run("x").content == "no"


def test_structured_output_gives_up_after_the_repair_round() -> None:
    agent = Agent(name="r", model=FunctionModel(lambda m: "not json"), output_schema=Review)
    with pytest.raises(PlaitError, match="does not match Review"):
        agent.run("x")


def test_streaming_deltas_bubble_up_through_nested_workflows() -> None:
    def chunks(messages: list[Message]):  # type: ignore[no-untyped-def]
        yield "Hel"
        yield "lo"

    writer = Agent(name="writer", model=FunctionModel(chunks))
    inner = Workflow(name="inner", steps=[Step(name="write", agent=writer)])
    events = [
        e
        for e in Workflow(name="outer", steps=[inner]).run("x", stream=True)
        if isinstance(e, RunContentEvent)
    ]
    assert [(e.content, e.nested_depth, e.step_id, e.agent_name) for e in events] == [
        ("Hel", 1, "inner/write", "writer"),
        ("lo", 1, "inner/write", "writer"),
    ]


def test_retryable_model_errors_are_retried_with_an_event() -> None:
    attempts = {"n": 0}

    def flaky(messages: list[Message]) -> str:
        attempts["n"] += 1
        if attempts["n"] == 1:
            raise RateLimitError("slow down", provider="function", status_code=429, retry_after=0.01)
        return "fine"

    agent = Agent(
        name="a", model=FunctionModel(flaky, retry=RetryPolicy(max_attempts=2, initial_delay=0, jitter=0))
    )
    events = list(agent.run("x", stream=True, stream_events=True))
    retries = [e for e in events if isinstance(e, ModelRetryEvent)]
    assert len(retries) == 1 and retries[0].delay == pytest.approx(0.01) and "slow down" in retries[0].error
    assert agent.get_last_run_output().content == "fine"  # type: ignore[union-attr]


def test_one_agent_shared_by_many_concurrent_branches() -> None:
    async def reply(messages: list[Message]) -> str:
        await asyncio.sleep(0.001)
        return f"answer to {messages[-1].content}"

    agent = Agent(name="shared", model=FunctionModel(reply))
    branches = [Step(name=f"b{i}", executor=_ask(agent, i)) for i in range(50)]
    output = Workflow(
        name="w",
        steps=[
            Parallel(*branches, name="p"),
            Parallel(*[Step(name=f"a{i}", agent=agent) for i in range(20)], name="q"),
        ],
    ).run("q")
    assert output.step_outputs[0].content == {f"b{i}": f"answer to question {i}" for i in range(50)}
    from plait._io import format_content

    expected = f"answer to {format_content(output.step_outputs[0].content)}"
    assert output.content == {f"a{i}": expected for i in range(20)}


def _ask(agent: Agent, i: int):  # type: ignore[no-untyped-def]
    async def ask(step_input: StepInput) -> str:
        return (await agent.arun(f"question {i}")).content  # type: ignore[no-any-return]

    ask.__name__ = f"ask{i}"
    return ask


def test_model_string_is_checked_at_construction() -> None:
    with pytest.raises(DefinitionError, match="'provider:model'"):
        Agent(name="a", model="gpt-4o")
    Agent(name="a")  # no model=: $PLAIT_MODEL's, when it runs (tests/compat/test_default_model.py)
    with pytest.raises(DefinitionError, match="unknown option temprature="):
        Agent(name="a", model="test:echo", temprature=0.2)


def test_agent_metrics_land_in_step_outputs() -> None:
    agent = Agent(name="a", model=FunctionModel(lambda m: "three word answer"))
    output = Workflow(name="w", steps=[agent, agent]).run("one two")
    metrics = output.step_outputs[0].metrics
    assert metrics is not None and (metrics.input_tokens, metrics.output_tokens) == (2, 3)
    assert output.metrics.output_tokens == 6


def test_cost_from_model_pricing_lands_in_metrics() -> None:
    from plait import Team
    from plait.models import Pricing

    priced = FunctionModel(lambda m: "two words", pricing=Pricing(input=1.0, output=10.0))
    agent = Agent(name="a", model=priced)
    output = Workflow(name="w", steps=[agent]).run("one two three")
    assert output.step_outputs[0].metrics.cost == pytest.approx((3 * 1.0 + 2 * 10.0) / 1e6)  # type: ignore[union-attr]
    assert output.metrics.cost == pytest.approx(23e-6)
    team = Team(name="t", members=[agent], model=priced, mode="broadcast")
    result = team.run("x")
    assert result.cost is not None and result.cost > 23e-6 - 1e-12
    assert Agent(name="free", model=FunctionModel(lambda m: "x")).run("y").cost is None
