"""The reasoning an OpenAI-compatible server returns beside the answer (``reasoning_content``:
DeepSeek, vLLM) is kept on the assistant message, streamed or not, and is not sent back (those
servers refuse it in a request); OpenAI's own Chat Completions return none (issue #20, item 5)."""

from __future__ import annotations

import pytest

from plait import Agent
from plait.models import Message, ModelRequest, ModelResponse, Reasoning
from plait_openai import OpenAIModel
from tests.servers.openai_server import OpenAIServer, Reply, ToolCallReply

THOUGHT = "The user greets me; a short greeting back is enough."


@pytest.mark.parametrize("streamed", [False, True])
async def test_reasoning_content_is_kept(
    model: OpenAIModel, openai_server: OpenAIServer, streamed: bool
) -> None:
    openai_server.enqueue(Reply(content="Hello!", reasoning_content=THOUGHT))
    request = ModelRequest([Message("user", "Hi")])
    if streamed:
        response = [item async for item in model.stream(request)][-1]
        assert isinstance(response, ModelResponse)
    else:
        response = await model.complete(request)
    assert response.message.content == "Hello!"
    assert response.message.reasoning == [Reasoning(THOUGHT, provider="openai")]


async def test_without_reasoning_content_there_is_none(
    model: OpenAIModel, openai_server: OpenAIServer
) -> None:
    response = await model.complete(ModelRequest([Message("user", "Hi")]))
    assert response.message.reasoning == []


async def test_reasoning_is_not_sent_back_in_a_tool_loop(
    model: OpenAIModel, openai_server: OpenAIServer
) -> None:
    def shout(text: str) -> str:
        """Upper-case the text."""
        return text.upper()

    openai_server.enqueue(
        Reply(tool_calls=[ToolCallReply("shout", {"text": "hi"})], reasoning_content=THOUGHT), "HI it is."
    )
    result = await Agent(name="Shouter", model=model, tools=[shout]).arun("Shout hi")
    assert result.content == "HI it is."
    assistant = openai_server.chat_requests[1]["messages"][1]
    assert assistant["role"] == "assistant" and "reasoning_content" not in assistant
    assert next(m.reasoning for m in result.messages if m.role == "assistant") == [
        Reasoning(THOUGHT, provider="openai")
    ]
