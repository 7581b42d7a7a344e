"""``LiteLLMModel``: the plait model protocol over ``litellm.acompletion``.

``litellm`` is imported on first use, never at import time, and configured
then: its cost map is read from the installed package (never fetched), its
debug banners are off, and every call is made with its retries off, since
plait's :class:`~plait.retry.RetryPolicy` retries from the classified errors of
:mod:`plait_litellm._errors`.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any, ClassVar, NoReturn

from plait.chat_format import ChatStream, response_from_completion
from plait.errors import MissingDependencyError
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
from plait_litellm._convert import completion_kwargs
from plait_litellm._errors import map_error

__all__ = ["LiteLLMModel"]

#: environment variables through which LiteLLM finds the providers' credentials
_SECRET_ENV_SUFFIXES = ("_API_KEY", "_API_TOKEN", "_ACCESS_KEY", "_SECRET_ACCESS_KEY", "_AUTH_TOKEN")


def _before_import() -> None:
    # Read before litellm's first import: without it, importing litellm
    # downloads its model cost map from GitHub.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def _import_litellm() -> Any:
    _before_import()
    try:
        import litellm
    except ImportError as exc:
        raise MissingDependencyError(
            "LiteLLMModel needs the litellm package; install it with: pip install plait-litellm"
        ) from exc
    # "Give Feedback / Get Help" banners printed to stdout on every error.
    litellm.suppress_debug_info = True
    if hasattr(litellm, "telemetry"):  # releases before 1.40 phoned home unless told not to
        litellm.telemetry = False
    return litellm


# -- LiteLLM's HTTP clients and event loops ------------------------------------------------
#
# LiteLLM caches its HTTP clients per event loop (the loop's id is part of the
# cache key), and never closes them when their loop ends: each `asyncio.run`
# that makes a call would leave its connections open. One parked async
# generator per loop closes that loop's cached clients when asyncio shuts the
# loop down (`asyncio.run` finalizes pending async generators), the same way
# plait's other providers close their own clients.

_loop_closers: dict[asyncio.AbstractEventLoop, AsyncGenerator[None, None]] = {}


async def _close_loop_clients(litellm: Any, loop: asyncio.AbstractEventLoop) -> None:
    """Close and forget the clients LiteLLM cached for ``loop``."""
    cache = getattr(litellm, "in_memory_llm_clients_cache", None)
    entries = getattr(cache, "cache_dict", None)
    if cache is None or not isinstance(entries, dict):
        return
    suffix = f"-{id(loop)}"
    for key in [key for key in entries if isinstance(key, str) and key.endswith(suffix)]:
        client = entries.get(key)
        cache.delete_cache(key)
        close = getattr(client, "aclose", None) or getattr(client, "close", None)
        if callable(close):
            try:
                result = close()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:  # a client that fails to close is gone either way
                pass
    # Closed transports release their sockets in a callback on the next loop
    # iteration; give it that iteration in case the loop closes right after.
    await asyncio.sleep(0)


async def _loop_closer(litellm: Any, loop: asyncio.AbstractEventLoop) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        _loop_closers.pop(loop, None)
        await _close_loop_clients(litellm, loop)


async def _litellm_for_this_loop() -> Any:
    """``litellm``, imported and configured, with the running loop's clients closed with it."""
    if "litellm" not in sys.modules:  # imported off the event loop the first time: it takes seconds
        _before_import()
        await import_in_thread("litellm")
    litellm = _import_litellm()
    loop = asyncio.get_running_loop()
    if loop not in _loop_closers:
        # A loop closed without finalizing its async generators never ran its
        # closer; forget it rather than keep it alive forever.
        for closed in [other for other in _loop_closers if other.is_closed()]:
            del _loop_closers[closed]
        closer = _loop_closers[loop] = _loop_closer(litellm, loop)
        await anext(closer)  # park it on this loop: asyncio now finalizes it at shutdown
    return litellm


class LiteLLMModel(Model):
    """Any chat model LiteLLM supports, named as LiteLLM names it (``"<provider>/<model>"``).

    >>> model = LiteLLMModel("anthropic/claude-sonnet-4-5")
    >>> local = LiteLLMModel("ollama/llama3", base_url="http://localhost:11434")
    >>> agent = Agent(model="litellm:openai/gpt-4o-mini")   # through the entry point

    ``api_key`` and ``base_url`` (LiteLLM's ``api_base``) default to what LiteLLM
    reads from the provider's own environment variables (``OPENAI_API_KEY``,
    ``ANTHROPIC_API_KEY``, ...). ``timeout`` bounds a whole call made through plait (agents, teams,
    :func:`plait.models.stream_with_retry`), in seconds (a
    request's ``ModelSettings.timeout`` overrides it). Every other keyword
    argument goes to ``litellm.acompletion`` with each call (``api_version``,
    ``extra_headers``, ``drop_params``, ...), as does ``ModelSettings.extra``.

    LiteLLM's own retries are off: ``retry`` (a :class:`plait.RetryPolicy`)
    governs them. Structured output is native when LiteLLM says the model
    supports a JSON-schema ``response_format``
    (:attr:`supports_structured_output`, asked of LiteLLM once per model).
    """

    provider: ClassVar[str] = "litellm"
    accepts_parts: ClassVar[frozenset[str]] = frozenset({"text", "image", "audio", "video", "file"})

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
        **litellm_options: Any,
    ) -> None:
        super().__init__(model, settings=settings, retry=retry, pricing=pricing)
        self.api_key = api_key
        self.base_url = base_url
        self.timeout = timeout
        self.litellm_options = litellm_options
        self._structured_output: bool | None = None

    @property  # type: ignore[misc]  # a per-model answer where the base class has a constant
    def supports_structured_output(self) -> bool:  # type: ignore[override]
        """Whether LiteLLM's model map says this model accepts a JSON-schema ``response_format``.

        Unknown models (a local Ollama model, a custom deployment) answer False:
        the agent then asks for JSON in the prompt and validates the reply.
        """
        if self._structured_output is None:
            litellm = _import_litellm()
            try:
                self._structured_output = bool(litellm.supports_response_schema(model=self.model))
            except Exception:  # LiteLLM documents False for unknown models; some versions raise
                self._structured_output = False
        return self._structured_output

    # -- the model protocol ------------------------------------------------------------

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        """Stream the answer: text deltas, each tool call once complete, then the response."""
        litellm = await _litellm_for_this_loop()
        kwargs = self._kwargs(request)
        assembler = ChatStream(provider=self.provider, model=self.model)
        try:
            stream = await litellm.acompletion(**kwargs, stream=True, stream_options={"include_usage": True})
        except Exception as exc:
            self._raise_mapped(exc)
        try:
            async for chunk in stream:
                for item in assembler.feed(chunk):
                    yield item
        except Exception as exc:
            self._raise_mapped(exc)
        finally:
            await stream.aclose()
        for item in assembler.finish():
            yield item

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """One non-streaming request."""
        litellm = await _litellm_for_this_loop()
        kwargs = self._kwargs(request)
        try:
            response = await litellm.acompletion(**kwargs)
        except Exception as exc:
            self._raise_mapped(exc)
        return response_from_completion(response, provider=self.provider, model=self.model)

    async def aclose(self) -> None:
        """Close the HTTP clients LiteLLM cached for the running event loop.

        LiteLLM shares those clients between every model on the loop; the next
        call builds new ones. They are closed anyway when the loop shuts down.
        """
        closer = _loop_closers.get(asyncio.get_running_loop())
        if closer is not None:
            await closer.aclose()

    async def __aenter__(self) -> LiteLLMModel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- helpers ------------------------------------------------------------------------

    def _kwargs(self, request: ModelRequest) -> dict[str, Any]:
        options: dict[str, Any] = dict(self.litellm_options)
        if self.api_key is not None:
            options["api_key"] = self.api_key
        if self.base_url is not None:
            options["api_base"] = self.base_url
        if self.timeout is not None:
            options["timeout"] = self.timeout
        kwargs = completion_kwargs(self.model, request, self.settings, options)
        # plait's RetryPolicy retries; LiteLLM's wrapper and the provider SDKs must not.
        kwargs["num_retries"] = 0
        kwargs["max_retries"] = 0
        if "tools" in kwargs:
            # plait's tools are plain functions, never LiteLLM proxy MCP servers. Without
            # this, litellm 1.106 imports its MCP gateway (and the optional `mcp` package,
            # failing without it) for any request with tools; 1.109 checks the tools first.
            kwargs.setdefault("_skip_mcp_handler", True)
        return kwargs

    def secrets(self) -> list[str]:
        """The credentials LiteLLM may send: ``api_key``, credential headers among the
        options, and the providers' keys in the environment (``*_API_KEY``, ...)."""
        headers: dict[str, str] = {}
        for option in ("headers", "extra_headers"):
            given = self.litellm_options.get(option)
            if isinstance(given, Mapping):  # anything else is litellm's to reject
                headers.update(given)
        from_env = [value for name, value in os.environ.items() if name.endswith(_SECRET_ENV_SUFFIXES)]
        return credentials(self.api_key, *from_env, headers=headers)

    def _raise_mapped(self, exc: Exception) -> NoReturn:
        mapped = map_error(exc, self.model)
        scrub_exception(mapped or exc, self.secrets())
        if mapped is None or mapped is exc:
            raise exc
        # map_error may name a better cause (the exception LiteLLM wrapped)
        raise mapped from (mapped.__cause__ or exc)
