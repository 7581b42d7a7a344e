"""``AnthropicModel``: Claude through the Messages API of the official SDK."""

from __future__ import annotations

import asyncio
import os
import sys
import weakref
from collections.abc import AsyncIterator
from typing import Any, ClassVar, NoReturn

from plait.errors import AuthenticationError, MissingDependencyError
from plait.models import (
    Model,
    ModelRequest,
    ModelResponse,
    ModelSettings,
    ModelStreamEvent,
    Pricing,
    credentials,
    import_in_thread,
    scrub_exception,
)
from plait.retry import RetryPolicy
from plait_anthropic._errors import to_model_error
from plait_anthropic._request import request_params
from plait_anthropic._response import StreamAccumulator, response_from_message

__all__ = ["AnthropicModel"]


class AnthropicModel(Model):
    """A Claude model, e.g. ``AnthropicModel("claude-sonnet-4-5")`` or ``"anthropic:claude-sonnet-4-5"``.

    ``api_key`` and ``base_url`` default to ``ANTHROPIC_API_KEY`` and
    ``ANTHROPIC_BASE_URL``, read when the client is first built. ``max_tokens``
    (which the API requires) is used when neither the request's nor the model's
    settings give one. ``timeout`` bounds each read and, for calls made
    through plait (agents, teams, :func:`plait.models.stream_with_retry`), a
    whole call, in seconds. The SDK's own retries are off: ``retry`` (a :class:`plait.RetryPolicy`) governs them.

    ``ModelSettings.extra`` goes into the request body as given (``top_k``,
    ``metadata``, ...); ``seed`` is not part of the Anthropic API and is not sent.

    The SDK client is built on first use in each event loop and dropped when the
    model is pickled; ``await model.aclose()`` (or ``async with model:``) closes it.

    >>> model = AnthropicModel("claude-sonnet-4-5", max_tokens=1024)
    >>> response = await model.complete(ModelRequest([Message("user", "Hi")]))
    """

    provider: ClassVar[str] = "anthropic"
    accepts_parts: ClassVar[frozenset[str]] = frozenset({"text", "image", "file"})
    supports_structured_output: ClassVar[bool] = False
    transient_attributes: ClassVar[tuple[str, ...]] = ("_client", "_client_loop")

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        settings: ModelSettings | None = None,
        retry: RetryPolicy | None = None,
        pricing: Pricing | None = None,
        timeout: float | None = None,
        max_tokens: int = 4096,
        default_headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(model, settings=settings, retry=retry, pricing=pricing)
        self.api_key = api_key
        self.base_url = base_url
        self.timeout = timeout
        self.max_tokens = max_tokens
        self.default_headers = dict(default_headers or {})
        self._client: Any = None
        self._client_loop: weakref.ref[asyncio.AbstractEventLoop] | None = None

    # -- the model protocol --------------------------------------------------------------

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        await self._sdk_imported()
        client = self._get_client()
        params = self._params(request)
        try:
            events = await client.messages.create(**params, stream=True)
        except Exception as exc:
            self._raise_mapped(exc)
        accumulator = StreamAccumulator(self.model)
        try:
            async for event in events:
                for item in accumulator.feed(event):
                    yield item
            yield accumulator.finish()
        except Exception as exc:
            self._raise_mapped(exc)
        finally:
            await events.close()

    async def complete(self, request: ModelRequest) -> ModelResponse:
        await self._sdk_imported()
        client = self._get_client()
        params = self._params(request)
        try:
            message = await client.messages.create(**params)
        except Exception as exc:
            self._raise_mapped(exc)
        return response_from_message(message)

    # -- the client --------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the SDK client (and its connections); the next call builds a new one."""
        client, self._client, self._client_loop = self._client, None, None
        if client is not None:
            await client.close()

    async def __aenter__(self) -> AnthropicModel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _params(self, request: ModelRequest) -> dict[str, Any]:
        settings = self.settings.merged(request.settings)
        return request_params(request, settings, model=self.model, max_tokens=self.max_tokens)

    def secrets(self) -> list[str]:
        """The API key and credential headers sent, scrubbed from every error."""
        return credentials(self.api_key or os.environ.get("ANTHROPIC_API_KEY"), headers=self.default_headers)

    def _raise_mapped(self, exc: Exception) -> NoReturn:
        mapped = to_model_error(exc, self.model)
        scrub_exception(mapped or exc, self.secrets())
        if mapped is None or mapped is exc:
            raise exc
        raise mapped from exc

    @staticmethod
    async def _sdk_imported() -> None:
        """The SDK imported off the event loop before the first client is built (it takes a while)."""
        if "anthropic" not in sys.modules:
            await import_in_thread("anthropic")

    def _get_client(self) -> Any:
        # Connections belong to the event loop that opened them, so a model used
        # from another loop (a new asyncio.run, a worker thread) gets its own client.
        loop = asyncio.get_running_loop()
        if self._client is not None and self._client_loop is not None and self._client_loop() is loop:
            return self._client
        try:
            import anthropic
        except ImportError as exc:
            raise MissingDependencyError(
                "AnthropicModel needs the anthropic SDK: pip install plait-anthropic"
            ) from exc
        api_key = self.api_key or os.environ.get("ANTHROPIC_API_KEY")
        if not api_key:
            raise AuthenticationError(
                f"{self!r}: no Anthropic API key; set the ANTHROPIC_API_KEY environment variable "
                "or pass api_key= to AnthropicModel (or to get_model)",
                provider=self.provider,
            )
        options: dict[str, Any] = {"api_key": api_key, "max_retries": 0}
        base_url = self.base_url or os.environ.get("ANTHROPIC_BASE_URL")
        if base_url:
            options["base_url"] = base_url
        if self.timeout is not None:
            options["timeout"] = self.timeout
        if self.default_headers:
            options["default_headers"] = self.default_headers
        self._client = anthropic.AsyncAnthropic(**options)
        self._client_loop = weakref.ref(loop)
        return self._client
