"""Issue #14, item 4: the Workflow options Agno code passes.

``telemetry=``, ``db=`` (with Agno's ``SqliteDb`` / ``InMemoryDb``), ``metadata=``,
``dependencies=``, ``add_dependencies_to_context=``, ``stream_executor_events=``,
``store_events=`` with ``events_to_skip=``. Written as Agno code with the imports and
the model changed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import json
from pathlib import Path
from typing import Any

import pytest

from plait import Agent, RunContext, RunStatus, Step, StepInput, StepOutput, Workflow
from plait.errors import DefinitionError
from plait.events import RunContentEvent, StepCompletedEvent, StepStartedEvent, ToolCallStartedEvent
from plait.models import ToolCall
from plait.storage import InMemoryDb, MemoryStorage, SqliteDb
from plait.storage._sqlite import SQLiteStorage
from plait.testing import FunctionModel


def echo(step_input: StepInput) -> StepOutput:
    return StepOutput(content=f"echo {step_input.input}")


# -- telemetry -------------------------------------------------------------------------


def test_telemetry_is_accepted_either_way() -> None:
    assert Workflow(name="w", steps=[echo], telemetry=False).run("x").content == "echo x"
    assert Workflow(name="w", steps=[echo], telemetry=True).telemetry is True
    with pytest.raises(DefinitionError, match="telemetry must be True or False, got 'no'"):
        Workflow(name="w", steps=[echo], telemetry="no")  # type: ignore[arg-type]


# -- db= -------------------------------------------------------------------------------


def test_db_sqlite_db_is_plaits_sqlite_storage(tmp_path: Path) -> None:
    db = SqliteDb(db_file=str(tmp_path / "tmp.db"))
    workflow = Workflow(name="Content Workflow", db=db, steps=[echo])
    assert workflow.storage is db and isinstance(db, SQLiteStorage)
    output = workflow.run("topic")
    assert output.status == RunStatus.COMPLETED
    # the run is in the file: another workflow object on the same file finds it
    again = Workflow(
        name="Content Workflow", db=SqliteDb(db_url=f"sqlite:///{tmp_path / 'tmp.db'}"), steps=[echo]
    )
    stored = asyncio.run(_get_run(again, output.run_id))
    assert stored is not None and stored.status == "COMPLETED"
    asyncio.run(db.close())


async def _get_run(workflow: Workflow, run_id: str) -> Any:
    storage = await workflow._ready_storage()
    assert storage is not None
    try:
        return await storage.get_run(run_id)
    finally:
        await storage.close()


def test_db_in_memory_db_and_urls() -> None:
    db = InMemoryDb()
    workflow = Workflow(name="w", db=db, steps=[echo], session_state={"n": 0})
    assert isinstance(db, MemoryStorage)
    workflow.run("x", session_id="s")
    assert workflow.get_session_state("s") == {"n": 0}
    assert Workflow(name="w", db="memory://", steps=[echo]).storage == "memory://"


def test_db_mistakes_are_clear(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="give db= or storage=, not both"):
        Workflow(name="w", steps=[echo], db=InMemoryDb(), storage="memory://")

    class PostgresDb:  # an Agno db class plait does not have
        def __init__(self, db_url: str) -> None:
            self.db_url = db_url

    with pytest.raises(DefinitionError) as error:
        Workflow(name="Research", steps=[echo], db=PostgresDb("postgresql+psycopg://localhost/ai"))
    message = str(error.value)
    assert "Workflow 'Research'" in message and "PostgresDb" in message and "storage=" in message
    with pytest.raises(DefinitionError, match="db_engine"):
        SqliteDb(db_engine=object())
    with pytest.raises(DefinitionError, match="not both"):
        SqliteDb(db_file="a.db", db_url="sqlite:///b.db")
    with pytest.raises(DefinitionError, match="sqlite:///"):
        SqliteDb(db_url="postgresql://x")
    with pytest.raises(DefinitionError, match="unknown option"):
        SqliteDb(db_file="a.db", echo=True)
    with pytest.warns(UserWarning, match="session_table"):
        SqliteDb(db_file=str(tmp_path / "t.db"), session_table="workflow_sessions")


# -- metadata and dependencies ---------------------------------------------------------


def test_metadata_and_dependencies_reach_run_context_merged_as_in_agno() -> None:
    seen: list[RunContext] = []

    def look(step_input: StepInput, run_context: RunContext) -> StepOutput:
        seen.append(run_context)
        return StepOutput(content="ok")

    workflow = Workflow(
        name="w",
        steps=[Step(name="look", executor=look)],
        metadata={"project": "alpha", "tags": {"team": "core"}},
        dependencies={"db": "primary", "limits": {"rows": 10, "cols": 3}},
    )
    output = workflow.run(
        "x",
        metadata={"project": "beta", "request": "r-1", "tags": {"env": "test"}},
        dependencies={"db": "replica", "limits": {"rows": 99}},
    )
    context = seen[0]
    # metadata: the workflow's keys win (Agno's order); dependencies: the run's keys win
    assert context.metadata == {"project": "alpha", "request": "r-1", "tags": {"env": "test", "team": "core"}}
    assert context.dependencies == {"db": "replica", "limits": {"rows": 99, "cols": 3}}
    assert output.metadata == context.metadata
    # the workflow's own dicts are not changed by a run
    assert workflow.dependencies == {"db": "primary", "limits": {"rows": 10, "cols": 3}}
    workflow.run("y")
    assert seen[1].metadata == {"project": "alpha", "tags": {"team": "core"}}
    assert seen[1].dependencies == {"db": "primary", "limits": {"rows": 10, "cols": 3}}


def test_without_metadata_or_dependencies_run_context_has_none() -> None:
    seen: list[RunContext] = []

    def look(step_input: StepInput, run_context: RunContext) -> str:
        seen.append(run_context)
        return "ok"

    Workflow(name="w", steps=[look]).run("x")
    assert seen[0].metadata is None and seen[0].dependencies is None and seen[0].user_id is None


def test_metadata_is_stored_and_its_types_survive_a_resume(tmp_path: Path) -> None:
    seen: list[Any] = []
    attempts = {"n": 0}

    def flaky(step_input: StepInput, run_context: RunContext) -> str:
        attempts["n"] += 1
        seen.append(run_context.metadata)
        if attempts["n"] == 1:
            raise RuntimeError("down")
        return "done"

    workflow = Workflow(
        name="w", steps=[Step(name="flaky", executor=flaky)], storage=f"sqlite:///{tmp_path / 'r.db'}"
    )
    metadata = {"at": dt.datetime(2026, 1, 2, 3, 4, 5), "pair": (1, 2), "by_id": {7: "seven"}}
    with pytest.raises(Exception, match="down"):
        workflow.run("x", metadata=metadata, run_id="r1")
    output = workflow.continue_run("r1")
    assert output.status == RunStatus.COMPLETED
    assert (
        seen[1] == metadata and isinstance(seen[1]["at"], dt.datetime) and isinstance(seen[1]["pair"], tuple)
    )
    workflow.close()


def test_bad_metadata_and_dependencies_are_definition_errors() -> None:
    with pytest.raises(DefinitionError, match="Workflow 'w': metadata must be a dict, got str"):
        Workflow(name="w", steps=[echo], metadata="alpha")  # type: ignore[arg-type]
    workflow = Workflow(name="w", steps=[echo])
    with pytest.raises(DefinitionError, match=r"run\(\): dependencies must be a dict, got list"):
        workflow.run("x", dependencies=[1, 2])  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="add_dependencies_to_context must be True or False"):
        workflow.run("x", add_dependencies_to_context="yes")  # type: ignore[arg-type]


def _capturing_agent(prompts: list[str]) -> Agent:
    def reply(messages: Any) -> str:
        prompts.append(messages[-1].content)
        return "written"

    return Agent(name="Writer", model=FunctionModel(reply), instructions="Write.")


def test_add_dependencies_to_context_adds_them_to_an_agent_steps_message() -> None:
    prompts: list[str] = []
    workflow = Workflow(
        name="w",
        steps=[Step(name="write", agent=_capturing_agent(prompts))],
        dependencies={"audience": "children", "when": dt.date(2026, 5, 1)},
        add_dependencies_to_context=True,
    )
    assert workflow.run("the moon").content == "written"
    text, _, context = prompts[0].partition("\n\n<additional context>\n")
    assert text == "the moon"
    assert context.endswith("\n</additional context>")
    assert json.loads(context.removesuffix("\n</additional context>")) == {
        "audience": "children",
        "when": "2026-05-01",
    }
    # the run's flag wins over the workflow's
    workflow.run("the sun", add_dependencies_to_context=False)
    assert prompts[1] == "the sun"


def test_dependencies_stay_out_of_the_message_unless_asked() -> None:
    prompts: list[str] = []
    workflow = Workflow(name="w", steps=[_capturing_agent(prompts)], dependencies={"k": "v"})
    workflow.run("plain")
    workflow.run("asked", add_dependencies_to_context=True)
    assert prompts[0] == "plain"
    assert prompts[1].startswith("asked\n\n<additional context>\n") and '"k": "v"' in prompts[1]


# -- stream_executor_events ------------------------------------------------------------


def lookup(city: str) -> str:
    """Look a city up."""
    return f"{city}: sunny"


def _tool_agent() -> Agent:
    def reply(messages: Any) -> Any:
        if messages[-1].role != "tool":
            return ToolCall("call-1", "lookup", {"city": "Paris"})

        def stream() -> Any:
            yield "It is "
            yield "sunny."

        return stream()

    return Agent(name="Weather", model=FunctionModel(reply), tools=[lookup])


def _events(workflow: Workflow) -> list[Any]:
    return list(workflow.run("weather?", stream=True, stream_events=True))


def test_executor_events_stream_by_default() -> None:
    events = _events(Workflow(name="w", steps=[Step(name="ask", agent=_tool_agent())]))
    assert [e.event for e in events if e.event.startswith("Run") and e.event != "RunContent"] == [
        "RunStarted",
        "RunCompleted",
    ]
    assert any(isinstance(e, ToolCallStartedEvent) for e in events)
    assert [e.content for e in events if isinstance(e, RunContentEvent)] == ["It is ", "sunny."]


def test_stream_executor_events_false_drops_agent_events_but_not_the_run() -> None:
    def generator_step(step_input: StepInput) -> Any:
        yield "own text"
        yield StepOutput(content=f"{step_input.previous_step_content} (checked)")

    workflow = Workflow(
        name="w",
        steps=[Step(name="ask", agent=_tool_agent()), Step(name="check", executor=generator_step)],
        stream_executor_events=False,
    )
    events = _events(workflow)
    assert not any(isinstance(e, ToolCallStartedEvent) for e in events)
    # as in Agno, an executor's completion still comes; its start does not
    assert "RunStarted" not in [e.event for e in events]
    assert [e.agent_name for e in events if e.event == "RunCompleted"] == ["Weather"]
    # the step's own yielded text is not an executor's event: it stays
    assert [e.content for e in events if isinstance(e, RunContentEvent)] == ["own text"]
    assert [e.step_name for e in events if isinstance(e, StepCompletedEvent)] == ["ask", "check"]
    assert events[-1].content == "It is sunny. (checked)"
    assert workflow.run("weather?").content == "It is sunny. (checked)"
    with pytest.raises(DefinitionError, match="stream_executor_events must be True or False"):
        Workflow(name="w", steps=[echo], stream_executor_events=None)  # type: ignore[arg-type]


# -- store_events and events_to_skip ---------------------------------------------------


class WorkflowRunEvent(str, enum.Enum):  # noqa: UP042 (the shape of Agno's enum, agno.run.workflow)
    step_started = "StepStarted"
    step_completed = "StepCompleted"


async def _stored_events(workflow: Workflow, run_id: str) -> list[str]:
    storage = await workflow._ready_storage()
    assert storage is not None
    return [e["event"] for e in await storage.load_events(run_id)]


@pytest.mark.parametrize(
    "skip",
    [[StepStartedEvent, "StepCompleted"], [WorkflowRunEvent.step_started, WorkflowRunEvent.step_completed]],
)
def test_events_to_skip_are_not_stored(skip: list[Any]) -> None:
    workflow = Workflow(
        name="w", steps=[echo], storage=MemoryStorage(), store_events=True, events_to_skip=skip
    )
    assert workflow.skipped_events == {"StepStarted", "StepCompleted"}  # for code storing events itself
    output = workflow.run("x")
    assert asyncio.run(_stored_events(workflow, output.run_id)) == [
        "WorkflowStarted",
        "StepOutput",
        "WorkflowCompleted",
    ]
    # the stream is not what is stored: it still has every event
    names = [e.event for e in workflow.run("y", stream=True, stream_events=True)]
    assert "StepStarted" in names and "StepCompleted" in names


def test_events_to_skip_takes_plaits_agent_run_events() -> None:
    from plait import RunEvent

    workflow = Workflow(
        name="w",
        steps=[Step(name="ask", agent=_tool_agent())],
        storage=MemoryStorage(),
        store_events=True,
        events_to_skip=[RunEvent.run_content, RunEvent.tool_call_started, "ToolCallCompleted"],
    )
    output = workflow.run("weather?")
    stored = asyncio.run(_stored_events(workflow, output.run_id))
    assert "RunStarted" in stored and "RunCompleted" in stored and "StepCompleted" in stored
    assert not {"RunContent", "ToolCallStarted", "ToolCallCompleted"} & set(stored)


def test_store_events_keeps_all_without_events_to_skip() -> None:
    workflow = Workflow(name="w", steps=[echo], storage=MemoryStorage(), store_events=True)
    output = workflow.run("x")
    assert asyncio.run(_stored_events(workflow, output.run_id)) == [
        "WorkflowStarted",
        "StepStarted",
        "StepOutput",
        "StepCompleted",
        "WorkflowCompleted",
    ]


def test_events_to_skip_mistakes_name_what_is_known() -> None:
    with pytest.raises(
        DefinitionError, match=r"'StepStart' is not an event type or name; expected one of .*StepStarted"
    ):
        Workflow(name="w", steps=[echo], store_events=True, events_to_skip=["StepStart"])
    with pytest.raises(DefinitionError, match="events_to_skip must be a list"):
        Workflow(name="w", steps=[echo], events_to_skip="StepStarted")  # type: ignore[arg-type]


def test_stream_executor_events_false_drops_a_teams_events_but_its_completion() -> None:
    from plait import Team

    team = Team(
        name="Research Team",
        members=[Agent(name="Researcher", model="offline:demo", instructions="Research the topic")],
        model="offline:demo",
        mode="broadcast",
    )
    shown = _events(Workflow(name="w", steps=[Step(name="research", team=team)]))
    hidden = _events(
        Workflow(name="w", steps=[Step(name="research", team=team)], stream_executor_events=False)
    )
    assert "TeamRunStarted" in [e.event for e in shown]
    names = [e.event for e in hidden]
    assert "TeamRunStarted" not in names and "RunStarted" not in names and "RunContent" not in names
    assert "TeamRunCompleted" in names and "StepCompleted" in names
    assert hidden[-1].content == shown[-1].content


def test_assigning_storage_moves_the_next_runs_there(tmp_path: Path) -> None:
    first, second = MemoryStorage(), MemoryStorage()
    workflow = Workflow(name="w", steps=[echo], storage=first)
    one = workflow.run("x")
    workflow.storage = second  # after a run opened the first one
    two = workflow.run("y")
    assert asyncio.run(first.get_run(two.run_id)) is None
    record = asyncio.run(second.get_run(two.run_id))
    assert record is not None and record.status == RunStatus.COMPLETED.value
    assert asyncio.run(second.get_run(one.run_id)) is None
    url = f"sqlite:///{tmp_path / 'third.db'}"
    workflow.storage = url  # a URL: the workflow opens it (and closes it)
    three = workflow.run("z")
    workflow.close()
    assert asyncio.run(second.get_run(three.run_id)) is None

    async def in_third() -> str | None:
        third = SqliteDb(db_url=url)
        await third.setup()
        try:
            record = await third.get_run(three.run_id)
            return None if record is None else record.status
        finally:
            await third.close()

    assert asyncio.run(in_third()) == RunStatus.COMPLETED.value
