"""The OpenAI Chat Completions message shape, for the providers that speak it.

OpenAI, LiteLLM, vLLM, Ollama and most gateways take and return chat messages
in this one shape. These pure functions (no SDK import) convert plait messages
and tools into it, and rebuild tool calls and usage from responses and stream
chunks (any object with the SDK's attribute names).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from plait._parts import AudioPart, FilePart, ImagePart, Part, TextPart, VideoPart
from plait.errors import BadRequestError, ModelConnectionError, ServerError
from plait.models import (
    Message,
    ModelResponse,
    ModelStreamEvent,
    Reasoning,
    TextDelta,
    ToolCall,
    ToolCallPart,
    ToolDefinition,
    Usage,
)

__all__ = [
    "ChatStream",
    "ToolCallAccumulator",
    "content_params",
    "message_params",
    "response_from_completion",
    "tool_call",
    "tool_choice_param",
    "tool_params",
    "usage_from",
]

_TOOL_CHOICE_MODES = {"auto", "none", "required"}


def message_params(
    messages: list[Message], *, provider: str, thinking_blocks: bool = False
) -> list[dict[str, Any]]:
    """plait messages as chat ``messages``. ``thinking_blocks``: an assistant message's thinking
    (:class:`~plait.models.Reasoning` from ``provider``) goes back as LiteLLM's ``thinking_blocks``,
    which it sends on to Anthropic, whose tool loops with extended thinking need them."""
    params: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        param: dict[str, Any] = {"role": message.role}
        if message.role == "assistant":
            param["content"] = message.content
            blocks = _thinking_blocks(message, provider) if thinking_blocks else []
            if blocks:
                param["thinking_blocks"] = blocks
            if message.tool_calls:
                param["tool_calls"] = [
                    {
                        "id": call.id,
                        "type": "function",
                        # a call whose arguments were invalid goes back with none ("{}"): some
                        # servers (and LiteLLM, for Anthropic) parse what they are sent back
                        "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                    }
                    for call in message.tool_calls
                ]
            elif message.content is None:
                param["content"] = ""
        elif isinstance(message.content, list):
            if message.role != "user":
                raise BadRequestError(
                    f"message {index}: only user messages can hold parts here, got parts in a "
                    f"{message.role!r} message",
                    provider=provider,
                )
            param["content"] = content_params(message.content, provider=provider, where=f"message {index}")
        elif message.role == "tool":
            if not message.tool_call_id:
                raise BadRequestError(
                    f"message {index}: a 'tool' message needs the tool_call_id of the call it answers, got None",
                    provider=provider,
                )
            param["tool_call_id"] = message.tool_call_id
            param["content"] = message.content or ""
        else:
            param["content"] = message.content or ""
        if message.name and message.role in ("system", "user", "assistant"):
            param["name"] = message.name
        params.append(param)
    return params


def _thinking_blocks(message: Message, provider: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for thought in message.reasoning:
        if thought.provider != provider:
            continue  # another provider's: it would not accept it
        if thought.redacted is not None:
            blocks.append({"type": "redacted_thinking", "data": thought.redacted})
        elif thought.signature is not None:  # one without the signature the API checks is not sent
            blocks.append({"type": "thinking", "thinking": thought.text, "signature": thought.signature})
    return blocks


def _reasoning_of(blocks: Any, provider: str) -> list[Reasoning]:
    """LiteLLM's ``thinking_blocks`` (Anthropic's thinking, with its signature, or redacted) as
    :class:`~plait.models.Reasoning`; empty for anything else."""
    found: list[Reasoning] = []
    for block in blocks if isinstance(blocks, list) else ():
        get = block.get if isinstance(block, dict) else lambda key, b=block: getattr(b, key, None)
        if get("type") == "redacted_thinking" and isinstance(get("data"), str):
            found.append(Reasoning(redacted=get("data"), provider=provider))
        elif get("type") == "thinking":
            found.append(
                Reasoning(get("thinking") or "", signature=get("signature") or None, provider=provider)
            )
    return found


#: the audio formats Chat Completions' ``input_audio`` takes, by media type
_AUDIO_FORMATS = {
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
}


def content_params(parts: list[Part], *, provider: str, where: str = "message") -> list[dict[str, Any]]:
    """A user message's parts as chat content parts: ``text``, ``image_url`` (a URL or a data
    URL), ``input_audio`` (base64 WAV or MP3) and ``file`` (base64 ``file_data``); a part the
    format has no place for is a :class:`~plait.errors.BadRequestError` saying what it takes."""
    params: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, TextPart):
            params.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            image: dict[str, Any] = {"url": part.data_url()}
            if part.detail is not None:
                image["detail"] = part.detail
            params.append({"type": "image_url", "image_url": image})
        elif isinstance(part, AudioPart):
            audio_format = _AUDIO_FORMATS.get(part.media_type or "")
            if part.data is None or audio_format is None:
                raise BadRequestError(
                    f"{where}: {provider} cannot send the {part.describe()} part: chat completions take "
                    "audio as bytes (data= or path=), in WAV or MP3 (audio/wav, audio/mpeg)",
                    provider=provider,
                )
            params.append(
                {"type": "input_audio", "input_audio": {"data": part.base64(), "format": audio_format}}
            )
        elif isinstance(part, FilePart):
            if part.data is None:
                raise BadRequestError(
                    f"{where}: {provider} cannot send the {part.describe()} part: chat completions take "
                    "a file as its bytes (data= or path=), not a URL",
                    provider=provider,
                )
            file: dict[str, Any] = {"file_data": part.data_url()}
            file["filename"] = part.filename or _default_name(part.media_type)
            params.append({"type": "file", "file": file})
        elif isinstance(part, VideoPart):
            # LiteLLM's form for video (Gemini): a file by its bytes (a data URL) or by URL,
            # with its media type as ``format``; OpenAI's own API takes no video (its models
            # refuse the part before this, plait._model_types.Model.check_parts)
            video: dict[str, Any] = (
                {"file_id": part.url}
                if part.data is None and part.url is not None and not part.url.startswith("data:")
                else {"file_data": part.data_url()}
            )
            if part.media_type is not None:
                video["format"] = part.media_type
            params.append({"type": "file", "file": video})
        else:
            raise BadRequestError(
                f"{where}: expected a content part, got {type(part).__name__}", provider=provider
            )
    return params


def _default_name(media_type: str | None) -> str:
    import mimetypes

    return "document" + (mimetypes.guess_extension(media_type or "") or "")


def tool_params(tools: list[ToolDefinition]) -> list[dict[str, Any]]:
    """plait tool definitions as chat ``tools``."""
    params = []
    for tool in tools:
        function: dict[str, Any] = {"name": tool.name, "parameters": tool.parameters}
        if tool.description:
            function["description"] = tool.description
        params.append({"type": "function", "function": function})
    return params


def tool_choice_param(choice: str) -> str | dict[str, Any]:
    """``"auto"``, ``"none"``, ``"required"``, or a tool's name (force that tool)."""
    if choice in _TOOL_CHOICE_MODES:
        return choice
    return {"type": "function", "function": {"name": choice}}


def tool_call(call_id: str, name: str, raw: str | None, finish_reason: str | None) -> ToolCall:
    """A tool call from its JSON arguments; invalid ones become its ``arguments_error``."""
    hint = " (the answer was cut off: finish_reason 'length')" if finish_reason == "length" else ""
    return ToolCall.from_json(call_id, name, raw, hint=hint)


def usage_from(usage: Any) -> Usage:
    """plait usage from a response's ``usage`` (``prompt_tokens``/``completion_tokens``, or None)."""
    if usage is None:
        return Usage(requests=1)
    return Usage(
        input_tokens=getattr(usage, "prompt_tokens", 0) or 0,
        output_tokens=getattr(usage, "completion_tokens", 0) or 0,
        requests=1,
    )


@dataclass(slots=True)
class _PartialCall:
    """One tool call being reassembled from stream deltas: its arguments arrive in pieces."""

    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ToolCallAccumulator:
    """Reassembles tool calls from stream deltas.

    Deltas are keyed by ``index``; the id and name arrive once and the arguments in
    pieces. Some providers send each call whole, reusing one index: a new id at a
    known index starts a new call.
    """

    provider: str
    _calls: list[_PartialCall] = field(default_factory=list)
    _by_index: dict[int, _PartialCall] = field(default_factory=dict)

    def add(self, delta: Any) -> None:
        """Take one tool-call delta (``index``, ``id``, ``function.name`` / ``function.arguments``)."""
        index = getattr(delta, "index", None)
        key = index if isinstance(index, int) else len(self._calls)
        call = self._by_index.get(key)
        if call is None or (delta.id and call.id and delta.id != call.id):
            call = self._by_index[key] = _PartialCall()
            self._calls.append(call)
        if delta.id:
            call.id = delta.id
        function = delta.function
        if function is not None:
            if function.name and not call.name:
                call.name = function.name
            if function.arguments:
                call.arguments.append(function.arguments)

    def finish(self, finish_reason: str | None) -> list[ToolCall]:
        """Every call received so far, in arrival order, with parsed arguments."""
        calls = [
            tool_call(partial.id, partial.name, "".join(partial.arguments), finish_reason)
            for partial in self._calls
        ]
        self._calls.clear()
        self._by_index.clear()
        return calls


def response_from_completion(completion: Any, *, provider: str, model: str) -> ModelResponse:
    """A non-streaming chat completion as a plait response (``model`` when it names none)."""
    tool_calls: list[ToolCall] = []
    if not completion.choices:
        raise _no_choices(provider, model)
    choice = completion.choices[0]
    finish_reason: str | None = choice.finish_reason
    # a refusal (structured outputs) is the model's answer too: keep its words
    content = choice.message.content or getattr(choice.message, "refusal", None)
    for call in choice.message.tool_calls or ():
        function = getattr(call, "function", None)
        if function is None:  # a non-function (custom) tool call: plait defines none
            continue
        tool_calls.append(tool_call(call.id, function.name, function.arguments, finish_reason))
    # the reasoning some OpenAI-shaped servers return beside the answer (DeepSeek, vLLM), or
    # LiteLLM's thinking blocks (Anthropic's, to be sent back with their signatures)
    reasoning = _reasoning_of(getattr(choice.message, "thinking_blocks", None), provider)
    thought = getattr(choice.message, "reasoning_content", None)
    if not reasoning and isinstance(thought, str) and thought:
        reasoning = [Reasoning(thought, provider=provider)]
    return ModelResponse(
        message=Message("assistant", content, tool_calls, reasoning=reasoning),
        usage=usage_from(getattr(completion, "usage", None)),
        finish_reason=finish_reason,
        response_id=getattr(completion, "id", None),
        model=getattr(completion, "model", None) or model,
        provider=provider,
    )


class ChatStream:
    """Turns streamed chat completion chunks into plait stream items.

    ``feed(chunk)`` yields text deltas and each tool call once complete;
    ``finish()`` yields the tool calls still pending and then the one
    :class:`~plait.models.ModelResponse`. A stream that ended before its finish
    reason was cut short (the connection closed early: with a close-delimited
    body, or a proxy that ends chunks cleanly, the SDK sees an ordinary end), so
    ``finish()`` raises :class:`~plait.errors.ModelConnectionError` then rather
    than pass the partial text off as the answer.
    """

    def __init__(self, *, provider: str, model: str) -> None:
        self.provider = provider
        self.model = model
        self._text: list[str] = []
        self._reasoning: list[str] = []
        #: LiteLLM's streamed thinking blocks, by their index: [type, text, signature, data]
        self._thinking: dict[int, list[Any]] = {}
        self._tool_calls: list[ToolCall] = []
        self._pending = ToolCallAccumulator(provider)
        self._finish_reason: str | None = None
        self._usage: Any = None
        self._response_id: str | None = None
        self._response_model: str | None = None
        self._had_choices = False

    def feed(self, chunk: Any) -> Iterator[ModelStreamEvent]:
        self._response_id = self._response_id or getattr(chunk, "id", None)
        self._response_model = getattr(chunk, "model", None) or self._response_model
        if getattr(chunk, "usage", None) is not None:
            self._usage = chunk.usage
        for choice in chunk.choices or ():
            if getattr(choice, "index", 0) != 0:
                continue
            self._had_choices = True
            delta = choice.delta
            if delta is not None:
                thought = getattr(delta, "reasoning_content", None)
                if isinstance(thought, str):
                    self._reasoning.append(thought)
                self._add_thinking(getattr(delta, "thinking_blocks", None))
                for piece in (delta.content, getattr(delta, "refusal", None)):
                    if piece:
                        self._text.append(piece)
                        yield TextDelta(piece)
                for call_delta in delta.tool_calls or ():
                    self._pending.add(call_delta)
            if choice.finish_reason:
                self._finish_reason = choice.finish_reason
                yield from self._complete_calls()

    def _add_thinking(self, blocks: Any) -> None:
        for number, block in enumerate(blocks if isinstance(blocks, list) else ()):
            get = block.get if isinstance(block, dict) else lambda key, b=block: getattr(b, key, None)
            index = get("index")
            kept = self._thinking.setdefault(
                index if isinstance(index, int) else number, [get("type"), "", None, None]
            )
            kept[1] += get("thinking") or ""
            kept[2] = get("signature") or kept[2]
            kept[3] = get("data") or kept[3]

    def _reasoning_of_stream(self) -> list[Reasoning]:
        if self._thinking:
            blocks = [
                {"type": kind, "thinking": text, "signature": signature, "data": data}
                for kind, text, signature, data in (self._thinking[i] for i in sorted(self._thinking))
            ]
            return _reasoning_of(blocks, self.provider)
        thought = "".join(self._reasoning)
        return [Reasoning(thought, provider=self.provider)] if thought else []

    def _complete_calls(self) -> Iterator[ModelStreamEvent]:
        for call in self._pending.finish(self._finish_reason):
            self._tool_calls.append(call)
            yield ToolCallPart(call)

    def finish(self) -> Iterator[ModelStreamEvent]:
        if self._finish_reason is None:
            if not self._had_choices:
                raise _no_choices(self.provider, self.model)
            received = sum(len(piece) for piece in self._text)
            raise ModelConnectionError(
                f"{self.provider} model {self.model!r}: the stream ended before its finish reason "
                f"(the connection was closed early, after {received} characters of text): "
                "the answer is incomplete",
                provider=self.provider,
            )
        yield from self._complete_calls()
        yield ModelResponse(
            message=Message(
                "assistant",
                "".join(self._text) or None,
                self._tool_calls,
                reasoning=self._reasoning_of_stream(),
            ),
            usage=usage_from(self._usage),
            finish_reason=self._finish_reason,
            response_id=self._response_id,
            model=self._response_model or self.model,
            provider=self.provider,
        )


def _no_choices(provider: str, model: str) -> ServerError:
    return ServerError(
        f"{provider} model {model!r}: the response has no choices (no answer at all): "
        "a fault of the provider or a proxy in between",
        provider=provider,
    )
