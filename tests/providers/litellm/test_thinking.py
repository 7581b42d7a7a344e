"""Extended thinking through LiteLLM (``anthropic/<model>``): the thinking blocks LiteLLM
returns, streamed or not, are kept on the assistant message with their signatures and sent
back as LiteLLM's ``thinking_blocks``, so a tool loop with thinking on works (the local
Anthropic server, like the API, refuses one that drops them or alters their signature)."""

from __future__ import annotations

import pytest

from plait import Agent
from plait.errors import BadRequestError
from plait.models import Message, ModelRequest, ModelResponse, ModelSettings, Reasoning, ToolCall
from plait_litellm import LiteLLMModel
from tests.servers.anthropic_server import (
    AnthropicServer,
    RedactedThinkingBlock,
    Reply,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
    signature_of,
)

from .conftest import LITELLM_WARNINGS

pytestmark = LITELLM_WARNINGS

THINKING = ModelSettings(extra={"thinking": {"type": "enabled", "budget_tokens": 1024}})
PLAN = "The user wants the weather in Paris; I should call get_weather."


def get_weather(city: str) -> str:
    """The weather in a city."""
    return "sunny, 21 C"


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_tool_loop_with_thinking_sends_the_blocks_back(
    anthropic_model: LiteLLMModel, anthropic_server: AnthropicServer, streamed: bool
) -> None:
    anthropic_server.enqueue(
        Reply(content=[ThinkingBlock(PLAN), ToolUseBlock("get_weather", {"city": "Paris"}, id="toolu_1")]),
        Reply.text("It is sunny in Paris."),
    )
    agent = Agent(name="Weather", model=anthropic_model, tools=[get_weather], settings=THINKING)
    if streamed:
        text = "".join([e.content async for e in agent.arun("Weather in Paris?", stream=True)])
        assert text == "It is sunny in Paris."
    else:
        assert (await agent.arun("Weather in Paris?")).content == "It is sunny in Paris."
    assert len(anthropic_server.requests) == 2  # the second was accepted: the thinking came back intact
    sent = anthropic_server.requests[1].json["messages"][1]["content"]
    assert sent[0] == {"type": "thinking", "thinking": PLAN, "signature": signature_of(PLAN)}


@pytest.mark.parametrize("streamed", [False, True])
async def test_thinking_and_redacted_thinking_are_on_the_message(
    anthropic_model: LiteLLMModel, anthropic_server: AnthropicServer, streamed: bool
) -> None:
    anthropic_server.enqueue(
        Reply(content=[ThinkingBlock(PLAN), RedactedThinkingBlock("ENCRYPTED=="), TextBlock("Sunny.")])
    )
    request = ModelRequest([Message("user", "Weather?")], settings=THINKING)
    if streamed:
        response = [item async for item in anthropic_model.stream(request)][-1]
        assert isinstance(response, ModelResponse)
    else:
        response = await anthropic_model.complete(request)
    assert response.message.content == "Sunny."
    assert response.message.reasoning == [
        Reasoning(PLAN, signature=signature_of(PLAN), provider="litellm"),
        Reasoning(redacted="ENCRYPTED==", provider="litellm"),
    ]


async def test_another_providers_thinking_is_not_sent(
    anthropic_model: LiteLLMModel, anthropic_server: AnthropicServer
) -> None:
    """Thinking kept from plait-anthropic (another provider) is not LiteLLM's to send: the server
    refuses the tool loop, as the API would, instead of plait sending a block it cannot vouch for."""
    call = Message(
        "assistant",
        tool_calls=[ToolCall("toolu_1", "get_weather", {"city": "Paris"})],
        reasoning=[Reasoning(PLAN, signature=signature_of(PLAN), provider="anthropic")],
    )
    messages = [Message("user", "Weather?"), call, Message("tool", "sunny", tool_call_id="toolu_1")]
    with pytest.raises(BadRequestError, match="thinking"):
        await anthropic_model.complete(ModelRequest(messages, settings=THINKING))
