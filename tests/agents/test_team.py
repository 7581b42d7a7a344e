"""Teams: route, coordinate and broadcast, as agents and as workflow steps."""

from __future__ import annotations

import json

import pytest

from plait import Agent, Step, Team, Workflow
from plait.errors import DefinitionError
from plait.events import RunContentEvent, ToolCallStartedEvent
from plait.models import Message, ModelRequest, ToolCall
from plait.testing import FunctionModel


def member(name: str) -> Agent:
    return Agent(
        name=name,
        model=FunctionModel(lambda messages: f"{name}: {messages[-1].content}"),
        description=f"the {name} expert",
    )


def test_route_mode_picks_one_member() -> None:
    def leader(messages: list[Message]) -> str:
        assert "- tech: the tech expert" in (messages[0].content or "")
        return json.dumps({"member": "tech" if "chip" in (messages[-1].content or "") else "business"})

    team = Team(
        name="experts",
        members=[member("tech"), member("business")],
        model=FunctionModel(leader),
        mode="route",
    )
    assert team.run("new chip design").content == "tech: new chip design"
    assert team.run("quarterly results").content == "business: quarterly results"
    output = team.get_last_run_output()
    assert output is not None and output.usage.requests == 2  # the leader's choice, then the member


def test_coordinate_mode_delegates_through_tool_calls() -> None:
    def leader(messages: list[Message], request: ModelRequest):  # type: ignore[no-untyped-def]
        assert [t.name for t in request.tools] == ["ask_research", "ask_writing"]
        if messages[-1].role == "user":
            return [
                ToolCall("1", "ask_research", {"task": "find facts"}),
                ToolCall("2", "ask_writing", {"task": "draft intro"}),
            ]
        answers = sorted(m.content or "" for m in messages if m.role == "tool")
        return "Final: " + " + ".join(answers)

    team = Team(name="desk", members=[member("research"), member("writing")], model=FunctionModel(leader))
    events = list(team.run("an article", stream=True, stream_events=True))
    assert team.get_last_run_output().content == "Final: research: find facts + writing: draft intro"  # type: ignore[union-attr]
    assert [e.tool_name for e in events if isinstance(e, ToolCallStartedEvent)] == [
        "ask_research",
        "ask_writing",
    ]
    agents = {e.agent_name for e in events if isinstance(e, RunContentEvent)}
    assert agents == {"research", "writing", "desk leader"}
    assert team.get_last_run_output().usage.requests == 4  # type: ignore[union-attr]


def test_broadcast_mode_asks_everyone_then_synthesizes() -> None:
    def leader(messages: list[Message]) -> str:
        return "Synthesis of:\n" + (messages[-1].content or "")

    team = Team(
        name="panel", members=[member("a"), member("b")], model=FunctionModel(leader), mode="broadcast"
    )
    workflow = Workflow(name="w", steps=[Step(name="panel", team=team), lambda si: si.message.upper()])
    output = workflow.run("topic")
    assert (
        output.step_outputs[0].content
        == "Synthesis of:\nRequest:\ntopic\n\nMember answers:\n## a\na: topic\n\n## b\nb: topic"
    )
    assert output.step_outputs[0].metrics.input_tokens > 0  # type: ignore[union-attr]
    assert Workflow(name="auto", steps=[team]).run("t").step_outputs[0].step_name == "panel"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"members": [], "model": "test:echo"}, "at least one member"),
        ({"members": [member("a"), member("a")], "model": "test:echo"}, "member names must be unique"),
        ({"members": [member("a")], "model": "test:echo", "mode": "vote"}, "mode must be"),
        ({"members": ["not an agent"], "model": "test:echo"}, "members must be Agents or Teams"),
    ],
)
def test_team_definition_errors(kwargs, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DefinitionError, match=message):
        Team(name="t", **kwargs)
