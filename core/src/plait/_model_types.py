"""The model protocol's data (requests, messages, responses, usage, prices) and the
:class:`Model` base class a provider subclasses; :mod:`plait.models` is its public home."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal

from plait._parts import Part, content_text
from plait.errors import (
    BadRequestError,
    DefinitionError,
    PluginError,
)
from plait.retry import RetryPolicy

__all__ = [
    "Message",
    "Model",
    "ModelRequest",
    "ModelResponse",
    "ModelSettings",
    "ModelStreamEvent",
    "Pricing",
    "Reasoning",
    "Role",
    "TextDelta",
    "ToolCall",
    "ToolCallPart",
    "ToolDefinition",
    "Usage",
]

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(slots=True)
class ToolCall:
    """A model's request to call tool ``name`` with JSON ``arguments``.

    ``arguments_error`` says why the model's arguments could not be used (not
    JSON, not an object), quoting what it sent; ``arguments`` is then empty and
    the agent sends the error back to the model instead of calling the tool.
    """

    id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    arguments_error: str | None = None

    @classmethod
    def from_json(cls, id: str, name: str, raw: str | None, *, hint: str = "") -> ToolCall:
        """The call with the arguments the model sent as JSON text (empty text: no arguments).

        Invalid arguments are the model's mistake, which it can correct when told,
        not a failure of the call: they become :attr:`arguments_error`. ``hint``
        is added to that message (say, that the answer was cut off).
        """
        if not raw or not raw.strip():
            return cls(id, name)
        try:
            value = json.loads(raw)
        except ValueError as exc:
            problem = f"not valid JSON{hint} ({exc})"
        else:
            if isinstance(value, dict):
                return cls(id, name, value)
            problem = f"not a JSON object{hint}"
        return cls(id, name, arguments_error=f"the arguments for tool {name!r} are {problem}: {raw[:500]!r}")


@dataclass(frozen=True, slots=True)
class Reasoning:
    """A model's reasoning before its answer, kept on the assistant message so a tool loop can
    send it back: Anthropic's thinking blocks (``text`` and the ``signature`` the API checks, or
    a redacted block's encrypted ``redacted`` data), the ``reasoning_content`` of OpenAI-shaped
    servers that return one. ``provider`` says whose it is: only that provider is sent it back.
    """

    text: str = ""
    signature: str | None = None
    redacted: str | None = None
    provider: str | None = None


@dataclass(slots=True)
class Message:
    """One chat message. ``tool_calls`` on assistant messages, ``tool_call_id`` on tool results.

    ``content`` is text, or a list of parts (:class:`~plait.TextPart`, :class:`~plait.ImagePart`,
    :class:`~plait.AudioPart`, :class:`~plait.FilePart`); :attr:`text` is its text either way.
    ``reasoning`` is what the model thought before an assistant message (:class:`Reasoning`);
    ``is_error`` marks a tool result that is the tool's error.
    """

    role: Role
    content: str | list[Part] | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    reasoning: list[Reasoning] = field(default_factory=list)
    is_error: bool = False

    @property
    def text(self) -> str:
        """The content's text: the string, or the text parts one per line ("" for none)."""
        return content_text(self.content)

    @property
    def parts(self) -> list[Part]:
        """The content as parts: a string is one :class:`~plait.TextPart`."""
        from plait._parts import TextPart

        if self.content is None:
            return []
        return [TextPart(self.content)] if isinstance(self.content, str) else list(self.content)


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    """A tool as the model sees it: a name, a description and a JSON schema of its parameters."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(frozen=True, slots=True)
class ModelSettings:
    """Request settings every provider understands; ``extra`` passes provider-specific ones."""

    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    stop: tuple[str, ...] | None = None
    seed: int | None = None
    timeout: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def merged(self, other: ModelSettings | None) -> ModelSettings:
        """These settings with every field ``other`` sets taking precedence."""
        if other is None:
            return self
        changes = {
            name: getattr(other, name)
            for name in ("temperature", "max_tokens", "top_p", "stop", "seed", "timeout")
            if getattr(other, name) is not None
        }
        if other.extra:
            changes["extra"] = {**self.extra, **other.extra}
        return replace(self, **changes)


@dataclass(slots=True)
class ModelRequest:
    """Everything one model call needs.

    ``output_schema`` is a pydantic model class when structured output is wanted;
    providers that support it natively (:attr:`Model.supports_structured_output`)
    send it as a JSON schema, otherwise the agent asks for JSON and validates it.
    """

    messages: list[Message]
    tools: list[ToolDefinition] = field(default_factory=list)
    settings: ModelSettings = field(default_factory=ModelSettings)
    output_schema: type[Any] | None = None
    tool_choice: str | None = None


@dataclass(slots=True)
class Usage:
    """Token counts of one or more model calls."""

    input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0
    #: what these calls cost, when their models have a price (an explicit :class:`Pricing`,
    #: or the price table, :mod:`plait.prices`); None when none of them has one
    cost: float | None = field(default=None, compare=False, repr=False)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.requests += other.requests
        if other.cost is not None:
            self.cost = other.cost if self.cost is None else self.cost + other.cost


@dataclass(slots=True)
class TextDelta:
    """A piece of the assistant's text, as it streams in."""

    text: str


@dataclass(slots=True)
class ToolCallPart:
    """A complete tool call, yielded once its arguments have fully arrived."""

    call: ToolCall


@dataclass(slots=True)
class ModelResponse:
    """The end of one model call: the whole message, usage and how it finished."""

    message: Message
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    response_id: str | None = None
    model: str | None = None
    provider: str | None = None
    #: ``provider:model`` of the model that answered, when a :class:`FallbackModel` chose it
    answered_by: str | None = None
    #: the models a :class:`FallbackModel` tried first, each ``"provider:model: ErrorType"``
    fallbacks: list[str] = field(default_factory=list)


ModelStreamEvent = TextDelta | ToolCallPart | ModelResponse


@dataclass(frozen=True, slots=True)
class Pricing:
    """What a model costs, in your currency per million tokens; gives steps a ``metrics.cost``.

    >>> OpenAIModel("gpt-4o-mini", pricing=Pricing(input=0.15, output=0.60))
    """

    input: float
    output: float

    def cost(self, usage: Usage) -> float:
        return (usage.input_tokens * self.input + usage.output_tokens * self.output) / 1_000_000


class Model:
    """Base class of every model provider.

    Subclasses set :attr:`provider`, implement :meth:`stream`, and may override
    :meth:`complete`. ``settings`` are defaults merged under each request's own.
    ``retry`` governs retries of retryable errors (rate limits, server errors,
    timeouts, dropped connections); the agent applies it around each call.
    """

    provider: ClassVar[str] = "custom"
    supports_structured_output: ClassVar[bool] = False
    #: the kinds of content parts the provider can send (``"text"``, ``"image"``, ``"audio"``,
    #: ``"file"``); a request with another kind is refused before it is sent. Set it on a model
    #: object whose model takes fewer kinds than its provider (a text-only model).
    accepts_parts: ClassVar[frozenset[str]] = frozenset({"text"})
    #: Attributes holding live resources (SDK clients, locks); dropped when pickled
    #: and rebuilt lazily in the receiving process.
    transient_attributes: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        model: str,
        *,
        settings: ModelSettings | None = None,
        retry: RetryPolicy | None = None,
        pricing: Pricing | None = None,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise DefinitionError(f"{type(self).__name__}: model must be a non-empty string, got {model!r}")
        self.model = model
        self.settings = settings or ModelSettings()
        self.retry = retry if retry is not None else RetryPolicy(max_attempts=3, initial_delay=0.5)
        self.pricing = pricing

    @property
    def name(self) -> str:
        """``provider:model``, the string that resolves back to this model."""
        return f"{self.provider}:{self.model}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model!r})"

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for attr in self.transient_attributes:
            state[attr] = None
        return state

    def call_timeout(self, request: ModelRequest) -> float | None:
        """The total seconds one call may take: the request's ``settings.timeout``, else the
        model's settings, else the provider's own ``timeout`` attribute; None: unbounded."""
        for timeout in (request.settings.timeout, self.settings.timeout, getattr(self, "timeout", None)):
            if timeout is not None:
                return float(timeout)
        return None

    def secrets(self) -> list[str]:
        """The credentials this model sends (API keys, credential headers).

        They are replaced by ``***`` in every error a call raises, so a provider
        that quotes them back never puts them into events, spans or stored runs.
        Providers override this, usually with :func:`credentials`.
        """
        return []

    def check_parts(self, request: ModelRequest) -> None:
        """A :class:`~plait.errors.BadRequestError` for the first part of a kind this model does
        not accept (:attr:`accepts_parts`), naming the part, the model and what it accepts."""
        accepted = self.accepts_parts
        for index, message in enumerate(request.messages):
            if isinstance(message.content, list):
                for part in message.content:
                    if part.kind not in accepted:
                        raise BadRequestError(
                            f"{self!r} (provider {self.provider!r}) cannot take the {part.describe()} part "
                            f"of message {index} ({message.role}); it accepts "
                            + ", ".join(sorted(accepted))
                            + " parts",
                            provider=self.provider,
                        )

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        """Yield text deltas and tool calls as they arrive, then one :class:`ModelResponse`."""
        raise NotImplementedError(f"{type(self).__name__} does not implement stream()")

    async def aclose(self) -> None:
        """Release live resources (SDK clients and their connections) of this process.

        Clients are bound to the event loop that created them: close a model before
        its loop ends when it will be used again from another loop.
        """

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """Run the call to its end and return the final response."""
        final: ModelResponse | None = None
        async for item in self.stream(request):
            if isinstance(item, ModelResponse):
                final = item
        if final is None:
            raise PluginError(f"{self!r}: stream() ended without a ModelResponse")
        return final
