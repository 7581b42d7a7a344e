"""Workflow history (plait._workflow_history): Agno's ``add_workflow_history_to_steps`` and
``Step(add_workflow_history=...)``, what the model server receives through the real OpenAI
SDK, ``StepInput.get_workflow_history`` in a step's code on every storage backend and across
processes, caching, and clear errors."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from plait import Agent, Step, StepInput, StepOutput, Workflow
from plait.errors import DefinitionError, StepError
from plait.storage import Storage
from plait_openai import OpenAIModel
from tests.servers.openai_server import OpenAIServer, openai_server
from tests.storage.conftest import BACKENDS

__all__ = ["openai_server"]


def _user(request: dict[str, Any]) -> str:
    """The user message of a chat request."""
    (content,) = [m["content"] for m in request["messages"] if m["role"] == "user"]
    return str(content)


@pytest.fixture
async def model(openai_server: OpenAIServer) -> AsyncIterator[OpenAIModel]:
    async with OpenAIModel("gpt-4o-mini", base_url=openai_server.base_url, api_key="k") as model:
        yield model


async def test_agent_steps_get_the_last_runs_of_the_session(
    openai_server: OpenAIServer, model: OpenAIModel
) -> None:
    writer = Agent(name="Writer", model=model)
    flow = Workflow(name="Content", steps=[writer], add_workflow_history_to_steps=True, num_history_runs=2)
    await flow.arun("AI in healthcare", session_id="s")
    assert _user(openai_server.chat_requests[-1]) == "AI in healthcare"  # no earlier run: the message alone
    await flow.arun("make it family-focused", session_id="s")
    await flow.arun("shorter", session_id="s")
    assert _user(openai_server.chat_requests[-1]) == (
        "<workflow_history_context>\n"
        "[Workflow Run-1]\nUser input: AI in healthcare\nWorkflow output: Echo: AI in healthcare\n\n"
        "[Workflow Run-2]\nUser input: make it family-focused\n"
        "Workflow output: Echo: <workflow_history_context>\n"
        "[Workflow Run-1]\nUser input: AI in healthcare\nWorkflow output: Echo: AI in healthcare\n\n"
        "</workflow_history_context>\nmake it family-focused\n\n"
        "</workflow_history_context>\nshorter"
    )
    await flow.arun("another topic", session_id="other")  # another session has no history
    assert _user(openai_server.chat_requests[-1]) == "another topic"
    await flow.arun("fourth", session_id="s")  # bounded to num_history_runs=2
    fourth = _user(openai_server.chat_requests[-1])
    assert fourth.startswith(
        "<workflow_history_context>\n[Workflow Run-1]\nUser input: make it family-focused\n"
    )
    assert "\n[Workflow Run-2]\nUser input: shorter\n" in fourth
    assert "[Workflow Run-3]" not in fourth


async def test_a_step_turns_it_on_or_off_for_itself(openai_server: OpenAIServer, model: OpenAIModel) -> None:
    research = Agent(name="Research", model=model)
    publish = Agent(name="Publish", model=model)
    flow = Workflow(
        name="Steps",
        steps=[
            Step(name="research", agent=research, add_workflow_history=True, num_history_runs=1),
            Step(name="publish", agent=publish),
        ],
    )
    await flow.arun("first", session_id="s")
    await flow.arun("second", session_id="s")
    research_request, publish_request = openai_server.chat_requests[-2:]
    assert _user(research_request).startswith(
        "<workflow_history_context>\n[Workflow Run-1]\nUser input: first\n"
    )
    assert _user(research_request).endswith("</workflow_history_context>\nsecond")
    assert "workflow_history_context" not in _user(publish_request).replace(_user(research_request), "")

    off = Workflow(
        name="Off",
        steps=[Step(name="quiet", agent=research, add_workflow_history=False)],
        add_workflow_history_to_steps=True,
    )
    await off.arun("one", session_id="t")
    await off.arun("two", session_id="t")
    assert _user(openai_server.chat_requests[-1]) == "two"


def _history_reader(seen: list[Any]) -> Any:
    def read(step_input: StepInput) -> StepOutput:
        seen.append((step_input.get_workflow_history(), step_input.get_workflow_history(num_runs=1)))
        seen.append(step_input.get_workflow_history_context(num_runs=1))
        return StepOutput(content={"n": len(seen)})

    return read


@pytest.fixture(params=sorted(BACKENDS))
def storage(request: Any, tmp_path: Path) -> Iterator[Storage]:
    backend = BACKENDS[request.param](tmp_path)
    yield backend

    async def cleanup() -> None:
        drop = getattr(backend, "drop", None)
        if drop is not None:
            await drop()
        await backend.close()

    asyncio.run(cleanup())


def test_a_function_step_reads_the_stored_runs(storage: Storage) -> None:
    seen: list[Any] = []
    flow = Workflow(name="Reader", steps=[_history_reader(seen)], storage=storage)
    flow.run("alpha", session_id="s")
    flow.run({"topic": "beta", "words": 300}, session_id="s")
    flow.run("elsewhere", session_id="other")
    # a second workflow object on the same storage (another process would do the same)
    again = Workflow(name="Reader", steps=[_history_reader(seen)], storage=storage)
    again.run("gamma", session_id="s")
    everything, last = seen[-2]
    assert everything == [("alpha", '{"n": 2}'), ('{"topic": "beta", "words": 300}', '{"n": 4}')]
    assert last == [('{"topic": "beta", "words": 300}', '{"n": 4}')]
    assert seen[-1] == (
        '<workflow_history_context>\n[Workflow Run-1]\nUser input: {"topic": "beta", "words": 300}\n'
        'Workflow output: {"n": 4}\n\n</workflow_history_context>\n'
    )
    assert seen[0] == ([], [])  # the first run of a session has none
    assert seen[1] is None


def test_an_async_step_and_a_failed_run(tmp_path: Path) -> None:
    seen: list[Any] = []

    async def read(step_input: StepInput) -> str:
        seen.append(step_input.get_workflow_history())
        if step_input.input == "fail":
            raise ValueError("boom")
        return f"done {step_input.input}"

    flow = Workflow(name="Async reader", steps=[read], storage=f"sqlite:///{tmp_path / 'runs.db'}")

    async def main() -> None:
        await flow.arun("one", session_id="s")
        with pytest.raises(StepError, match="boom"):
            await flow.arun("fail", session_id="s")
        await flow.arun("two", session_id="s")

    asyncio.run(main())
    asyncio.run(flow.arun("three", session_id="s"))  # another event loop, the same storage
    assert seen[-1] == [("one", "done one"), ("two", "done two")]  # the failed run is not history
    flow.close()


def test_without_storage_runs_are_kept_in_memory_only_when_asked() -> None:
    seen: list[Any] = []
    flow = Workflow(name="Memory", steps=[_history_reader(seen)], add_workflow_history_to_steps=True)
    flow.run("a", session_id="s")
    flow.run("b", session_id="s")
    assert seen[-2][0] == [("a", '{"n": 2}')]

    plain = Workflow(name="Plain", steps=[_history_reader([])])
    with pytest.raises(StepError) as failed:
        plain.run("a", session_id="s")
    assert "without storage a workflow keeps its runs for get_workflow_history() only when asked" in str(
        failed.value
    )
    assert "add_workflow_history_to_steps=True" in str(failed.value)


def test_bad_options_are_clear_errors() -> None:
    with pytest.raises(DefinitionError, match=r"num_history_runs must be a number of earlier runs .* got -1"):
        Workflow(name="W", steps=[lambda s: 1], num_history_runs=-1)
    with pytest.raises(
        DefinitionError, match="add_workflow_history_to_steps must be True or False, got 'yes'"
    ):
        Workflow(name="W", steps=[lambda s: 1], add_workflow_history_to_steps="yes")  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match=r"Step 'x': num_history_runs must be .* got '3'"):
        Step(name="x", executor=lambda s: 1, num_history_runs="3")  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="call it in a step's code, during a run"):
        StepInput("x").get_workflow_history()

    def bad(step_input: StepInput) -> Any:
        return step_input.get_workflow_history(num_runs=True)  # type: ignore[arg-type]

    with pytest.raises(
        StepError, match=r"get_workflow_history\(\): num_runs must be a number of earlier runs"
    ):
        Workflow(name="W", steps=[bad], add_workflow_history_to_steps=True).run("x")


async def test_a_cached_step_is_reused_only_with_the_same_history(
    openai_server: OpenAIServer, model: OpenAIModel, tmp_path: Path
) -> None:
    writer = Agent(name="Writer", model=model)
    flow = Workflow(
        name="Cached",
        steps=[Step(name="write", agent=writer, cache=True)],
        add_workflow_history_to_steps=True,
        storage=f"sqlite:///{tmp_path / 'runs.db'}",
    )
    await flow.arun("same", session_id="a")
    await flow.arun("same", session_id="b")  # no history in either: the cached answer
    assert len(openai_server.chat_requests) == 1
    await flow.arun("same", session_id="a")  # session a has a run now: not the same question
    assert len(openai_server.chat_requests) == 2
    await flow.aclose()


_CHILD = textwrap.dedent(
    """
    import sys
    from plait import Workflow

    def read(step_input):
        return [list(pair) for pair in step_input.get_workflow_history()]

    flow = Workflow(name="Across", steps=[read], storage=sys.argv[1])
    print(flow.run(sys.argv[2], session_id="shared").content)
    """
)


def test_runs_of_other_processes_are_history(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    outputs = []
    for text in ("first", "second", "third"):
        done = subprocess.run(
            [sys.executable, str(script), url, text], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout.strip())
    assert outputs[0] == "[]"
    assert outputs[2] == "[['first', '[]'], ['second', '[[\"first\", \"[]\"]]']]"


@pytest.mark.parametrize("stored", [False, True])
async def test_a_nested_workflow_s_steps_see_the_parent_s_runs_by_their_own_switch(
    openai_server: OpenAIServer, model: OpenAIModel, tmp_path: Path, stored: bool
) -> None:
    # As in Agno, a nested workflow runs in its parent's session with its own
    # add_workflow_history_to_steps: its agent steps see the session's earlier runs (the
    # parent's: a nested run is part of its parent's run) when the nested workflow asks for them.
    storage = f"sqlite:///{tmp_path / 'runs.db'}" if stored else None
    asks = Workflow(name="asks", steps=[Agent(name="Inner", model=model)], add_workflow_history_to_steps=True)
    silent = Workflow(name="silent", steps=[Agent(name="Quiet", model=model)])
    outer = Workflow(name="outer", steps=[asks], storage=storage)
    plain = Workflow(name="plain", steps=[silent], add_workflow_history_to_steps=True, storage=storage)
    await outer.arun("first topic", session_id="s")
    assert _user(openai_server.chat_requests[-1]) == "first topic"
    await outer.arun("second topic", session_id="s")
    assert _user(openai_server.chat_requests[-1]) == (
        "<workflow_history_context>\n"
        "[Workflow Run-1]\nUser input: first topic\nWorkflow output: Echo: first topic\n\n"
        "</workflow_history_context>\nsecond topic"
    )
    if stored:  # a step's code in a nested workflow reads them too (the runs of "outer" in "s")
        seen: list[Any] = []
        reader = Workflow(
            name="reader", steps=[Step(name="read", executor=lambda i: seen.append(i.get_workflow_history()))]
        )
        await Workflow(name="outer", steps=[reader], storage=storage).arun("third", session_id="s")
        assert [run[0] for run in seen[0]] == ["first topic", "second topic"]
    # the parent's switch is the parent's steps': the nested workflow's steps do not get it
    await plain.arun("one", session_id="p")
    await plain.arun("two", session_id="p")
    assert _user(openai_server.chat_requests[-1]) == "two"
