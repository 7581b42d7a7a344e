"""plait requests as Anthropic Messages API parameters.

The Messages API differs from chat-style APIs in three ways that matter here:
system prompts are a top-level ``system`` parameter, tool calls are ``tool_use``
content blocks of the assistant turn, and tool results are ``tool_result`` blocks
of the next user turn. Consecutive turns of one role are merged into one turn,
because the API answers every ``tool_use`` with results in the single next turn.
"""

from __future__ import annotations

from typing import Any

from plait.errors import BadRequestError
from plait.models import (
    FilePart,
    ImagePart,
    Message,
    ModelRequest,
    ModelSettings,
    Part,
    TextPart,
    ToolDefinition,
)

__all__ = ["request_params"]


def request_params(
    request: ModelRequest, settings: ModelSettings, *, model: str, max_tokens: int
) -> dict[str, Any]:
    """Keyword arguments for ``client.messages.create``; ``settings`` are already merged."""
    system, messages = _convert_messages(request.messages)
    params: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "max_tokens": settings.max_tokens if settings.max_tokens is not None else max_tokens,
    }
    if system:
        params["system"] = system
    if request.tools:
        params["tools"] = [_tool(tool) for tool in request.tools]
        if request.tool_choice is not None:
            params["tool_choice"] = _tool_choice(request.tool_choice)
    if settings.temperature is not None:
        params["temperature"] = settings.temperature
    if settings.top_p is not None:
        params["top_p"] = settings.top_p
    if settings.stop:
        params["stop_sequences"] = list(settings.stop)
    if settings.timeout is not None:
        params["timeout"] = settings.timeout
    if settings.extra:
        # Provider-specific fields (top_k, metadata, thinking, ...) go into the
        # JSON body as given, so new API fields work without a plait release.
        params["extra_body"] = dict(settings.extra)
    return params


def _convert_messages(messages: list[Message]) -> tuple[str, list[dict[str, Any]]]:
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            # The API has no system turns; every system message joins the one prompt.
            if message.content:
                system.append(message.text)
            continue
        role, blocks = _blocks(message)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        # tool_result blocks must open a user turn, before any text.
        if turn["role"] == "user":
            turn["content"].sort(key=lambda block: block["type"] != "tool_result")
        if len(turn["content"]) == 1 and turn["content"][0]["type"] == "text":
            turn["content"] = turn["content"][0]["text"]
    return "\n\n".join(system), turns


def _blocks(message: Message) -> tuple[str, list[dict[str, Any]]]:
    if message.role == "tool":
        if message.tool_call_id is None:
            raise BadRequestError(
                f"a tool message needs tool_call_id to be sent to Anthropic, got {message!r}",
                provider="anthropic",
            )
        result: dict[str, Any] = {
            "type": "tool_result",
            "tool_use_id": message.tool_call_id,
            "content": message.text,
        }
        if message.is_error:  # the tool failed: its content is the error
            result["is_error"] = True
        return "user", [result]
    # the model's own thinking first, unchanged (the API checks its signature): a tool loop
    # with extended thinking must send it back; another provider's reasoning is not sent
    blocks: list[dict[str, Any]] = [
        {"type": "redacted_thinking", "data": r.redacted}
        if r.redacted is not None
        else {"type": "thinking", "thinking": r.text, "signature": r.signature}
        for r in message.reasoning
        if message.role == "assistant" and r.provider == "anthropic" and (r.signature or r.redacted)
    ]
    if isinstance(message.content, list):
        if message.role != "user":
            raise BadRequestError(
                f"only user messages can hold parts for Anthropic, got parts in a {message.role!r} message",
                provider="anthropic",
            )
        blocks.extend(_part_block(part) for part in message.content)
    elif message.content:
        blocks.append({"type": "text", "text": message.content})
    if message.role == "assistant":
        blocks.extend(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
            for call in message.tool_calls
        )
    if not blocks:
        blocks.append({"type": "text", "text": message.content or ""})
    return message.role, blocks


#: the image types the Messages API takes
_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


def _part_block(part: Part) -> dict[str, Any]:
    """A content part as a Messages API block: ``text``, ``image`` or ``document`` (a PDF or
    plain text), by base64 bytes or URL."""
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ImagePart):
        if part.media_type not in _IMAGE_TYPES and part.data is not None:
            raise _refused(part, "images in " + ", ".join(_IMAGE_TYPES))
        return {"type": "image", "source": _source(part)}
    if isinstance(part, FilePart):
        if part.media_type == "text/plain" and part.data is not None:
            try:
                text = part.data.decode("utf-8")
            except UnicodeDecodeError:
                raise _refused(part, "text/plain documents in UTF-8") from None
            source: dict[str, Any] = {"type": "text", "media_type": "text/plain", "data": text}
        elif part.media_type == "application/pdf" or (part.url is not None and part.media_type is None):
            source = _source(part)
        else:
            raise _refused(part, "documents that are PDF (application/pdf) or plain text (text/plain)")
        block: dict[str, Any] = {"type": "document", "source": source}
        if part.filename:
            block["title"] = part.filename
        return block
    raise _refused(part, "text, image and file (PDF or plain text) parts")


def _source(part: ImagePart | FilePart) -> dict[str, Any]:
    if part.data is not None:
        return {"type": "base64", "media_type": part.media_type, "data": part.base64()}
    assert part.url is not None
    if part.url.startswith("data:"):
        data = part.url.partition(",")[2]
        return {"type": "base64", "media_type": part.media_type, "data": data}
    return {"type": "url", "url": part.url}


def _refused(part: Any, accepts: str) -> BadRequestError:
    return BadRequestError(
        f"Anthropic cannot take the {part.describe()} part: it accepts {accepts}", provider="anthropic"
    )


def _tool(tool: ToolDefinition) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": tool.name, "input_schema": tool.parameters}
    if tool.description:
        spec["description"] = tool.description
    return spec


def _tool_choice(choice: str) -> dict[str, Any]:
    if choice in ("auto", "none"):
        return {"type": choice}
    if choice in ("required", "any"):
        return {"type": "any"}
    return {"type": "tool", "name": choice}
