"""Translate ``openai`` SDK and transport exceptions into :mod:`plait.errors`.

The classification decides what plait retries (rate limits, server errors,
timeouts, dropped connections) and what it reports at once (bad requests,
authentication), so it looks at the HTTP status and OpenAI's error code, and
keeps the provider's own message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from plait.errors import (
    BadRequestError,
    ContextOverflowError,
    ModelConnectionError,
    ModelError,
    ModelTimeoutError,
    RateLimitError,
    ServerError,
    error_for_status,
)
from plait.retry import parse_retry_after

__all__ = ["map_error", "parse_retry_after"]

PROVIDER = "openai"

# Codes OpenAI (and vLLM, in its message) use when the prompt does not fit.
_CONTEXT_OVERFLOW_CODES = {"context_length_exceeded", "string_above_max_length"}
_CONTEXT_OVERFLOW_PHRASES = ("maximum context length", "context length exceeded", "exceeds the context")
# A 429 that waiting will not fix: the account has no quota left.
_NOT_RETRYABLE_RATE_LIMIT_CODES = {"insufficient_quota"}


def _error_details(body: object) -> tuple[str | None, str | None, str | None]:
    """(message, code, type) from an OpenAI error body (the SDK already unwraps ``{"error": ...}``)."""
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            body = inner
        message, code, kind = body.get("message"), body.get("code"), body.get("type")
        return (
            message if isinstance(message, str) and message else None,
            str(code) if code is not None else None,
            str(kind) if kind is not None else None,
        )
    if isinstance(body, str) and body.strip():
        return body.strip(), None, None
    return None, None, None


def _is_context_overflow(message: str | None, code: str | None) -> bool:
    if code in _CONTEXT_OVERFLOW_CODES:
        return True
    return message is not None and any(p in message.lower() for p in _CONTEXT_OVERFLOW_PHRASES)


def _for_status(
    status: int, text: str, message: str | None, code: str | None, retry_after: float | None
) -> ModelError:
    error = error_for_status(
        status,
        text,
        provider=PROVIDER,
        retry_after=retry_after,
        context_overflow=status == 400 and _is_context_overflow(message, code),
    )
    if code in _NOT_RETRYABLE_RATE_LIMIT_CODES:
        error.retryable = False
    return error


def map_error(exc: BaseException, model: str) -> ModelError | None:
    """The plait error for ``exc``, or ``None`` when ``exc`` is not a provider failure."""
    import httpx
    import openai

    where = f"OpenAI model {model!r}"
    if isinstance(exc, openai.APITimeoutError):
        return ModelTimeoutError(f"{where}: request timed out ({exc})", provider=PROVIDER)
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        detail = f"{exc.message} ({cause})" if cause is not None else exc.message
        return ModelConnectionError(f"{where}: connection failed: {detail}", provider=PROVIDER)
    if isinstance(exc, openai.APIStatusError):
        message, code, _ = _error_details(exc.body)
        text = f"{where}: HTTP {exc.status_code}: {message or exc.message}"
        if code:
            text += f" (code: {code})"
        headers = exc.response.headers
        return _for_status(exc.status_code, text, message, code, parse_retry_after(headers))
    if isinstance(exc, openai.APIError):
        # An error event inside an otherwise successful stream: no status, only a body.
        message, code, kind = _error_details(exc.body)
        text = f"{where}: error during streaming: {message or exc.message}"
        marker = f"{code or ''} {kind or ''}"
        if "rate_limit" in marker:
            return RateLimitError(text, provider=PROVIDER)
        if _is_context_overflow(message, code):
            return ContextOverflowError(text, provider=PROVIDER)
        if "invalid_request" in marker:
            return BadRequestError(text, provider=PROVIDER)
        return ServerError(text, provider=PROVIDER)
    if isinstance(exc, httpx.TimeoutException):
        return ModelTimeoutError(f"{where}: timed out while reading the response ({exc})", provider=PROVIDER)
    if isinstance(exc, httpx.TransportError):
        # The SDK wraps transport errors of the initial request, but not those
        # raised while a stream is read: a connection dropped mid-answer lands here.
        return ModelConnectionError(
            f"{where}: connection lost while reading the response: {type(exc).__name__}: {exc}",
            provider=PROVIDER,
        )
    if isinstance(exc, json.JSONDecodeError):
        # A garbled SSE chunk or body (a proxy, a broken server): the SDK hands out the bare error.
        return ServerError(
            f"{where}: the server sent a response that is not valid JSON ({exc}): {exc.doc[:200]!r}",
            provider=PROVIDER,
        )
    if isinstance(exc, openai.OpenAIError):
        return ModelError(f"{where}: {exc}", provider=PROVIDER)
    return None
