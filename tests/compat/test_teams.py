"""Issue #14, item 15: ``Team(output_schema=...)`` and Agno's team flags.

Agno resolves ``respond_directly=True`` to its route mode and
``delegate_to_all_members=True`` to broadcast: plait's modes of the same names.
"""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from plait import Agent, Step, Team, Workflow
from plait.errors import DefinitionError


class Report(BaseModel):
    title: str
    summary: str


def members() -> list[Agent]:
    return [
        Agent(name="Researcher", model="offline:demo", instructions="Research the topic"),
        Agent(name="Writer", model="offline:demo", instructions="Write about the topic"),
    ]


@pytest.mark.parametrize(
    ("flags", "mode"),
    [
        ({}, "coordinate"),
        ({"delegate_to_all_members": True}, "broadcast"),
        ({"respond_directly": True}, "route"),
    ],
)
def test_team_output_schema_gives_structured_content(flags: dict, mode: str) -> None:  # type: ignore[type-arg]
    team = Team(name="Research Team", members=members(), model="offline:demo", output_schema=Report, **flags)
    assert team.mode == mode
    response = team.run("the history of tea")
    assert isinstance(response.content, Report)


def test_a_structured_team_in_a_workflow_step() -> None:
    team = Team(name="Research Team", members=members(), model="offline:demo", output_schema=Report)
    output = Workflow(name="w", steps=[Step(name="research", team=team)]).run("tea")
    assert isinstance(output.content, Report)


def test_respond_directly_leaves_the_member_agent_as_it_is() -> None:
    team_members = members()
    Team(name="T", members=team_members, model="offline:demo", output_schema=Report, respond_directly=True)
    assert all(member.output_schema is None for member in team_members)


def test_agnos_flags_map_to_plaits_modes() -> None:
    assert Team(name="T", members=members(), model="offline:demo", respond_directly=True).mode == "route"
    assert (
        Team(name="T", members=members(), model="offline:demo", delegate_to_all_members=True).mode
        == "broadcast"
    )
    # members get the input as it is: what route and broadcast do
    team = Team(
        name="T",
        members=members(),
        model="offline:demo",
        delegate_to_all_members=True,
        determine_input_for_members=False,
    )
    assert team.mode == "broadcast"
    assert (
        Team(name="T", members=members(), model="offline:demo", determine_input_for_members=True).mode
        == "coordinate"
    )


def test_flags_plait_cannot_honour_are_errors_naming_the_plait_spelling() -> None:
    with pytest.raises(DefinitionError, match=r"mode='route'.*mode='broadcast'"):
        Team(name="T", members=members(), model="offline:demo", determine_input_for_members=False)
    with pytest.raises(DefinitionError, match="do not combine"):
        Team(
            name="T",
            members=members(),
            model="offline:demo",
            respond_directly=True,
            delegate_to_all_members=True,
        )
    with pytest.raises(DefinitionError, match="contradicts mode='coordinate'"):
        Team(name="T", members=members(), model="offline:demo", mode="coordinate", respond_directly=True)
    with pytest.raises(DefinitionError, match="use mode='coordinate'"):
        Team(
            name="T",
            members=members(),
            model="offline:demo",
            respond_directly=True,
            determine_input_for_members=True,
        )
    with pytest.raises(DefinitionError, match="no mode='tasks'"):
        Team(name="T", members=members(), model="offline:demo", mode="tasks")  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match=r"Team 'T': db= takes a plait storage"):
        Team(name="T", members=members(), model="offline:demo", db=object())


def test_team_markdown_and_description_reach_the_leader() -> None:
    team = Team(
        name="T", members=members(), model="offline:demo", markdown=True, description="A research team"
    )
    assert team.leader.instructions[0] == "A research team"
    assert "Use markdown to format your answers." in team.leader.instructions
