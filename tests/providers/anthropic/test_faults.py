"""A misbehaving server, byte by byte: a cut or garbled stream is never taken for a whole answer."""

from __future__ import annotations

import json

import pytest

from plait.errors import ModelConnectionError, ModelError
from plait.models import Message, ModelRequest, ModelResponse, TextDelta, stream_with_retry
from plait_anthropic import AnthropicModel
from tests.servers.anthropic_server import AnthropicServer, Reply

REQUEST = ModelRequest(messages=[Message(role="user", content="Hi")])

ANSWER = "one two three four five six seven"

# The stream's events: message_start, content_block_start, ping, deltas..., so a
# cut after 5 is inside the text; with a close-delimited body a cut connection
# looks to the client exactly like the end of the body.
CUTS = {
    "chunked-clean-end": Reply.text(ANSWER, end_after=5),
    "close-delimited-end": Reply.text(ANSWER, end_after=5, framing="close"),
    "close-delimited-cut": Reply.text(ANSWER, drop_after=5, framing="close"),
    "before-message-stop": Reply.text(ANSWER, end_after=12, framing="close"),
}


@pytest.mark.parametrize("reply", CUTS.values(), ids=CUTS.keys())
async def test_a_stream_without_message_stop_is_a_connection_error(
    model: AnthropicModel, server: AnthropicServer, reply: Reply
) -> None:
    server.enqueue(reply)
    seen: list[str] = []
    with pytest.raises(ModelConnectionError, match="before message_stop") as caught:
        async for item in model.stream(REQUEST):
            assert isinstance(item, TextDelta), f"a cut stream yielded {item!r}"
            seen.append(item.text)
    assert caught.value.retryable and caught.value.provider == "anthropic"
    assert "claude-sonnet-4-5" in str(caught.value)
    assert "".join(seen) != ANSWER or reply.end_after == 12


async def test_a_cut_stream_is_retried_to_the_whole_answer(model: AnthropicModel, server: AnthropicServer) -> None:
    server.enqueue(Reply.text(ANSWER, drop_after=5, framing="close"), Reply.text(ANSWER, framing="close"))
    restarts: list[int] = []
    items = [
        item async for item in stream_with_retry(model, REQUEST, on_retry=lambda n, e, d: restarts.append(n))
    ]
    assert restarts == [1]
    final = items[-1]
    assert isinstance(final, ModelResponse) and final.message.content == ANSWER


async def test_a_malformed_event_is_a_model_error_naming_provider_and_model(
    model: AnthropicModel, server: AnthropicServer
) -> None:
    server.enqueue(Reply.text(ANSWER, malformed_after=4))
    with pytest.raises(ModelError, match=r"Anthropic model 'claude-sonnet-4-5'.*not valid JSON") as caught:
        async for _ in model.stream(REQUEST):
            pass
    assert caught.value.provider == "anthropic"
    assert isinstance(caught.value.__cause__, json.JSONDecodeError)


async def test_a_malformed_body_is_a_model_error_naming_provider_and_model(
    model: AnthropicModel, server: AnthropicServer
) -> None:
    server.enqueue(Reply.text(ANSWER, malformed_after=40))
    with pytest.raises(ModelError, match=r"Anthropic model 'claude-sonnet-4-5'.*not valid JSON") as caught:
        await model.complete(REQUEST)
    assert caught.value.provider == "anthropic"
