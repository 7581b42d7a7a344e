"""Time travel (issue #15): recording, resuming inside a step, replay, cassettes.

Written as Agno code (``db=SqliteDb(...)``, ``Step(agent=...)``), with only the imports and the
models changed: plait's offline FunctionModel stands in for a provider, and counts its calls.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel

from plait import Agent, ReplayDivergenceError, RunStatus, Step, StepInput, Workflow
from plait.errors import DefinitionError, StepError
from plait.events import RunContentEvent, ToolCallCompletedEvent
from plait.models import ToolCall
from plait.storage import SCHEMA_VERSION, InMemoryDb, SqliteDb
from plait.testing import FunctionModel, cassette


class Calls:
    """A scripted model that asks for ``add`` once, then answers with the tool's result."""

    def __init__(self) -> None:
        self.model = 0
        self.tool = 0
        self.fail_at: int | None = None

    def reply(self, messages: list[Any]) -> Any:
        self.model += 1
        if self.fail_at == self.model:
            raise RuntimeError("the process died here")
        if messages[-1].role != "tool":
            return ToolCall(f"c{self.model}", "add", {"a": 2, "b": 3})
        return f"The sum is {messages[-1].content}"

    def add(self, a: int, b: int) -> int:
        """Add two numbers."""
        self.tool += 1
        return a + b


def calculator(calls: Calls, instructions: str = "Add the numbers.", **options: Any) -> Agent:
    return Agent(
        name="Calculator",
        model=FunctionModel(calls.reply, model="calc"),
        tools=[calls.add],
        instructions=instructions,
        **options,
    )


def workflow(calls: Calls, db: Any, **options: Any) -> Workflow:
    agent = calculator(calls, **options.pop("agent_options", {}))

    def report(step_input: StepInput) -> str:
        return f"report: {step_input.previous_step_content}"

    return Workflow(
        name="Sums",
        steps=[Step(name="calculate", agent=agent), Step(name="report", executor=report)],
        db=db,
        **options,
    )


# -- replay -------------------------------------------------------------------------------


def test_replay_answers_every_call_from_the_record(tmp_path: Path) -> None:
    calls = Calls()
    flow = workflow(calls, SqliteDb(db_file=str(tmp_path / "agno.db")))
    original = flow.run("add 2 and 3")
    assert original.content == "report: The sum is 5"
    assert (calls.model, calls.tool) == (2, 1)

    replayed = flow.replay(original.run_id)
    assert (calls.model, calls.tool) == (2, 1)  # zero live calls, no second side effect
    assert replayed.content == original.content
    assert replayed.run_id != original.run_id
    assert replayed.lineage == {"replay_of": original.run_id}
    assert replayed.replay_differences == []
    assert replayed.status is RunStatus.COMPLETED

    async def again() -> Any:
        return await flow.areplay(original.run_id)

    assert asyncio.run(again()).content == original.content
    assert (calls.model, calls.tool) == (2, 1)
    flow.close()


def test_replay_of_a_changed_prompt_names_the_step_and_shows_the_change() -> None:
    calls = Calls()
    db = InMemoryDb()
    original = workflow(calls, db).run("add 2 and 3")
    changed = workflow(calls, db, agent_options={"instructions": "Add the numbers carefully."})
    with pytest.raises(ReplayDivergenceError) as caught:
        changed.replay(original.run_id)
    error = caught.value
    assert error.step_id == "calculate"
    message = str(error)
    assert f"replay of run {original.run_id!r}: step 'calculate'" in message
    assert '-      "content": "Add the numbers.",' in message
    assert '+      "content": "Add the numbers carefully.",' in message
    assert error.recorded["messages"][0]["content"] == "Add the numbers."
    assert error.request["messages"][0]["content"] == "Add the numbers carefully."
    assert calls.model == 2  # the divergent request was never sent

    # live=True: unmatched calls go to the model, the rest is answered from the record
    output = changed.replay(original.run_id, live=True)
    assert calls.model == 4 and calls.tool == 1  # the tool call matched the record
    assert output.content == original.content


def test_replay_of_an_added_agent_step_stops_there() -> None:
    calls = Calls()
    db = InMemoryDb()
    original = workflow(calls, db).run("add")
    grown = Workflow(
        name="Sums",
        steps=[*workflow(calls, db).nodes, Step(name="again", agent=calculator(calls))],
        db=db,
    )
    with pytest.raises(
        ReplayDivergenceError, match=r"step 'again' made model request #1, which the record does not have"
    ):
        grown.replay(original.run_id)


def test_function_steps_run_again_and_their_differences_are_reported() -> None:
    calls = Calls()
    seen: list[int] = []

    def stamp(step_input: StepInput) -> dict[str, Any]:
        seen.append(1)
        return {"runs": len(seen), "sum": step_input.previous_step_content}

    flow = Workflow(
        name="Stamped",
        steps=[Step(name="calculate", agent=calculator(calls)), Step(name="stamp", executor=stamp)],
        db=InMemoryDb(),
    )
    original = flow.run("add")
    replayed = flow.replay(original.run_id)
    assert len(seen) == 2  # the function step ran again
    assert replayed.replay_differences == [
        {
            "step_id": "stamp",
            "original": {"runs": 1, "sum": "The sum is 5"},
            "replay": {"runs": 2, "sum": "The sum is 5"},
        }
    ]
    stored = asyncio.run(flow.storage.load_events(replayed.run_id))  # type: ignore[union-attr]
    assert [e["data"]["replay_differences"] for e in stored if e["event"] == "Custom"] == [
        replayed.replay_differences
    ]


def test_replay_needs_storage_a_known_run_and_the_same_workflow() -> None:
    calls = Calls()
    with pytest.raises(DefinitionError, match="replay needs the storage"):
        Workflow(name="Bare", steps=[Step(name="calculate", agent=calculator(calls))]).replay("r1")
    db = InMemoryDb()
    flow = workflow(calls, db)
    with pytest.raises(DefinitionError, match="no run 'nope'"):
        flow.replay("nope")
    original = flow.run("add")
    other = Workflow(name="Other", steps=[Step(name="calculate", agent=calculator(calls))], db=db)
    with pytest.raises(DefinitionError, match="belongs to workflow 'sums', not 'other'"):
        other.replay(original.run_id)


def test_spans_of_a_replay_say_so() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    calls = Calls()
    flow = workflow(calls, InMemoryDb(), tracer_provider=provider)
    original = flow.run("add")
    assert not any("plait.replayed" in (s.attributes or {}) for s in exporter.get_finished_spans())
    exporter.clear()
    flow.replay(original.run_id)
    spans = exporter.get_finished_spans()
    top = [s for s in spans if (s.attributes or {}).get("plait.replay.of") == original.run_id]
    assert len(top) == 1 and top[0].attributes["plait.nested_depth"] == 0  # type: ignore[index]
    replayed = sorted(s.name for s in spans if (s.attributes or {}).get("plait.replayed") is True)
    assert len(replayed) == 3  # two model calls and one tool call, none made
    assert any(name.startswith("execute_tool") for name in replayed)


def test_structured_output_and_tool_results_of_any_type_survive_the_record() -> None:
    class Forecast(BaseModel):
        city: str
        when: dt.date

    model_calls: list[int] = []

    def reply(messages: list[Any]) -> Any:
        model_calls.append(1)
        if messages[-1].role != "tool":
            return ToolCall("t1", "weather", {"city": "Oslo"})
        return json.dumps({"city": "Oslo", "when": "2026-01-02"})

    def weather(city: str) -> dict[Any, Any]:
        return {1: (city, dt.datetime(2026, 1, 2, 3, 4)), "ok": True}

    agent = Agent(name="Forecaster", model=FunctionModel(reply), tools=[weather], output_schema=Forecast)
    flow = Workflow(name="Weather", steps=[Step(name="forecast", agent=agent)], db=InMemoryDb())
    original = flow.run("Oslo?")
    replayed = flow.replay(original.run_id)
    assert len(model_calls) == 2
    assert replayed.content == Forecast(city="Oslo", when=dt.date(2026, 1, 2))
    assert isinstance(replayed.content, Forecast)


# -- recording ----------------------------------------------------------------------------


def test_no_storage_builds_no_recorder_and_record_false_stores_nothing() -> None:
    calls = Calls()
    assert Workflow(name="Bare", steps=[Step(name="c", agent=calculator(calls))]).run("add").content
    db = InMemoryDb()
    quiet = workflow(calls, db, record=False)
    output = quiet.run("add")
    assert asyncio.run(db.load_calls(output.run_id)) == []
    assert quiet.record is False
    with pytest.raises(DefinitionError, match="record"):
        Workflow(name="Bad", steps=[Step(name="c", agent=calculator(calls))], record="yes")  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="Agent 'Calculator': record must be True or False, got 'no'"):
        calculator(calls, record="no")


def test_secrets_are_scrubbed_from_the_record_and_replay_still_matches() -> None:
    class KeyedModel(FunctionModel):
        def secrets(self) -> list[str]:
            return ["sk-live-123456"]

    def reply(messages: list[Any]) -> str:
        return f"echo {messages[-1].content}"

    agent = Agent(name="Echo", model=KeyedModel(reply), instructions="The key is sk-live-123456.")
    db = InMemoryDb()
    flow = Workflow(name="Keyed", steps=[Step(name="echo", agent=agent)], db=db)
    original = flow.run("hello sk-live-123456")
    stored = json.dumps(db._payloads)
    assert "sk-live-123456" not in stored and "***" in stored
    # the request matches (fingerprints are taken after scrubbing); what the record holds of
    # the key is the scrubbed text, so a reply that quoted it is replayed scrubbed
    assert original.content == "echo hello sk-live-123456"
    assert flow.replay(original.run_id).content == "echo hello ***"


def test_resume_after_a_crash_inside_the_tool_loop_answers_completed_calls_from_the_record() -> None:
    calls = Calls()
    calls.fail_at = 2  # the second model request (after the tool ran) fails: the run errors
    db = InMemoryDb()
    flow = workflow(calls, db)
    with pytest.raises(StepError, match="the process died here"):
        flow.run("add", run_id="crashy")
    assert (calls.model, calls.tool) == (2, 1)
    calls.fail_at = None
    output = flow.continue_run("crashy")
    assert output.content == "report: The sum is 5"
    # the first model call and the tool call came from the record: one live request more
    assert (calls.model, calls.tool) == (3, 1)
    recorded = asyncio.run(db.load_calls("crashy"))
    assert [(c.kind, c.attempt) for c in recorded] == [("model", 1), ("tool", 1), ("model", 2)]


def test_concurrent_runs_in_threads_record_their_own_calls() -> None:
    calls = Calls()
    db = InMemoryDb()
    flow = workflow(calls, db)
    outputs: list[Any] = []
    threads = [threading.Thread(target=lambda: outputs.append(flow.run("add"))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outputs) == 4
    for output in outputs:
        assert [c.kind for c in asyncio.run(db.load_calls(output.run_id))] == ["model", "tool", "model"]
        assert flow.replay(output.run_id).content == output.content


def test_an_old_sqlite_database_opens_and_is_migrated(tmp_path: Path) -> None:
    from plait.storage._sqlite import _MIGRATIONS

    path = tmp_path / "old.db"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE plait_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    for version in (1, 2):
        for statement in _MIGRATIONS[version]:
            connection.execute(statement)
    connection.execute("INSERT INTO plait_meta VALUES ('schema_version', '2')")
    connection.commit()
    connection.close()
    calls = Calls()
    flow = workflow(calls, SqliteDb(db_file=str(path)))
    original = flow.run("add")
    assert flow.replay(original.run_id).content == original.content
    flow.close()
    check = sqlite3.connect(path)
    assert check.execute("SELECT value FROM plait_meta").fetchall() == [(str(SCHEMA_VERSION),)]
    assert check.execute("SELECT count(*) FROM plait_calls").fetchone()[0] == 6  # 3 + the replay's 3
    check.close()


# -- cassettes ----------------------------------------------------------------------------


def test_a_cassette_records_once_then_replays_without_the_model(tmp_path: Path) -> None:
    path = tmp_path / "cassettes" / "sums.jsonl"
    calls = Calls()
    agent = calculator(calls)
    with cassette(path) as tape:
        assert tape.mode == "record"
        first = agent.run("add 2 and 3")
    assert tape.live == 3 and (calls.model, calls.tool) == (2, 1)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["kind"] for line in lines] == ["model", "tool", "model"]
    assert lines[0]["request"]["messages"][0] == {"role": "system", "content": "Add the numbers."}

    with cassette(path) as tape:
        assert tape.mode == "replay"
        second = agent.run("add 2 and 3")
    assert second.content == first.content == "The sum is 5"
    assert tape.replayed == 3 and (calls.model, calls.tool) == (2, 1)


def test_a_cassette_replays_a_workflow_in_async_code_and_stops_on_a_new_request(tmp_path: Path) -> None:
    path = tmp_path / "flow.jsonl"
    calls = Calls()
    flow = workflow(calls, None)

    async def main() -> None:
        async with cassette(path, mode="record"):
            await flow.arun("add")
        async with cassette(path, mode="replay") as tape:
            output = await flow.arun("add")
            assert output.content == "report: The sum is 5"
            assert tape.replayed == 3
            with pytest.raises(StepError) as caught:
                await flow.arun("subtract")
            cause = caught.value.__cause__
            assert isinstance(cause, ReplayDivergenceError) and cause.step_id == "calculate"
            assert '+      "content": "subtract",' in str(cause)

    asyncio.run(main())
    asyncio.run(main())  # a second event loop: no state left behind
    assert calls.model == 4  # recorded twice (mode="record"), never called in replay


def test_a_cassette_restreams_the_recorded_chunks(tmp_path: Path) -> None:
    path = tmp_path / "stream.jsonl"
    live: list[int] = []

    def reply(messages: list[Any]) -> Any:
        live.append(1)
        yield "Hel"
        yield "lo "
        yield "there"

    agent = Agent(name="Streamer", model=FunctionModel(reply))

    def chunks() -> list[str]:
        return [e.content for e in agent.run("hi", stream=True) if isinstance(e, RunContentEvent)]

    with cassette(path):
        recorded = chunks()
    with cassette(path):
        replayed = chunks()
    assert recorded == replayed == ["Hel", "lo ", "there"]
    assert len(live) == 1


def test_cassette_tool_events_carry_the_recorded_result(tmp_path: Path) -> None:
    path = tmp_path / "tools.jsonl"
    calls = Calls()
    agent = calculator(calls)
    with cassette(path):
        list(agent.run("add", stream=True, stream_events=True))
    with cassette(path):
        events = list(agent.run("add", stream=True, stream_events=True))
    done = [e for e in events if isinstance(e, ToolCallCompletedEvent)]
    assert [(e.tool_name, e.result, e.error) for e in done] == [("add", 5, None)]
    assert calls.tool == 1


def test_cassette_modes_and_bad_input(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="mode must be 'once', 'replay' or 'record', got 'play'"):
        cassette(tmp_path / "x.jsonl", mode="play")
    with pytest.raises(DefinitionError, match="does not exist: record it first"):
        cassette(tmp_path / "missing.jsonl", mode="replay")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"kind": "model"}\n')
    with pytest.raises(DefinitionError, match="line 1: not a recorded call"), cassette(broken):
        pass
    # mode="record" replaces an existing cassette
    calls = Calls()
    path = tmp_path / "again.jsonl"
    with cassette(path):
        calculator(calls).run("add")
    with cassette(path, mode="record"):
        calculator(calls).run("add")
    assert len(path.read_text().splitlines()) == 3
    assert calls.model == 4


def test_a_cassette_wins_over_the_workflows_own_record(tmp_path: Path) -> None:
    path = tmp_path / "wins.jsonl"
    calls = Calls()
    db = InMemoryDb()
    flow = workflow(calls, db)
    with cassette(path):
        flow.run("add")
    with cassette(path):
        output = flow.run("add")
    assert output.content == "report: The sum is 5"
    assert calls.model == 2


@pytest.mark.parametrize("durability", ["batch", "exit"])
def test_calls_are_written_with_the_checkpoints_under_batch_and_exit_durability(durability: str) -> None:
    calls = Calls()
    db = InMemoryDb()
    flow = workflow(calls, db, durability=durability)
    original = flow.run("add")
    assert [c.kind for c in asyncio.run(db.load_calls(original.run_id))] == ["model", "tool", "model"]
    assert flow.replay(original.run_id).content == original.content
    assert calls.model == 2


def test_a_team_step_is_replayed_without_calling_its_leader_or_members() -> None:
    from plait import Team

    live: list[str] = []

    def model(name: str) -> FunctionModel:
        def reply(messages: list[Any]) -> str:
            live.append(name)
            return f"{name}: {messages[-1].content}"

        return FunctionModel(reply, model=name)

    team = Team(
        name="Desk",
        members=[
            Agent(name="Researcher", model=model("researcher"), instructions="Research."),
            Agent(name="Writer", model=model("writer"), instructions="Write."),
        ],
        model=model("leader"),
        delegate_to_all_members=True,
    )
    flow = Workflow(name="Desk flow", steps=[Step(name="desk", team=team)], db=InMemoryDb())
    original = flow.run("tides")
    made = len(live)
    assert made >= 3
    replayed = flow.replay(original.run_id)
    assert len(live) == made
    assert replayed.content == original.content
