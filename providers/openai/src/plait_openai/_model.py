"""``OpenAIModel``: the plait model protocol over OpenAI's Chat Completions API.

The ``openai`` SDK is imported when the first request is made, never at import
time. Its own retries are off (``max_retries=0``): plait's
:class:`~plait.retry.RetryPolicy` retries, from the classified errors of
:mod:`plait_openai._errors`.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, NoReturn

from plait.chat_format import ChatStream, response_from_completion
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
from plait_openai._convert import request_params
from plait_openai._errors import map_error

__all__ = ["OpenAIModel"]

_OPENAI_HOST = "api.openai.com"


@dataclass(slots=True)
class _LoopClient:
    client: Any  # openai.AsyncOpenAI
    closer: AsyncGenerator[None, None]


async def _close_with_loop(
    client: Any, clients: dict[asyncio.AbstractEventLoop, _LoopClient], loop: asyncio.AbstractEventLoop
) -> AsyncGenerator[None, None]:
    """Stays suspended while ``client`` lives; closing it closes the client.

    An HTTP client's connections belong to the event loop that opened them.
    Parking this generator on that loop means asyncio closes the client when
    the loop shuts down (``asyncio.run`` finalizes pending async generators),
    so repeated ``asyncio.run`` calls with one model neither leak connections
    nor reuse ones whose loop is gone.
    """
    try:
        yield
    finally:
        if clients.get(loop) is not None and clients[loop].client is client:
            del clients[loop]
        await client.close()
        # Closed transports release their sockets in a callback on the next loop
        # iteration; give it that iteration in case the loop closes right after.
        await asyncio.sleep(0)


class OpenAIModel(Model):
    """An OpenAI chat model, or any OpenAI-compatible server through ``base_url``.

    ``api_key`` and ``base_url`` default to ``OPENAI_API_KEY`` and
    ``OPENAI_BASE_URL``; ``timeout`` bounds a whole call made through plait (agents, teams,
    :func:`plait.models.stream_with_retry`), in seconds (a request's
    ``ModelSettings.timeout`` overrides it); ``default_headers`` go with every request.

    >>> model = OpenAIModel("gpt-4o-mini")
    >>> local = OpenAIModel("llama3.1", base_url="http://localhost:11434/v1", api_key="ollama")

    One HTTP client is built per event loop on first use and closed when that
    loop shuts down, or by :meth:`aclose`. Pickling drops it; the copy builds its own.
    """

    provider: ClassVar[str] = "openai"
    accepts_parts: ClassVar[frozenset[str]] = frozenset({"text", "image", "audio", "file"})
    supports_structured_output: ClassVar[bool] = True
    transient_attributes: ClassVar[tuple[str, ...]] = ("_clients",)

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        organization: str | None = None,
        settings: ModelSettings | None = None,
        retry: RetryPolicy | None = None,
        pricing: Pricing | None = None,
        timeout: float | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(model, settings=settings, retry=retry, pricing=pricing)
        self.api_key = api_key
        self.base_url = base_url
        self.organization = organization
        self.timeout = timeout
        self.default_headers = dict(default_headers) if default_headers else None
        self._clients: dict[asyncio.AbstractEventLoop, _LoopClient] | None = None

    # -- client --------------------------------------------------------------------

    def _build_client(self) -> Any:
        try:
            import openai
        except ImportError as exc:
            raise MissingDependencyError(
                f"OpenAIModel({self.model!r}) needs the openai package; install it with: pip install plait-openai"
            ) from exc
        api_key = self.api_key or os.environ.get("OPENAI_API_KEY")
        if not api_key:
            raise AuthenticationError(
                f"OpenAIModel({self.model!r}): no API key; set the OPENAI_API_KEY environment variable "
                "or pass api_key=... (for a local OpenAI-compatible server that ignores keys, any "
                "placeholder such as api_key='unused' will do)",
                provider=self.provider,
            )
        options: dict[str, Any] = {
            "api_key": api_key,
            "base_url": self.base_url,
            "organization": self.organization,
            "default_headers": self.default_headers,
            "max_retries": 0,
        }
        if self.timeout is not None:
            options["timeout"] = self.timeout
        return openai.AsyncOpenAI(**options)

    async def _client(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._clients is None:
            self._clients = {}
        entry = self._clients.get(loop)
        if entry is None and "openai" not in sys.modules:
            await import_in_thread("openai")  # not on the loop: it takes a while
            entry = self._clients.get(loop)  # another call may have built it meanwhile
        if entry is None:
            # A loop closed without finalizing its async generators never ran its
            # closer; forget its client rather than keep it (and the loop) forever.
            for closed in [other for other in self._clients if other.is_closed()]:
                del self._clients[closed]
            client = self._build_client()
            closer = _close_with_loop(client, self._clients, loop)
            entry = self._clients[loop] = _LoopClient(client, closer)
            await anext(closer)  # park it on this loop (see _close_with_loop)
        return entry.client

    async def aclose(self) -> None:
        """Close the HTTP client of the running event loop, if one was built."""
        entry = (self._clients or {}).get(asyncio.get_running_loop())
        if entry is not None:
            await entry.closer.aclose()

    async def __aenter__(self) -> OpenAIModel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _params(self, client: Any, request: ModelRequest) -> dict[str, Any]:
        # OpenAI's own API wants max_completion_tokens (its reasoning models reject
        # max_tokens); OpenAI-compatible servers widely understand only max_tokens.
        max_tokens_param = "max_completion_tokens" if client.base_url.host == _OPENAI_HOST else "max_tokens"
        params, timeout = request_params(
            self.model, request, self.settings, max_tokens_param=max_tokens_param
        )
        if timeout is not None:
            params["timeout"] = timeout
        return params

    def secrets(self) -> list[str]:
        """The API key and credential headers sent, scrubbed from every error."""
        return credentials(self.api_key or os.environ.get("OPENAI_API_KEY"), headers=self.default_headers)

    def _raise_mapped(self, exc: Exception) -> NoReturn:
        mapped = map_error(exc, self.model)
        scrub_exception(mapped or exc, self.secrets())
        if mapped is None:
            raise exc
        raise mapped from exc

    # -- the model protocol ------------------------------------------------------------

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        """Stream the answer: text deltas, each tool call once complete, then the response."""
        client = await self._client()
        params = self._params(client, request)
        assembler = ChatStream(provider=self.provider, model=self.model)
        try:
            stream = await client.chat.completions.create(
                **params, stream=True, stream_options={"include_usage": True}
            )
            async with stream:
                async for chunk in stream:
                    for item in assembler.feed(chunk):
                        yield item
        except Exception as exc:
            self._raise_mapped(exc)
        for item in assembler.finish():
            yield item

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """One non-streaming request."""
        client = await self._client()
        params = self._params(client, request)
        try:
            completion = await client.chat.completions.create(**params)
        except Exception as exc:
            self._raise_mapped(exc)
        return response_from_completion(completion, provider=self.provider, model=self.model)
