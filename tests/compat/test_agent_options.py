"""Issue #14, item 17: Agno's Agent options are supported, accepted, warned about or
refused with the plait way; none is dropped silently."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from plait import Agent, RetryPolicy
from plait.errors import DefinitionError
from plait.testing import FunctionModel


def test_markdown_adds_agnos_instruction() -> None:
    agent = Agent(name="Writer", model="offline:demo", instructions="Write about the topic", markdown=True)
    assert agent.instructions == ["Write about the topic", "Use markdown to format your answers."]
    assert Agent(name="Plain", model="offline:demo", markdown=False).instructions == []


def test_markdown_is_left_out_with_an_output_schema_as_in_agno() -> None:
    class Answer(BaseModel):
        text: str

    agent = Agent(name="A", model="offline:demo", output_schema=Answer, markdown=True)
    assert "Use markdown to format your answers." not in agent.instructions


def test_description_expected_output_and_additional_context_reach_the_model() -> None:
    seen: list[list[str]] = []

    def reply(messages):  # type: ignore[no-untyped-def]
        seen.append([m.content for m in messages if m.role == "system"])
        return "ok"

    agent = Agent(
        name="Analyst",
        model=FunctionModel(reply),
        description="You are a market analyst.",
        instructions=["Be brief."],
        expected_output="Three bullet points.",
        additional_context="The market is fintech.",
        markdown=True,
    )
    assert agent.run("go").content == "ok"
    system = seen[0]
    assert system[0] == "You are a market analyst." and "Be brief." in system
    assert "<expected_output>\nThree bullet points.\n</expected_output>" in system
    assert "The market is fintech." in system and "Use markdown to format your answers." in system


def test_retries_is_agnos_retry_count() -> None:
    agent = Agent(name="A", model="offline:demo", retries=2)
    assert agent.retry is not None and agent.retry.max_attempts == 3
    with pytest.raises(DefinitionError, match="either retry= or retries="):
        Agent(name="A", model="offline:demo", retries=2, retry=RetryPolicy(max_attempts=2))


def test_telemetry_false_is_accepted() -> None:
    Agent(name="A", model="offline:demo", telemetry=False, monitoring=False)


@pytest.mark.parametrize(
    ("option", "plait_way"),
    [
        ("add_history_to_messages", "add_history_to_context="),
        ("memory", "session_id=..."),
        ("add_datetime_to_context", "instructions="),
        ("response_model", "output_schema="),
        ("knowledge", "retrieval tool"),
        ("tool_call_limit", "max_tool_rounds="),
    ],
)
def test_options_plait_does_not_support_are_errors_naming_the_plait_way(option: str, plait_way: str) -> None:
    with pytest.raises(
        DefinitionError, match=f"Agent 'A': {option}= is Agno's option, not plait's: .*{plait_way}"
    ):
        Agent(name="A", model="offline:demo", **{option: True})


def test_options_that_change_nothing_warn() -> None:
    with pytest.warns(UserWarning, match="debug_mode= changes nothing in plait"):
        Agent(name="A", model="offline:demo", debug_mode=True)
    Agent(name="A", model="offline:demo", debug_mode=False)  # asks for nothing: no warning


def test_an_unknown_option_is_still_an_error() -> None:
    with pytest.raises(DefinitionError, match="unknown option temprature="):
        Agent(name="A", model="offline:demo", temprature=0.2)
