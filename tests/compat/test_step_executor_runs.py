"""Issue #14, item 8b: ``WorkflowRunOutput.step_executor_runs``, Agno's list of the agent,
team and nested workflow runs a workflow run's steps made, in order."""

from __future__ import annotations

import asyncio
from typing import Any

from plait import (
    Agent,
    AgentRunOutput,
    Loop,
    Parallel,
    Step,
    StepInput,
    StepOutput,
    Team,
    Workflow,
    WorkflowRunOutput,
)
from plait.testing import FunctionModel, PickleRoundTripRunner


def agent(name: str) -> Agent:
    return Agent(name=name, model="test:" + name.lower())


def shout(step_input: StepInput) -> StepOutput:
    return StepOutput(content=str(step_input.previous_step_content).upper())


def test_agent_team_and_nested_workflow_runs_in_order() -> None:
    team = Team(
        name="Desk",
        members=[agent("Member")],
        model=FunctionModel(lambda m: '{"member": "Member"}'),
        mode="route",
    )
    inner = Workflow(name="inner", steps=[Step(name="inner_writer", agent=agent("Inner"))])
    workflow = Workflow(
        name="w",
        steps=[
            Step(name="research", agent=agent("Researcher")),
            shout,  # a function step makes no executor run
            Step(name="desk", team=team),
            Step(name="nested", workflow=inner),
        ],
    )
    output = workflow.run("tea")
    runs = output.step_executor_runs
    assert [type(r).__name__ for r in runs] == ["AgentRunOutput", "AgentRunOutput", "WorkflowRunOutput"]
    research, desk, nested = runs
    assert isinstance(research, AgentRunOutput) and research.agent_name == "Researcher"
    assert research.content == output.step_outputs[0].content == "[researcher] tea"
    assert isinstance(desk, AgentRunOutput) and desk.agent_name == "Desk"
    assert desk.content == output.step_outputs[2].content
    assert isinstance(nested, WorkflowRunOutput) and nested.workflow_name == "inner"
    assert nested.parent_run_id == output.run_id
    # the nested run lists its own steps' runs
    assert [r.agent_name for r in nested.step_executor_runs] == ["Inner"]
    assert nested.step_executor_runs[0].content == nested.content


def test_each_run_has_its_own_list() -> None:
    workflow = Workflow(name="w", steps=[Step(name="a", agent=agent("A"))])
    first, second = workflow.run("one"), workflow.run("two")
    assert [r.content for r in first.step_executor_runs] == ["[a] one"]
    assert [r.content for r in second.step_executor_runs] == ["[a] two"]
    assert asyncio.run(workflow.arun("three")).step_executor_runs[0].content == "[a] three"


def test_loops_and_parallel_branches_add_every_run() -> None:
    workflow = Workflow(
        name="w",
        steps=[
            Parallel(
                Step(name="left", agent=agent("Left")), Step(name="right", agent=agent("Right")), name="both"
            ),
            Loop(name="again", steps=[Step(name="echo", agent=agent("Echo"))], max_iterations=3),
        ],
    )
    runs = workflow.run("x").step_executor_runs
    assert sorted(r.agent_name for r in runs[:2]) == ["Left", "Right"]  # branches: as they finished
    assert [r.agent_name for r in runs[2:]] == ["Echo", "Echo", "Echo"]


def test_branches_shipped_to_another_process_bring_their_runs_back() -> None:
    workflow = Workflow(
        name="w",
        steps=[
            Parallel(
                Step(name="left", agent=agent("Left")), Step(name="right", agent=agent("Right")), name="both"
            )
        ],
        runner=PickleRoundTripRunner(),
    )
    output = workflow.run("x")
    assert sorted(r.content for r in output.step_executor_runs) == ["[left] x", "[right] x"]


def test_an_agent_called_inside_an_executor_is_not_a_step_executor_run() -> None:
    helper = agent("Helper")

    def uses_agent(step_input: StepInput) -> str:
        return str(helper.run(step_input.input).content)

    output = Workflow(name="w", steps=[uses_agent]).run("x")
    assert output.content == "[helper] x" and output.step_executor_runs == []  # as in Agno


def test_a_streamed_run_fills_it_too() -> None:
    workflow = Workflow(name="w", steps=[Step(name="a", agent=agent("A"))])
    events: list[Any] = list(workflow.run("x", stream=True))
    assert events
    output = workflow.get_last_run_output()
    assert output is not None and [r.agent_name for r in output.step_executor_runs] == ["A"]


def test_a_durable_run_fills_it_too(tmp_path: Any) -> None:
    workflow = Workflow(
        name="w", steps=[Step(name="a", agent=agent("A"))], storage=f"sqlite:///{tmp_path / 'runs.db'}"
    )
    assert [r.content for r in workflow.run("x").step_executor_runs] == ["[a] x"]


def test_to_dict_and_from_dict_keep_the_executor_runs() -> None:
    """A run's executor runs survive to_dict/JSON/from_dict: nested workflow runs as
    WorkflowRunOutput, agent runs as AgentRunOutput with their messages and tool calls."""
    import json

    from plait.models import ToolCall

    def double(x: int) -> int:
        """Double x."""
        return 2 * x

    answers = iter([ToolCall(id="c1", name="double", arguments={"x": 2}), "done"])
    helper = Agent(name="Helper", model=FunctionModel(lambda messages: next(answers)), tools=[double])
    inner = Workflow(name="inner", steps=[Step(name="ask", agent=helper)])
    wf = Workflow(
        name="outer", steps=[Step(name="nested", workflow=inner), Step(name="shout", executor=shout)]
    )
    out = wf.run("go")
    back = WorkflowRunOutput.from_dict(json.loads(json.dumps(out.to_dict())))
    (nested,) = back.step_executor_runs
    assert isinstance(nested, WorkflowRunOutput) and nested.workflow_name == "inner"
    (agent_run,) = nested.step_executor_runs
    assert isinstance(agent_run, AgentRunOutput)
    assert agent_run == out.step_executor_runs[0].step_executor_runs[0]
    assert [call.arguments for m in agent_run.messages for call in m.tool_calls or []] == [{"x": 2}]
    assert back.content == "DONE"
