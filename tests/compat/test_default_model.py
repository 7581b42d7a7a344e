"""Issue #14, item 1: an Agent or Team without ``model=``.

Agno falls back to a default OpenAI model; plait takes the model ``$PLAIT_MODEL`` names,
read when a run starts (not at import or construction), and says how to fix it when it is
not set. The Agno code below is Agno's, with only the imports changed.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from plait import Agent, Step, StepInput, StepOutput, Team, Workflow
from plait.errors import DefinitionError, PluginError, StepError
from plait.models import default_model

# Agno: cookbook/04_workflows/06_advanced_concepts/run_control/metrics.py (models dropped)
hackernews_agent = Agent(
    name="Hackernews Agent", role="Extract key insights and content from Hackernews posts"
)
web_agent = Agent(name="Web Agent", role="Search the web for the latest news and trends")
content_planner = Agent(
    name="Content Planner",
    instructions=[
        "Plan a content schedule over 4 weeks for the provided topic and research content",
        "Ensure that I have posts for 3 posts per week",
    ],
)
research_team = Team(
    name="Research Team",
    members=[hackernews_agent, web_agent],
    instructions="Research tech topics from Hackernews and the web",
)


def content_workflow() -> Workflow:
    return Workflow(
        name="Content Creation Workflow",
        description="Automated content creation from blog posts to social media",
        steps=[
            Step(name="Research Step", team=research_team),
            Step(name="Content Planning Step", agent=content_planner),
        ],
    )


@pytest.fixture
def no_default(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("PLAIT_MODEL", raising=False)
    return monkeypatch


def test_constructing_without_a_model_needs_nothing(no_default: pytest.MonkeyPatch) -> None:
    # module level above: constructed with PLAIT_MODEL unset, no error until a run needs a model
    assert content_planner.name == "Content Planner"
    assert research_team.leader.name == "Research Team leader"


def test_running_without_a_model_names_both_fixes(no_default: pytest.MonkeyPatch) -> None:
    with pytest.raises(DefinitionError) as info:
        content_planner.run("AI trends")
    message = str(info.value)
    assert "Agent 'Content Planner' has no model" in message
    assert "pass model=" in message and "PLAIT_MODEL" in message and "offline:demo" in message


def test_a_team_without_a_model_is_named_in_the_error(no_default: pytest.MonkeyPatch) -> None:
    with pytest.raises(DefinitionError, match=r"Team 'Research Team' has no model: pass model="):
        research_team.run("AI trends")


def test_a_workflow_step_without_a_model_fails_naming_the_step(no_default: pytest.MonkeyPatch) -> None:
    with pytest.raises(StepError) as info:
        Workflow(name="w", steps=[Step(name="Content Planning Step", agent=content_planner)]).run("AI")
    assert "Content Planning Step" in str(info.value)
    assert isinstance(info.value.__cause__, DefinitionError)
    assert "PLAIT_MODEL" in str(info.value.__cause__)


def test_setting_the_variable_after_construction_works(no_default: pytest.MonkeyPatch) -> None:
    agent = Agent(name="Writer", instructions="Write a short article.")
    no_default.setenv("PLAIT_MODEL", "offline:demo")
    output = agent.run("the history of tea")
    assert output.model == "offline:demo"
    assert "tea" in output.content.lower()


def test_the_agno_workflow_runs_on_the_default_model(no_default: pytest.MonkeyPatch) -> None:
    no_default.setenv("PLAIT_MODEL", "offline:demo")
    output = content_workflow().run(input="AI trends in 2024")
    assert [o.step_name for o in output.step_outputs] == ["Research Step", "Content Planning Step"]
    assert all(o.content for o in output.step_outputs)
    assert [r.model for r in output.step_executor_runs] == ["offline:demo", "offline:demo"]


def test_each_run_reads_the_variable_again(no_default: pytest.MonkeyPatch) -> None:
    agent = Agent(name="Echo")
    no_default.setenv("PLAIT_MODEL", "test:first")
    assert agent.run("hi").content == "[first] hi"
    no_default.setenv("PLAIT_MODEL", "test:second")
    assert agent.run("hi").content == "[second] hi"
    # one model object per string, shared by the agents that use the default
    assert default_model("x") is default_model("y")


def test_nested_workflow_agents_use_the_default(no_default: pytest.MonkeyPatch) -> None:
    inner = Workflow(name="inner", steps=[Step(name="echo", agent=Agent(name="Echo"))])

    def shout(step_input: StepInput) -> StepOutput:
        return StepOutput(content=str(step_input.previous_step_content).upper())

    outer = Workflow(name="outer", steps=[Step(name="nested", workflow=inner), shout])
    no_default.setenv("PLAIT_MODEL", "test:echo")
    assert outer.run("tea").content == "[ECHO] TEA"


def test_a_bad_variable_says_what_was_expected(no_default: pytest.MonkeyPatch) -> None:
    agent = Agent(name="A")
    no_default.setenv("PLAIT_MODEL", "gpt-4o")
    with pytest.raises(DefinitionError, match=r"PLAIT_MODEL='gpt-4o' is not a 'provider:model' string"):
        agent.run("hi")
    no_default.setenv("PLAIT_MODEL", "nosuch:model")
    with pytest.raises(PluginError, match=r"Agent 'A' has no model= and PLAIT_MODEL='nosuch:model'.*nosuch"):
        agent.run("hi")


def test_an_explicit_model_wins_over_the_variable(no_default: pytest.MonkeyPatch) -> None:
    no_default.setenv("PLAIT_MODEL", "test:default")
    assert Agent(name="A", model="test:own").run("hi").content == "[own] hi"
    team = Team(name="T", members=[Agent(name="m", model="test:m")], mode="route", model="offline:demo")
    assert team.run("hi").model == "offline:demo"


def test_default_model_across_event_loops_and_threads(no_default: pytest.MonkeyPatch) -> None:
    no_default.setenv("PLAIT_MODEL", "test:echo")
    agent = Agent(name="A")
    assert asyncio.run(agent.arun("one")).content == "[echo] one"
    assert asyncio.run(agent.arun("two")).content == "[echo] two"
    results: list[str] = []

    def work(i: int) -> None:
        results.append(agent.run(f"t{i}").content)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == sorted(f"[echo] t{i}" for i in range(8))


def test_a_cached_step_without_a_model_constructs(no_default: pytest.MonkeyPatch) -> None:
    from plait import CachePolicy

    step = Step(name="plan", agent=Agent(name="Planner"), cache=CachePolicy())
    assert step.name == "plan"
