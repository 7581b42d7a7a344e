"""An agent run started inside a step's own code streams into the enclosing run (sync and
async steps, worker threads, fully-Python workflows), and tools that declare ``run_context``
receive it, kept out of the tool's schema."""

from __future__ import annotations

from typing import Any

import pytest

from plait import Agent, Parallel, RunContext, Step, StepInput, StepOutput, Workflow
from plait.events import RunContentEvent, ToolCallCompletedEvent
from plait.models import Message, ToolCall
from plait.testing import FunctionModel


def chunks(messages: list[Message]):  # type: ignore[no-untyped-def]
    yield "Hel"
    yield "lo"


writer = Agent(name="writer", model=FunctionModel(chunks))


def sync_step(step_input: StepInput) -> StepOutput:
    return StepOutput(content=writer.run(step_input.input).content)


async def async_step(step_input: StepInput) -> StepOutput:
    result = await writer.arun(step_input.input)
    return StepOutput(content=result.content)


def deltas(workflow: Workflow) -> list[tuple[str, int, str | None, str | None]]:
    return [
        (e.content, e.nested_depth, e.step_id, e.agent_name)
        for e in workflow.run("x", stream=True)
        if isinstance(e, RunContentEvent)
    ]


@pytest.mark.parametrize("executor", [sync_step, async_step], ids=["sync", "async"])
def test_an_agent_called_in_a_step_streams_into_the_workflow(executor: Any) -> None:
    inner = Workflow(name="inner", steps=[Step(name="call", executor=executor)])
    outer = Workflow(name="outer", steps=[inner])
    assert deltas(outer) == [("Hel", 1, "inner/call", "writer"), ("lo", 1, "inner/call", "writer")]
    assert outer.run("x").content == "Hello"  # and nothing changes without a stream


def test_in_parallel_worker_threads_too() -> None:
    wf = Workflow(
        name="w",
        steps=[Parallel(Step(name="a", executor=sync_step), Step(name="b", executor=sync_step), name="p")],
    )
    got = deltas(wf)
    assert sorted(got) == sorted([(c, 0, f"p/{s}", "writer") for s in "ab" for c in ("Hel", "lo")])


def test_in_a_fully_python_workflow() -> None:
    def steps(workflow: Workflow, execution_input: Any) -> str:
        return str(writer.run(execution_input.input).content)

    wf = Workflow(name="py", steps=steps)
    got = deltas(wf)
    assert [g[0] for g in got] == ["Hel", "lo"]
    assert all(g[3] == "writer" for g in got)


def test_outside_a_workflow_an_agent_runs_as_before() -> None:
    assert writer.run("x").content == "Hello"


# -- tools with run_context ---------------------------------------------------------


def note(topic: str, run_context: RunContext) -> str:
    """Write down a topic in the session."""
    run_context.session_state.setdefault("topics", []).append(topic)
    return f"noted {topic} in {run_context.step_id or 'a run of its own'}"


def caller(messages: list[Message]) -> Any:
    if messages[-1].role == "tool":
        return f"done: {messages[-1].content}"
    return ToolCall("c1", "note", {"topic": "plait"})


def test_a_tool_declaring_run_context_gets_the_steps_and_its_schema_hides_it() -> None:
    agent = Agent(name="scribe", model=FunctionModel(caller), tools=[note])
    schema = agent.tools[0].definition.parameters
    assert set(schema["properties"]) == {"topic"} and schema["required"] == ["topic"]
    wf = Workflow(name="w", steps=[Step(name="scribe", agent=agent)])
    events = list(wf.run("x", session_id="s", stream=True, stream_events=True))
    completed = [e for e in events if isinstance(e, ToolCallCompletedEvent)]
    assert completed[0].error is None and completed[0].result == "noted plait in scribe"
    assert wf.get_session_state("s") == {"topics": ["plait"]}


def test_a_tool_of_an_agent_outside_a_workflow_gets_a_context_of_its_own() -> None:
    agent = Agent(name="scribe", model=FunctionModel(caller), tools=[note])
    assert agent.run("x").content == "done: noted plait in a run of its own"
