"""The model protocol: what an agent needs from any LLM provider.

A provider implements one method, :meth:`Model.stream`, an async iterator that
yields :class:`TextDelta` and :class:`ToolCallPart` items as they arrive and ends
with exactly one :class:`ModelResponse` (the whole assistant message, usage,
finish reason). :meth:`Model.complete` is the non-streaming convenience; a
provider may override it with a cheaper non-streaming request.

Providers classify failures into :mod:`plait.errors` (``RateLimitError``,
``ServerError``, ``BadRequestError``, ...) with the provider's own message, so
retries and error reports work the same for every provider.

Models hold configuration only; SDK clients are built lazily, per process,
and are left out of pickling (see :attr:`Model.transient_attributes`).
"""

from __future__ import annotations

from plait._model_calls import DEFAULT_FALLBACK_ON as DEFAULT_FALLBACK_ON
from plait._model_calls import DEFAULT_MODEL_ENV as DEFAULT_MODEL_ENV
from plait._model_calls import (
    FallbackModel,
    complete_with_retry,
    default_model,
    get_model,
    guarded_complete,
    guarded_stream,
    import_in_thread,
    model_pricing,
    price_response,
    stream_with_retry,
)
from plait._model_types import (
    Message,
    Model,
    ModelRequest,
    ModelResponse,
    ModelSettings,
    ModelStreamEvent,
    Pricing,
    Reasoning,
    TextDelta,
    ToolCall,
    ToolCallPart,
    ToolDefinition,
    Usage,
)
from plait._model_types import Role as Role
from plait._parts import AudioPart, FilePart, ImagePart, Part, TextPart, VideoPart
from plait._public import report_public_home
from plait._secrets import credentials, scrub_exception

__all__ = [
    "AudioPart",
    "FallbackModel",
    "FilePart",
    "ImagePart",
    "Message",
    "Model",
    "ModelRequest",
    "ModelResponse",
    "ModelSettings",
    "ModelStreamEvent",
    "Part",
    "Pricing",
    "Reasoning",
    "TextDelta",
    "TextPart",
    "ToolCall",
    "ToolCallPart",
    "ToolDefinition",
    "Usage",
    "VideoPart",
    "complete_with_retry",
    "credentials",
    "default_model",
    "get_model",
    "guarded_complete",
    "guarded_stream",
    "import_in_thread",
    "model_pricing",
    "price_response",
    "scrub_exception",
    "stream_with_retry",
]

report_public_home(__name__, globals(), __all__)  # plait.models.credentials, not plait._secrets.credentials
