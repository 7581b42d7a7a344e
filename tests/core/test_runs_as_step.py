"""The public protocol of "something that runs as a step" (agents, teams, workflows, a plugin's
objects) and the typed options an agent or team run takes (RunOptions), in place of private calls."""

from __future__ import annotations

from typing import Any

from plait import Agent, Step, StepInput, StepOutput, Team, Workflow
from plait.agent import RunOptions
from plait.events import Event, RunContentEvent
from plait.primitives import RunsAsStep
from plait.testing import FunctionModel


class Shouter:
    """A plugin's object: not an agent, but it runs as a step."""

    name = "shouter"

    async def run_as_step(self, step_input: StepInput, ctx: Any) -> StepOutput:
        return StepOutput(content=str(step_input.message).upper())


def echo(messages: Any) -> str:
    return f"echo: {messages[-1].content}"


def test_agents_teams_workflows_and_foreign_objects_run_as_steps() -> None:
    agent = Agent(name="a", model=FunctionModel(echo))
    team = Team(name="t", members=[agent], model=FunctionModel(lambda m: "done"), mode="broadcast")
    inner = Workflow(name="inner", steps=[Step(name="shout", agent=Shouter())])
    for runnable in (agent, team, inner, Shouter()):
        assert isinstance(runnable, RunsAsStep), runnable
    outer = Workflow(name="outer", steps=[inner, Step(name="ask", agent=agent)])
    assert outer.run("hi").content == "echo: HI"


async def test_invoke_takes_typed_run_options() -> None:
    events: list[Event] = []
    agent = Agent(name="a", model=FunctionModel(echo))
    result = await agent.invoke("hello", RunOptions(emit=events.append))
    assert result.content == "echo: hello"
    assert "".join(e.content for e in events if isinstance(e, RunContentEvent)) == "echo: hello"
    assert (await agent.invoke("plain")).content == "echo: plain"  # no options: a run on its own
