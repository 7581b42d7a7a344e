"""Conversation history (plait._history) through the real OpenAI SDK against the local
OpenAI-protocol server: what the server receives on the next turn of a session, bounded to
``history=N`` runs, tool calls kept, clearing, an agent inside a workflow step, and two
processes adding to one session on SQLite, PostgreSQL and Redis without losing a turn."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from plait import Agent, Step, Team, Workflow
from plait.errors import DefinitionError
from plait.storage import Storage
from plait.testing import FunctionModel
from plait_openai import OpenAIModel
from tests.servers.openai_server import OpenAIServer, Reply, ToolCallReply, openai_server
from tests.storage.conftest import BACKENDS

__all__ = ["openai_server"]


def _said(request: dict[str, Any]) -> list[tuple[str, str | None]]:
    """A chat request's messages as (role, content), system prompt left out."""
    return [(m["role"], m.get("content")) for m in request["messages"] if m["role"] != "system"]


@pytest.fixture
async def model(openai_server: OpenAIServer) -> AsyncIterator[OpenAIModel]:
    async with OpenAIModel("gpt-4o-mini", base_url=openai_server.base_url, api_key="k") as model:
        yield model


async def test_the_second_turn_carries_the_first(openai_server: OpenAIServer, model: OpenAIModel) -> None:
    agent = Agent(name="Chat", model=model, instructions="Be brief.", add_history_to_context=True)
    await agent.arun("My name is Ada.", session_id="s1")
    await agent.arun("What is my name?", session_id="s1")
    _, second = openai_server.chat_requests
    assert second["messages"][0] == {"role": "system", "content": "Be brief."}
    assert _said(second) == [
        ("user", "My name is Ada."),
        ("assistant", "Echo: My name is Ada."),
        ("user", "What is my name?"),
    ]
    await agent.arun("Hello", session_id="other")  # another session starts empty
    assert _said(openai_server.chat_requests[-1]) == [("user", "Hello")]


async def test_history_is_bounded_to_n_runs(openai_server: OpenAIServer, model: OpenAIModel) -> None:
    agent = Agent(name="Chat", model=model, history=2)
    for turn in ("one", "two", "three", "four"):
        await agent.arun(turn, session_id="s")
    assert [c for r, c in _said(openai_server.chat_requests[-1]) if r == "user"] == ["two", "three", "four"]
    assert len(await agent.aget_history("s")) == 8  # all four runs are kept, two are sent


async def test_tool_calls_and_results_are_part_of_the_history(
    openai_server: OpenAIServer, model: OpenAIModel
) -> None:
    def lookup(city: str) -> str:
        """Weather.

        Args:
            city: the city
        """
        return f"sunny in {city}"

    openai_server.enqueue(
        Reply(tool_calls=[ToolCallReply("lookup", {"city": "Oslo"}, id="call_1")]), "Sunny."
    )
    agent = Agent(name="Weather", model=model, tools=[lookup], history=True)
    await agent.arun("Weather in Oslo?", session_id="w")
    await agent.arun("And tomorrow?", session_id="w")
    last = openai_server.chat_requests[-1]["messages"]
    roles = [m["role"] for m in last if m["role"] != "system"]
    assert roles == ["user", "assistant", "tool", "assistant", "user"]
    assert last[-4]["tool_calls"][0]["id"] == "call_1"  # the pair the API requires stays whole
    assert last[-3] == {"role": "tool", "tool_call_id": "call_1", "content": "sunny in Oslo"}


async def test_num_history_messages_bounds_the_history_by_messages(
    openai_server: OpenAIServer, model: OpenAIModel
) -> None:
    """Agno's num_history_messages: the last N messages of the session, whatever runs they come
    from, never starting with a tool result whose call was cut off."""
    agent = Agent(name="Chat", model=model, num_history_messages=3)
    for turn in ("one", "two", "three", "four", "five"):
        await agent.arun(turn, session_id="s")
    assert _said(openai_server.chat_requests[-1]) == [
        ("assistant", "Echo: three"),
        ("user", "four"),
        ("assistant", "Echo: four"),
        ("user", "five"),
    ]

    def lookup(city: str) -> str:
        """Weather.

        Args:
            city: the city
        """
        return f"sunny in {city}"

    openai_server.enqueue(Reply(tool_calls=[ToolCallReply("lookup", {"city": "Oslo"}, id="c1")]), "Sunny.")
    weather = Agent(name="Weather", model=model, tools=[lookup], num_history_messages=2)
    await weather.arun("Weather in Oslo?", session_id="w")  # user, assistant(call), tool, assistant
    await weather.arun("And tomorrow?", session_id="w")
    assert _said(openai_server.chat_requests[-1]) == [("assistant", "Sunny."), ("user", "And tomorrow?")]


async def test_max_tool_calls_from_history_keeps_the_latest_calls(
    openai_server: OpenAIServer, model: OpenAIModel
) -> None:
    """Agno's max_tool_calls_from_history: older tool results and their calls are left out of
    the history sent, the latest N kept whole (call and result); the session keeps them all."""

    def lookup(city: str) -> str:
        """Weather.

        Args:
            city: the city
        """
        return f"sunny in {city}"

    for number, city in enumerate(("Oslo", "Rome", "Lima"), 1):
        openai_server.enqueue(
            Reply(tool_calls=[ToolCallReply("lookup", {"city": city}, id=f"c{number}")]), f"Sunny in {city}."
        )
    agent = Agent(name="Weather", model=model, tools=[lookup], history=5, max_tool_calls_from_history=1)
    for city in ("Oslo", "Rome", "Lima"):
        await agent.arun(f"Weather in {city}?", session_id="w")
    await agent.arun("Thanks.", session_id="w")
    sent = [m for m in openai_server.chat_requests[-1]["messages"] if m["role"] != "system"]
    assert [m.get("tool_call_id") for m in sent if m["role"] == "tool"] == ["c3"]
    assert [c["id"] for m in sent for c in m.get("tool_calls") or []] == ["c3"]
    assert [m["content"] for m in sent if m["role"] == "user"] == [
        "Weather in Oslo?",
        "Weather in Rome?",
        "Weather in Lima?",
        "Thanks.",
    ]
    assert sum(m.role == "tool" for m in await agent.aget_history("w")) == 3


async def test_without_history_the_session_is_kept_but_not_sent(
    openai_server: OpenAIServer, model: OpenAIModel
) -> None:
    agent = Agent(name="Chat", model=model)  # Agno's default: add_history_to_context=False
    await agent.arun("one", session_id="s")
    await agent.arun("two", session_id="s")
    assert _said(openai_server.chat_requests[-1]) == [("user", "two")]
    assert [m.content for m in await agent.aget_history("s")] == ["one", "Echo: one", "two", "Echo: two"]
    await agent.arun("three")  # no session: nothing kept
    assert len(await agent.aget_history("s")) == 4


def test_sync_run_get_and_clear(tmp_path: Path) -> None:
    """The sync forms (a FunctionModel: the sync entry points' own event loop outlives an SDK client)."""
    seen: list[list[str | None]] = []

    def reply(messages: list[Any]) -> str:
        seen.append([m.content for m in messages])
        return "ok"

    agent = Agent(
        name="Chat", model=FunctionModel(reply), history=3, storage=f"sqlite:///{tmp_path / 'c.db'}"
    )
    agent.run("one", session_id="s")
    agent.run("two", session_id="s")
    assert seen[-1] == ["one", "ok", "two"]
    assert len(agent.get_history("s")) == 4
    agent.clear_history("s")
    assert agent.get_history("s") == []
    agent.run("three", session_id="s")
    assert seen[-1] == ["three"]


async def test_a_streamed_run_joins_the_session(openai_server: OpenAIServer, model: OpenAIModel) -> None:
    agent = Agent(name="Chat", model=model, history=1)
    await agent.arun("one", session_id="s")
    chunks = [e.content async for e in agent.arun("two", stream=True, session_id="s")]
    assert "".join(chunks) == "Echo: two"
    assert _said(openai_server.chat_requests[-1])[0] == ("user", "one")
    assert [m.content for m in await agent.aget_history("s")][-1] == "Echo: two"


async def test_a_team_keeps_its_leaders_conversation(openai_server: OpenAIServer, model: OpenAIModel) -> None:
    member = Agent(name="Writer", model=model)
    team = Team(name="Desk", members=[member], model=model, num_history_runs=1)
    await team.arun("first", session_id="t")
    await team.arun("second", session_id="t")
    assert ("user", "first") in _said(openai_server.chat_requests[-1])
    assert (await team.aget_history("t"))[0].content == "first"


async def test_an_agent_in_a_workflow_step_continues_the_workflow_session(
    openai_server: OpenAIServer, model: OpenAIModel, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'flow.db'}"
    agent = Agent(name="Chat", model=model, history=2)
    flow = Workflow(name="Chat flow", steps=[Step(name="chat", agent=agent)], storage=url)
    await flow.arun("Remember 42.", session_id="conv")
    await flow.arun("What did I ask you to remember?", session_id="conv")
    assert ("user", "Remember 42.") in _said(openai_server.chat_requests[-1])
    await flow.arun("Fresh start", session_id="another")
    assert _said(openai_server.chat_requests[-1]) == [("user", "Fresh start")]
    history = await agent.aget_history("conv", storage=url)  # kept in the workflow's storage
    assert [m.content for m in history if m.role == "user"] == [
        "Remember 42.",
        "What did I ask you to remember?",
    ]
    await flow.aclose()


def test_bad_history_options_are_clear_errors() -> None:
    with pytest.raises(DefinitionError, match="history must be True, False or a number of past runs"):
        Agent(name="A", model="offline:demo", history=-1)
    with pytest.raises(DefinitionError, match="not both"):
        Agent(name="A", model="offline:demo", history=2, num_history_runs=3)
    with pytest.raises(DefinitionError, match="num_history_messages must be a number"):
        Agent(name="A", model="offline:demo", num_history_messages=-2)
    with pytest.raises(DefinitionError, match="max_tool_calls_from_history must be a number"):
        Agent(name="A", model="offline:demo", history=2, max_tool_calls_from_history="3")
    with pytest.raises(DefinitionError, match="give one of them"):
        Agent(name="A", model="offline:demo", num_history_runs=2, num_history_messages=5)
    with pytest.raises(DefinitionError, match="session_id must be a non-empty string"):
        Agent(name="A", model="offline:demo").run("x", session_id="")


# -- across processes, on each storage backend ------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import sys
    from plait import Agent
    from plait_openai import OpenAIModel

    kind, where, base_url, text = sys.argv[1:]
    if kind == "postgres":
        from plait_postgres import PostgresStorage
        storage = PostgresStorage("postgresql://127.0.0.1:5432/test", schema=where)
    elif kind == "redis":
        from plait_redis import RedisStorage
        storage = RedisStorage("redis://127.0.0.1:6379/0", prefix=where)
    else:
        storage = where
    model = OpenAIModel("gpt-4o-mini", base_url=base_url, api_key="k")
    agent = Agent(name="Chat", model=model, history=10, storage=storage)
    print(agent.run(text, session_id="shared").content)
    """
)


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def backend(request: Any, tmp_path: Path) -> Iterator[tuple[str, str, Storage]]:
    """(kind, what a child process needs to open it, the storage object) for one backend."""
    storage = BACKENDS[request.param](tmp_path)
    where = str(getattr(storage, "schema", None) or getattr(storage, "prefix", None) or storage.url)
    yield request.param, where, storage

    async def cleanup() -> None:
        drop = getattr(storage, "drop", None)
        if drop is not None:
            await drop()
        await storage.close()

    asyncio.run(cleanup())


def test_two_processes_add_to_one_session_and_a_third_sees_both(
    openai_server: OpenAIServer, backend: tuple[str, str, Storage], tmp_path: Path
) -> None:
    kind, where, storage = backend
    script = tmp_path / "child.py"
    script.write_text(_CHILD)

    def start(text: str) -> subprocess.Popen[str]:
        command = [sys.executable, str(script), kind, where, openai_server.base_url, text]
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    children = [start("from the first process"), start("from the second process")]  # at once
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        assert out.startswith("Echo: from the")
    third = start("and now?")
    out, err = third.communicate(timeout=120)
    assert third.returncode == 0, err
    said = _said(openai_server.chat_requests[-1])
    assert sorted(c for r, c in said[:-1] if r == "user") == [
        "from the first process",
        "from the second process",
    ]
    assert said[-1] == ("user", "and now?")
    reader = Agent(name="Chat", model="offline:demo", storage=storage)
    assert [m.content for m in reader.get_history("shared")][-2:] == ["and now?", "Echo: and now?"]
    reader.clear_history("shared")
    assert reader.get_history("shared") == []


def test_a_resumed_step_does_not_add_its_turn_twice(openai_server: OpenAIServer, tmp_path: Path) -> None:
    """Killed (SIGKILL) after the agent step ran but before anything was checkpointed: the
    resumed run runs the step again, its model call answered from the record, and the
    conversation keeps the turn once."""
    import os
    import signal
    import time

    from tests.durability import chatty

    root = Path(__file__).resolve().parents[2]
    script = Path(chatty.__file__)
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    log = tmp_path / "log"
    env = {**os.environ, "PLAIT_TEST_LOG": str(log), "PYTHONPATH": str(root)}
    command = [sys.executable, str(script), url, openai_server.base_url]
    process = subprocess.Popen(
        [*command, "run", "r1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while not Path(f"{log}.blocked").exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run never reached its second step"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    workflow, agent = chatty.build(url, openai_server.base_url)
    assert len(agent.get_history("conv", storage=url)) == 2  # the turn was kept before the kill
    resumed = subprocess.run(
        [*command, "resume", "r1"],
        env={**env, "PLAIT_NO_BLOCK": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert '"status": "COMPLETED"' in resumed.stdout
    assert len(openai_server.chat_requests) == 1  # answered from the record
    history = agent.get_history("conv", storage=url)
    assert [(m.role, m.content) for m in history] == [
        ("user", "Remember 42."),
        ("assistant", "Echo: Remember 42."),
    ]
    workflow.close()
