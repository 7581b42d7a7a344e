"""Anthropic SDK and transport failures as :mod:`plait.errors`.

HTTP errors are classified by status code, errors sent as an SSE ``error`` event
mid-stream (the HTTP status is then 200) by their ``error.type``. The message
keeps the provider's own words and the request id, when there is one.
"""

from __future__ import annotations

import json
from typing import Any

from plait.errors import (
    AuthenticationError,
    BadRequestError,
    ContextOverflowError,
    ModelConnectionError,
    ModelError,
    ModelTimeoutError,
    RateLimitError,
    ServerError,
    error_class_for_status,
)
from plait.retry import parse_retry_after

__all__ = ["to_model_error"]

PROVIDER = "anthropic"

# What the API says when the prompt does not fit the context window.
_CONTEXT_OVERFLOW_PHRASES = ("prompt is too long", "exceed context limit", "context window")

_ERROR_TYPES: dict[str, type[ModelError]] = {
    "rate_limit_error": RateLimitError,
    "overloaded_error": ServerError,
    "api_error": ServerError,
    "timeout_error": ModelTimeoutError,
    "invalid_request_error": BadRequestError,
    "not_found_error": BadRequestError,
    "request_too_large": BadRequestError,
    "authentication_error": AuthenticationError,
    "permission_error": AuthenticationError,
    "billing_error": AuthenticationError,
}


def to_model_error(exc: BaseException, model: str) -> ModelError | None:
    """The plait error for ``exc`` (a call to ``model``), or None when it is not a provider failure."""
    import anthropic
    import httpx

    if isinstance(exc, ModelError):
        return exc
    if isinstance(exc, json.JSONDecodeError):
        # A garbled SSE event or body (a proxy, a broken server): the SDK hands out the bare error.
        return ServerError(
            f"Anthropic model {model!r}: the server sent a response that is not valid JSON ({exc}): "
            f"{exc.doc[:200]!r}",
            provider=PROVIDER,
        )
    if isinstance(exc, anthropic.APIStatusError):
        return _status_error(exc)
    # Timeout before connection error: the SDK's timeout error subclasses it.
    if isinstance(exc, (anthropic.APITimeoutError, httpx.TimeoutException)):
        return ModelTimeoutError(f"Anthropic request timed out: {_describe(exc)}", provider=PROVIDER)
    if isinstance(exc, (anthropic.APIConnectionError, httpx.TransportError)):
        # httpx errors arrive unwrapped when the connection drops while streaming.
        return ModelConnectionError(f"Anthropic connection failed: {_describe(exc)}", provider=PROVIDER)
    if isinstance(exc, anthropic.APIError):
        return ModelError(f"Anthropic API error: {exc}", provider=PROVIDER)
    return None


def _status_error(exc: Any) -> ModelError:
    error_type, message = _error_body(exc.body)
    message = message or str(exc)
    request_id = getattr(exc, "request_id", None) or exc.response.headers.get("request-id")
    suffix = f" (request id {request_id})" if request_id else ""
    status: int = exc.status_code
    streamed = 200 <= status < 300  # an SSE `error` event: the status says nothing
    if streamed:
        cls = _ERROR_TYPES.get(error_type or "", ServerError)
        text = f"Anthropic stream error {error_type or 'unknown'}: {message}{suffix}"
    else:
        cls = error_class_for_status(status)
        label = f"{status} {error_type}" if error_type else str(status)
        text = f"Anthropic API error {label}: {message}{suffix}"
    if issubclass(cls, BadRequestError) and any(p in message.lower() for p in _CONTEXT_OVERFLOW_PHRASES):
        cls = ContextOverflowError
    return cls(
        text,
        provider=PROVIDER,
        status_code=None if streamed else status,
        retry_after=parse_retry_after(exc.response.headers),
    )


def _error_body(body: object) -> tuple[str | None, str | None]:
    """``(error.type, error.message)`` from the API's ``{"type": "error", "error": {...}}``."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            kind, message = error.get("type"), error.get("message")
            return (kind if isinstance(kind, str) else None, message if isinstance(message, str) else None)
    return None, None


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text} ({type(cause).__name__}: {cause})"
    return text
