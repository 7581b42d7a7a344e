"""Calling a model: the deadline and secret scrubbing of one call, retries, rate limits and
prices around it, :class:`FallbackModel` over several models, and resolving ``"provider:model"``
strings and the default model; :mod:`plait.models` is its public home."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import os
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, ClassVar, cast

from plait._checks import check_model_string
from plait._limits import RateWait, active_limiters, rate_limited
from plait._model_types import (
    Model,
    ModelRequest,
    ModelResponse,
    ModelStreamEvent,
    Pricing,
)
from plait._parts import ALL_KINDS
from plait._secrets import scrub_exception
from plait.errors import (
    BudgetExceededError,
    DefinitionError,
    ModelConnectionError,
    ModelError,
    ModelTimeoutError,
    PluginError,
    RateLimitError,
    ServerError,
)
from plait.retry import RetryPolicy, retrying

__all__ = [
    "DEFAULT_FALLBACK_ON",
    "DEFAULT_MODEL_ENV",
    "FallbackModel",
    "complete_with_retry",
    "default_model",
    "get_model",
    "guarded_complete",
    "guarded_stream",
    "import_in_thread",
    "model_pricing",
    "price_response",
    "stream_with_retry",
]


#: what a :class:`FallbackModel` falls back on by default: the errors a retry may cure, once
#: the member's retries are spent (rate limits, server errors, timeouts, dropped connections)
DEFAULT_FALLBACK_ON: tuple[type[ModelError], ...] = (
    RateLimitError,
    ServerError,
    ModelTimeoutError,
    ModelConnectionError,
)


class FallbackModel(Model):
    """Several models, tried in order: when one fails with an error ``fallback_on`` names
    (after its own retries), the next one gets the same request.

    >>> Agent(model=FallbackModel("openai:gpt-4o-mini", "anthropic:claude-haiku-4-5"))
    >>> Agent(model=["openai:gpt-4o-mini", "anthropic:claude-haiku-4-5"])   # the same

    Members are :class:`Model` objects or ``"provider:model"`` strings (resolved at first
    use). By default a member's rate limits, server errors, timeouts and connection errors,
    once its retries are exhausted, pass the request on; a bad request or an authentication
    error does not (the next model would most likely refuse it too, or hide a mistake):
    ``fallback_on=(RateLimitError, AuthenticationError)`` (exception types) or a predicate
    on the exception chooses otherwise. The last member's error is raised when every member
    failed. Each member keeps its own retry policy, timeout, settings and price (the agent's
    ``retry=`` replaces the retry policy of every member, as for a single model).

    Which model answered is on the final :class:`ModelResponse` (``answered_by``, and
    ``fallbacks``: the members skipped, each with its error), in a ``ModelFallbackEvent``
    per fallback, on the ``chat`` span and in the token-usage metric's model attribute.
    """

    provider: ClassVar[str] = "fallback"
    accepts_parts: ClassVar[frozenset[str]] = ALL_KINDS  # each model it tries checks its own

    def __init__(
        self,
        *models: Model | str,
        fallback_on: tuple[type[BaseException], ...] | Callable[[BaseException], bool] | None = None,
    ) -> None:
        if len(models) == 1 and isinstance(models[0], (list, tuple)):
            models = tuple(models[0])
        if len(models) < 2:
            raise DefinitionError(
                f"FallbackModel: expected at least two models (Model objects or 'provider:model' "
                f"strings), got {list(models)!r}"
            )
        for spec in models:
            if isinstance(spec, FallbackModel):
                continue
            if not isinstance(spec, Model) and not (isinstance(spec, str) and ":" in spec):
                raise DefinitionError(
                    "FallbackModel: each model must be a plait Model or a 'provider:model' string "
                    f"(e.g. 'openai:gpt-4o-mini'), got {spec!r}"
                )
            if isinstance(spec, str):
                check_model_string(spec, "FallbackModel")
        if fallback_on is None:
            fallback_on = DEFAULT_FALLBACK_ON
        elif isinstance(fallback_on, type) and issubclass(fallback_on, BaseException):
            fallback_on = (fallback_on,)
        if isinstance(fallback_on, tuple):
            if not fallback_on or not all(
                isinstance(t, type) and issubclass(t, BaseException) for t in fallback_on
            ):
                raise DefinitionError(
                    f"FallbackModel: fallback_on must be a tuple of exception types or a predicate, "
                    f"got {fallback_on!r}"
                )
        elif not callable(fallback_on):
            raise DefinitionError(
                f"FallbackModel: fallback_on must be a tuple of exception types or a predicate, got {fallback_on!r}"
            )
        names = [m.name if isinstance(m, Model) else m for m in models]
        super().__init__(",".join(names), retry=RetryPolicy(max_attempts=1))
        self._specs: tuple[Model | str, ...] = tuple(models)
        self._members: list[Model] | None = None
        self.fallback_on: tuple[type[BaseException], ...] | Callable[[BaseException], bool] = cast(
            Any, fallback_on
        )  # checked above

    def __repr__(self) -> str:
        names = ", ".join(repr(m.name if isinstance(m, Model) else m) for m in self._specs)
        return f"FallbackModel({names})"

    @property
    def models(self) -> list[Model]:
        """The members, in the order they are tried (strings resolved on first use)."""
        if self._members is None:
            self._members = [get_model(spec) for spec in self._specs]
        return self._members

    @property  # type: ignore[misc]
    def supports_structured_output(self) -> bool:  # type: ignore[override]
        """Only when every member does: the request is written once, for all of them."""
        return all(m.supports_structured_output for m in self.models)

    def falls_back_on(self, exc: BaseException) -> bool:
        """Whether a member's failure ``exc`` passes the request on to the next member."""
        if isinstance(exc, BudgetExceededError):
            return False  # a budget stops the run, whichever model would answer
        fallback_on = self.fallback_on
        if isinstance(fallback_on, tuple):
            return isinstance(exc, fallback_on)
        return bool(fallback_on(exc))

    def call_timeout(self, request: ModelRequest) -> float | None:
        return None  # each member's own timeout bounds its own call

    def secrets(self) -> list[str]:
        return [secret for m in self.models for secret in m.secrets()]

    async def aclose(self) -> None:
        for member in self._members or ():
            await member.aclose()

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        return self.stream_members(request)

    async def stream_members(
        self,
        request: ModelRequest,
        *,
        policy: RetryPolicy | None = None,
        on_retry: Callable[[int, ModelError, float], None] | None = None,
        on_fallback: Callable[[Model, BaseException, Model], None] | None = None,
        on_wait: Callable[[Model, RateWait], None] | None = None,
        stream: bool = True,
    ) -> AsyncIterator[ModelStreamEvent]:
        """Each member in turn, with its retries (``policy`` when given, else its own), until
        one answers; ``on_fallback(failed, error, next)`` is called before each fallback."""
        members = self.models
        skipped: list[str] = []
        for index, member in enumerate(members):
            try:
                if stream:
                    async for item in stream_with_retry(
                        member, request, policy=policy, on_retry=on_retry, on_wait=on_wait
                    ):
                        if isinstance(item, ModelResponse):
                            _answered(item, member, skipped)
                        yield item
                else:
                    response = await complete_with_retry(
                        member, request, policy=policy, on_retry=on_retry, on_wait=on_wait
                    )
                    yield _answered(response, member, skipped)
                return
            except Exception as exc:
                if index == len(members) - 1 or not self.falls_back_on(exc):
                    if skipped:
                        exc.add_note(f"{self!r} tried first: {'; '.join(skipped)}")
                    raise
                skipped.append(f"{member.name}: {type(exc).__name__}")
                if on_fallback is not None:
                    on_fallback(member, exc, members[index + 1])


def _answered(response: ModelResponse, member: Model, skipped: list[str]) -> ModelResponse:
    if response.answered_by is None:  # a nested FallbackModel already named its member
        response.answered_by = member.name
    response.fallbacks = [*skipped, *response.fallbacks]
    return response


def get_model(spec: str | Model | Sequence[Model | str], **options: Any) -> Model:
    """Resolve ``"provider:model"`` through the registered model providers.

    >>> get_model("openai:gpt-4o-mini")      # needs plait-openai installed

    A list of models (or ``"fallback:a,b"``, a :class:`FallbackModel`'s name) is a
    :class:`FallbackModel` over them.
    """
    if isinstance(spec, Model):
        return spec
    if isinstance(spec, (list, tuple)):
        return FallbackModel(*spec)
    if isinstance(spec, str) and spec.startswith("fallback:"):
        return FallbackModel(*spec.removeprefix("fallback:").split(","))
    if not isinstance(spec, str) or ":" not in spec:
        raise DefinitionError(
            f"expected a Model object or a string 'provider:model' such as 'openai:gpt-4o-mini', got {spec!r}"
        )
    from plait._lookup import registry

    prefix, _, name = spec.partition(":")
    model: Model = registry().create_model(prefix, name, **options)
    return model


#: the environment variable that names the model of an agent or team given no ``model=``
DEFAULT_MODEL_ENV = "PLAIT_MODEL"

#: the default model by its string, with the registry that built it (one model, and one
#: SDK client, for every agent that uses the default)
_defaults: dict[str, tuple[Any, Model]] = {}


def default_model(where: str) -> Model:
    """The model of an agent or team constructed without ``model=`` (``where`` names it).

    It is read from ``$PLAIT_MODEL`` (a ``"provider:model"`` string, e.g. ``"openai:gpt-4o-mini"``,
    or ``"offline:demo"`` to run without a network) when a run needs it, not when the agent is
    made: setting the variable after constructing the agent works, and changing it changes
    the next run's model. Agno falls back to an OpenAI model here; plait asks instead.
    """
    spec = os.environ.get(DEFAULT_MODEL_ENV, "").strip()
    if not spec:
        raise DefinitionError(
            f"{where} has no model: pass model= (a Model or a 'provider:model' string such as "
            f"'openai:gpt-4o-mini'), or set the environment variable {DEFAULT_MODEL_ENV} to one "
            f"({DEFAULT_MODEL_ENV}=offline:demo runs offline, without an API key)"
        )
    from plait._lookup import registry

    current = registry()
    cached = _defaults.get(spec)
    if cached is not None and cached[0] is current:
        return cached[1]
    if ":" not in spec:
        raise DefinitionError(
            f"{where} has no model= and {DEFAULT_MODEL_ENV}={spec!r} is not a 'provider:model' string "
            "(e.g. 'openai:gpt-4o-mini' or 'offline:demo')"
        )
    try:
        model = get_model(spec)
    except PluginError as exc:
        raise PluginError(f"{where} has no model= and {DEFAULT_MODEL_ENV}={spec!r}: {exc}") from exc
    _defaults[spec] = (current, model)
    return model


async def import_in_thread(module: str) -> None:
    """Import ``module`` in a worker thread unless it is imported already.

    For a provider's first call: a large SDK (openai, anthropic, litellm) takes from a few
    hundred milliseconds to seconds to import, and imported on the event loop it stops every
    other branch, stream and lease renewal of the process meanwhile. After this returns the
    import is a dictionary lookup. A module that cannot be imported is left alone: the
    provider's own import then fails, with its install hint.

    >>> await import_in_thread("openai")   # then build the client as usual
    """
    if module not in sys.modules:
        with contextlib.suppress(ImportError):
            await asyncio.to_thread(importlib.import_module, module)


def _deadline_error(model: Model, timeout: float) -> ModelTimeoutError:
    return ModelTimeoutError(
        f"{model!r}: no complete answer within {timeout:g} s, the total time allowed for one call "
        "(the request and every part of its answer; set with timeout= on the model or "
        "ModelSettings(timeout=...))",
        provider=model.provider,
    )


async def guarded_stream(model: Model, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
    """``model.stream(request)`` within :meth:`Model.call_timeout` in all, secrets scrubbed from errors.

    The deadline covers the whole call, not one read: a server that drips a
    byte every few seconds cannot hold a call open past it. Time the consumer
    spends between items does not count. Past it, :class:`ModelTimeoutError`.
    """
    timeout = model.call_timeout(request)
    model.check_parts(request)
    source = model.stream(request)
    try:
        if timeout is None:
            async for item in source:
                yield item
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                async with asyncio.timeout_at(deadline) as scope:
                    item = await anext(source)
            except StopAsyncIteration:
                return
            except TimeoutError:
                if scope.expired():
                    raise _deadline_error(model, timeout) from None
                raise
            yield item
    except BaseException as exc:
        scrub_exception(exc, model.secrets())
        raise
    finally:
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            await aclose()


async def guarded_complete(model: Model, request: ModelRequest) -> ModelResponse:
    """``model.complete(request)`` within :meth:`Model.call_timeout`, secrets scrubbed from errors."""
    timeout = model.call_timeout(request)
    try:
        model.check_parts(request)
        async with asyncio.timeout(timeout) as scope:
            return await model.complete(request)
    except BaseException as exc:
        if isinstance(exc, TimeoutError) and timeout is not None and scope.expired():
            raise _deadline_error(model, timeout) from None
        scrub_exception(exc, model.secrets())
        raise


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, ModelError) and exc.retryable


async def stream_with_retry(
    model: Model,
    request: ModelRequest,
    *,
    policy: RetryPolicy | None = None,
    on_retry: Callable[[int, ModelError, float], None] | None = None,
    on_fallback: Callable[[Model, BaseException, Model], None] | None = None,
    on_wait: Callable[[Model, RateWait], None] | None = None,
) -> AsyncIterator[ModelStreamEvent]:
    """``model.stream(request)``, retried on retryable :class:`~plait.errors.ModelError`.

    Each attempt is bounded and scrubbed as :func:`guarded_stream` says.
    A retry starts the call over: ``on_retry(attempt, error, delay)`` is called
    first, so a consumer that already saw part of the answer can discard it.
    A :class:`FallbackModel` retries each member in turn, calling
    ``on_fallback(failed_model, error, next_model)`` before passing the request on. A call
    held by a rate limit (:mod:`plait._limits`) longer than a fraction of a second calls
    ``on_wait(model, wait)`` as it starts waiting. The final response's ``usage.cost`` is set
    when the answering model has a price.
    """
    if isinstance(model, FallbackModel):
        async for item in model.stream_members(
            request, policy=policy, on_retry=on_retry, on_fallback=on_fallback, on_wait=on_wait
        ):
            yield item
        return
    limiters = active_limiters(model.provider, model.name)  # rate limits: None unless declared
    attempts = retrying(policy or model.retry, retryable=_retryable, on_retry=on_retry)
    async with contextlib.aclosing(attempts):
        async for attempt in attempts:
            with attempt:
                if limiters is None:
                    async for item in guarded_stream(model, request):
                        if isinstance(item, ModelResponse):
                            price_response(model, item)
                        yield item
                else:
                    async with rate_limited(limiters, request, _waits_of(model, on_wait)) as reported:
                        async for item in guarded_stream(model, request):
                            if isinstance(item, ModelResponse):
                                reported.append(price_response(model, item).usage)
                            yield item


async def complete_with_retry(
    model: Model,
    request: ModelRequest,
    *,
    policy: RetryPolicy | None = None,
    on_retry: Callable[[int, ModelError, float], None] | None = None,
    on_fallback: Callable[[Model, BaseException, Model], None] | None = None,
    on_wait: Callable[[Model, RateWait], None] | None = None,
) -> ModelResponse:
    """``model.complete(request)``, retried on retryable :class:`~plait.errors.ModelError`;
    each attempt bounded and scrubbed as :func:`guarded_complete` says."""
    response: ModelResponse | None = None
    if isinstance(model, FallbackModel):
        async for item in model.stream_members(
            request, policy=policy, on_retry=on_retry, on_fallback=on_fallback, on_wait=on_wait, stream=False
        ):
            if isinstance(item, ModelResponse):  # the one item
                response = item
        assert response is not None
        return response
    limiters = active_limiters(model.provider, model.name)  # rate limits: None unless declared
    attempts = retrying(policy or model.retry, retryable=_retryable, on_retry=on_retry)
    async with contextlib.aclosing(attempts):
        async for attempt in attempts:
            with attempt:
                if limiters is None:
                    response = await guarded_complete(model, request)
                else:
                    async with rate_limited(limiters, request, _waits_of(model, on_wait)) as reported:
                        response = await guarded_complete(model, request)
                        reported.append(response.usage)
    assert response is not None  # the loop ends only after a try that did not fail
    return price_response(model, response)


def _waits_of(
    model: Model, on_wait: Callable[[Model, RateWait], None] | None
) -> Callable[[RateWait], None] | None:
    return None if on_wait is None else functools.partial(on_wait, model)


def price_response(model: Model, response: ModelResponse) -> ModelResponse:
    """Set ``response.usage.cost`` from the model's :class:`Pricing`, else from the price table
    (:mod:`plait.prices`), when either knows the model; a cost already set stays."""
    usage = response.usage
    if usage.cost is None:
        pricing = model.pricing
        if pricing is not None:
            usage.cost = pricing.cost(usage)
        else:
            from plait.prices import table_cost

            usage.cost = table_cost(model.provider, model.model, usage.input_tokens, usage.output_tokens)
    return response


def model_pricing(model: Model) -> Pricing | None:
    """The model's price per million tokens: its own :class:`Pricing`, else the price table's
    (:func:`plait.prices.table_pricing`), else None. A :class:`FallbackModel`'s is its most
    expensive member's (what a budget must assume before it knows which one answers)."""
    if isinstance(model, FallbackModel):
        prices = [model_pricing(m) for m in model.models]
        if any(p is None for p in prices):
            return None
        return Pricing(max(p.input for p in prices if p), max(p.output for p in prices if p))
    if model.pricing is not None:
        return model.pricing
    from plait.prices import table_pricing

    found = table_pricing(model.provider, model.model)
    return None if found is None else Pricing(*found)
