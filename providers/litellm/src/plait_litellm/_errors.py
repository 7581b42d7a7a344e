"""Translate LiteLLM's exceptions into :mod:`plait.errors`.

LiteLLM maps every provider's failures onto exception classes that subclass
the ``openai`` SDK's (``RateLimitError``, ``Timeout``, ``APIConnectionError``,
``InternalServerError``, ``ContextWindowExceededError``, ...) and carry the
HTTP status in ``status_code`` and the response headers in
``litellm_response_headers``. The classification decides what plait retries
(rate limits, server errors, timeouts, dropped connections) and what it reports
at once (bad requests, authentication); the message keeps the provider's words.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from plait.errors import (
    ContextOverflowError,
    ModelConnectionError,
    ModelError,
    ModelTimeoutError,
    ServerError,
    error_for_status,
)
from plait.retry import parse_retry_after
from plait_litellm._convert import PROVIDER

__all__ = ["map_error", "parse_retry_after"]

# LiteLLM prefixes its messages with the class names it went through:
# "litellm.RateLimitError: RateLimitError: OpenAIException - Slow down".
_LITELLM_PREFIX = re.compile(r"^(?:litellm\.\w+:\s*|\w+Error:\s*)+")


def _headers(exc: BaseException) -> Mapping[str, str] | None:
    # LiteLLM keeps the provider's response headers here; its own `response`
    # is often a stand-in without them.
    for headers in (
        getattr(exc, "litellm_response_headers", None),
        getattr(getattr(exc, "response", None), "headers", None),
    ):
        if isinstance(headers, Mapping) and headers:
            return headers
    return None


def _error_fields(value: object) -> tuple[str | None, str | None]:
    """(message, type or code) from an error body: ``{"error": {...}}`` or the inner object."""
    if isinstance(value, Mapping):
        inner = value.get("error", value)
        if isinstance(inner, Mapping):
            message = inner.get("message")
            kind = inner.get("code") or inner.get("type")
            return (message if isinstance(message, str) else None, kind if isinstance(kind, str) else None)
        if isinstance(inner, str):
            return inner, None
    return None, None


def provider_message(exc: BaseException) -> str:
    """The provider's own words in ``exc``, without LiteLLM's class-name prefixes.

    OpenAI-style errors arrive with their parsed ``body``; others (Anthropic's,
    say) embed the provider's JSON error body in the message, which is unpacked.
    """
    message, kind = _error_fields(getattr(exc, "body", None))
    if message is None:
        text = str(getattr(exc, "message", None) or exc)
        text = _LITELLM_PREFIX.sub("", text).strip()
        start, end = text.find("{"), text.rfind("}")
        if 0 <= start < end:
            try:
                message, kind = _error_fields(json.loads(text[start : end + 1]))
            except ValueError:
                pass
        if message is None:
            return text or type(exc).__name__
    return f"{message} ({kind})" if kind else message


def _caused_by(exc: BaseException, types: tuple[type[BaseException], ...]) -> bool:
    seen: set[int] = set()
    cause = exc.__cause__ or exc.__context__
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, types):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


# LiteLLM's own words when a stream ends cleanly before its finish reason; the
# httpx error it builds for that is not kept in the exception's chain.
_STREAM_CUT = "Stream ended before a finish_reason"


def _root_cause(exc: BaseException) -> BaseException | None:
    """The first exception ``exc`` was raised from or while handling, followed to its end."""
    seen = {id(exc)}
    cause, root = exc.__cause__ or exc.__context__, None
    while cause is not None and id(cause) not in seen:
        root = cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return root


def _connection_lost(exc: BaseException, message: str) -> bool:
    """Whether a LiteLLM ``APIConnectionError`` really comes from the network.

    LiteLLM wraps *every* exception it does not recognise in its
    ``APIConnectionError`` (a TypeError from a bad option, a warning turned into
    an error, a garbled chunk): only a transport failure underneath, or LiteLLM's
    own report of a cut stream, is a failed connection.
    """
    import httpx
    import openai
    from litellm import exceptions as litellm

    transport: tuple[type[BaseException], ...] = (httpx.TransportError, OSError)
    try:
        import aiohttp

        transport += (aiohttp.ClientError,)
    except ImportError:  # pragma: no cover - litellm depends on aiohttp
        pass
    if _STREAM_CUT in message or _caused_by(exc, transport):
        return True
    seen: set[int] = set()
    cause = exc.__cause__ or exc.__context__
    while cause is not None and id(cause) not in seen:
        # the openai SDK's own connection error (LiteLLM's subclasses it)
        if isinstance(cause, openai.APIConnectionError) and not isinstance(cause, litellm.APIConnectionError):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def map_error(exc: BaseException, model: str) -> ModelError | None:
    """The plait error for ``exc``, or ``None`` when ``exc`` is not a provider failure."""
    import httpx
    import openai
    from litellm import exceptions as litellm

    if isinstance(exc, ModelError):
        return exc
    where = f"LiteLLM model {model!r}"
    # A failure after the stream started arrives wrapped (MidStreamFallbackError,
    # for LiteLLM's own fallbacks): classify what actually happened.
    original = getattr(exc, "original_exception", None)
    if isinstance(original, Exception) and original is not exc:
        mapped = map_error(original, model)
        if mapped is not None:
            return mapped
    if isinstance(exc, litellm.ContextWindowExceededError):
        return ContextOverflowError(
            f"{where}: HTTP 400: {provider_message(exc)}", provider=PROVIDER, status_code=400
        )
    # Timeout before connection error: LiteLLM's Timeout subclasses it.
    if isinstance(exc, (openai.APITimeoutError, httpx.TimeoutException)):
        return ModelTimeoutError(f"{where}: request timed out: {provider_message(exc)}", provider=PROVIDER)
    if isinstance(exc, openai.APIConnectionError):
        message = provider_message(exc)
        if isinstance(exc, litellm.APIConnectionError) and not _connection_lost(exc, message):
            root = _root_cause(exc)
            if root is None:
                return ModelError(f"{where}: {message}", provider=PROVIDER)
            # A garbled response is the server's fault (retryable); anything else is not a provider failure.
            cls = ServerError if isinstance(root, json.JSONDecodeError) else ModelError
            mapped = cls(f"{where}: {type(root).__name__}: {root}", provider=PROVIDER)
            mapped.__cause__ = root  # the original exception, not LiteLLM's wrapper of it
            return mapped
        return ModelConnectionError(f"{where}: connection failed: {message}", provider=PROVIDER)
    if isinstance(exc, httpx.TransportError):
        return ModelConnectionError(
            f"{where}: connection lost: {type(exc).__name__}: {exc}", provider=PROVIDER
        )
    if isinstance(exc, openai.APIError):
        status = getattr(exc, "status_code", None)
        message = provider_message(exc)
        if isinstance(exc, litellm.RateLimitError):
            status = 429
        elif isinstance(exc, (litellm.AuthenticationError, litellm.PermissionDeniedError)):
            status = status if status in (401, 403) else 401
        if not isinstance(status, int):
            return ModelError(f"{where}: {message}", provider=PROVIDER)
        if status >= 500 and _caused_by(exc, (openai.APIConnectionError, httpx.TransportError)):
            # LiteLLM reports the OpenAI SDK's connection failures as an
            # InternalServerError("Connection error."): nothing answered at all.
            return ModelConnectionError(f"{where}: connection failed: {message}", provider=PROVIDER)
        return error_for_status(
            status,
            f"{where}: HTTP {status}: {message}",
            provider=PROVIDER,
            retry_after=parse_retry_after(_headers(exc)),
        )
    if isinstance(exc, openai.OpenAIError):
        return ModelError(f"{where}: {provider_message(exc)}", provider=PROVIDER)
    return None
