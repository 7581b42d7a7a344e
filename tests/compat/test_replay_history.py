"""Time travel over runs that use history: a replay (or a fork in a new session) of a run whose
agent sent the session's conversation, or whose step was given the workflow's earlier runs,
sends what the original sent, answered from the record with zero live calls; and it leaves the
session's conversation as it was. Real OpenAI SDK over HTTP against the local server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from plait import Agent, Step, StepInput, StepOutput, Workflow
from plait_openai import OpenAIModel
from tests.servers.openai_server import OpenAIServer, openai_server

__all__ = ["openai_server"]


def _said(request: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(m["role"], m.get("content")) for m in request["messages"] if m["role"] != "system"]


@pytest.fixture
async def model(openai_server: OpenAIServer) -> AsyncIterator[OpenAIModel]:
    async with OpenAIModel("gpt-4o-mini", base_url=openai_server.base_url, api_key="k") as model:
        yield model


async def test_a_replay_sends_the_conversation_the_original_sent(
    openai_server: OpenAIServer, model: OpenAIModel, tmp_path: Path
) -> None:
    agent = Agent(name="Chat", model=model, history=3)
    workflow = Workflow(
        name="chat", steps=[Step(name="talk", agent=agent)], storage=f"sqlite:///{tmp_path}/r.db"
    )
    try:
        await workflow.arun("My name is Ada.", session_id="s")
        second = await workflow.arun("What is my name?", session_id="s")
        await workflow.arun("Thanks.", session_id="s")  # after the original: not part of its history
        live = len(openai_server.chat_requests)
        replayed = await workflow.areplay(second.run_id)
        assert len(openai_server.chat_requests) == live  # every call answered from the record
        assert replayed.content == second.content == "Echo: What is my name?"
        assert replayed.replay_differences == []
        # the replay ran in a session of its own: the conversation of "s" did not get its turn
        users = [
            m.content for m in await agent.aget_history("s", storage=workflow.storage) if m.role == "user"
        ]
        assert users == ["My name is Ada.", "What is my name?", "Thanks."]
        await workflow.arun("Who am I?", session_id="s")
        assert [c for r, c in _said(openai_server.chat_requests[-1]) if r == "user"] == [
            "My name is Ada.",
            "What is my name?",
            "Thanks.",
            "Who am I?",
        ]
    finally:
        await workflow.aclose()


async def test_a_replay_gives_steps_the_runs_the_original_was_given(
    openai_server: OpenAIServer, model: OpenAIModel, tmp_path: Path
) -> None:
    seen: list[list[tuple[str, str]]] = []

    def plan(step_input: StepInput) -> StepOutput:
        seen.append(step_input.get_workflow_history())
        return StepOutput(content=f"Write about {step_input.input}.")

    writer = Agent(name="Writer", model=model)
    workflow = Workflow(
        name="series",
        steps=[Step(name="plan", executor=plan), Step(name="write", agent=writer)],
        storage=f"sqlite:///{tmp_path}/r.db",
        add_workflow_history_to_steps=True,
    )
    try:
        await workflow.arun("tea", session_id="s")
        coffee = await workflow.arun("coffee", session_id="s")
        await workflow.arun("cocoa", session_id="s")
        live = len(openai_server.chat_requests)
        replayed = await workflow.areplay(coffee.run_id)
        assert len(openai_server.chat_requests) == live
        assert replayed.content == coffee.content
        assert [topic for topic, _ in seen[-1]] == ["tea"]  # as the original: cocoa came later
        assert seen[-1] == seen[1]
        forked = await workflow.afork(coffee.run_id, at="write", replay=True)
        assert len(openai_server.chat_requests) == live  # the fork's writer sent what it sent then
        assert forked.content == coffee.content
    finally:
        await workflow.aclose()
