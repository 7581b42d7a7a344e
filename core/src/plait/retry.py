"""Retry policy: exponential backoff with jitter and an exception filter.

One policy object serves steps (``Step(retry=...)``) and model calls
(``Agent(retry=...)``); a server's ``Retry-After`` (an exception attribute
``retry_after`` in seconds) is honoured when it asks for longer than the backoff.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol

from plait.errors import BudgetExceededError, DefinitionError

__all__ = ["Attempt", "RetryPolicy", "parse_retry_after", "retrying"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry a failing step or model call.

    ``max_attempts`` counts the first try: ``RetryPolicy(max_attempts=3)`` tries
    at most three times. Delays grow as ``initial_delay * multiplier**n`` up to
    ``max_delay``; ``jitter`` spreads them by up to that fraction either way.
    ``retry_on`` is a tuple of exception types, or a predicate on the exception.

    >>> RetryPolicy(max_attempts=4, initial_delay=0.5, retry_on=(TimeoutError,))
    """

    max_attempts: int = 3
    initial_delay: float = 0.5
    multiplier: float = 2.0
    max_delay: float = 30.0
    jitter: float = 0.2
    retry_on: tuple[type[BaseException], ...] | Callable[[BaseException], bool] = field(default=(Exception,))

    def __post_init__(self) -> None:
        from plait._checks import check_number

        check_number(self.max_attempts, "RetryPolicy", "max_attempts", minimum=1, integer=True)
        check_number(self.initial_delay, "RetryPolicy", "initial_delay")
        check_number(self.max_delay, "RetryPolicy", "max_delay")
        check_number(self.multiplier, "RetryPolicy", "multiplier", minimum=1)
        check_number(self.jitter, "RetryPolicy", "jitter")
        if self.jitter > 1:
            raise DefinitionError(f"RetryPolicy: jitter must be within 0..1, got {self.jitter!r}")
        retry_on = self.retry_on
        if isinstance(retry_on, type) and issubclass(retry_on, BaseException):
            object.__setattr__(self, "retry_on", (retry_on,))  # retry_on=TimeoutError: one type
        elif isinstance(retry_on, tuple):
            if not retry_on or not all(
                isinstance(t, type) and issubclass(t, BaseException) for t in retry_on
            ):
                raise DefinitionError(
                    f"RetryPolicy: retry_on must be a non-empty tuple of exception types, got {retry_on!r}"
                )
        elif not callable(retry_on):
            raise DefinitionError(
                f"RetryPolicy: retry_on must be a tuple of exception types or a predicate, got {retry_on!r}"
            )

    @classmethod
    def from_max_retries(cls, max_retries: int) -> RetryPolicy:
        """Agno's ``max_retries=N``: N retries after the first attempt."""
        return cls(max_attempts=max_retries + 1)

    def should_retry(self, exc: BaseException, attempt: int) -> bool:
        """True when ``exc`` raised on try number ``attempt`` (1-based) deserves another."""
        if attempt >= self.max_attempts:
            return False
        if isinstance(exc, BudgetExceededError):
            return False  # the same call would cross the same limit again
        if isinstance(self.retry_on, tuple):
            return isinstance(exc, self.retry_on)
        return bool(self.retry_on(exc))

    def delay(self, attempt: int, exc: BaseException | None = None) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based)."""
        base = min(self.max_delay, self.initial_delay * self.multiplier ** (attempt - 1))
        if self.jitter:
            base *= 1 + random.uniform(-self.jitter, self.jitter)
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(retry_after, (int, float)) and retry_after > base:
            return float(retry_after)
        return max(0.0, base)


def _same(exc: BaseException) -> BaseException:
    return exc


def _always(exc: BaseException) -> bool:
    return True


class Attempt:
    """One try of a :func:`retrying` loop; use it as ``with attempt:`` around the work.

    A failure the policy retries is swallowed (and kept as :attr:`error`); any other
    failure, and every ``BaseException`` that is not an ``Exception``
    (cancellation, Ctrl-C), propagates.
    """

    __slots__ = ("_loop", "error", "number")

    def __init__(self, loop: _Loop, number: int) -> None:
        self._loop = loop
        self.number = number  #: 1 for the first try
        self.error: Exception | None = None

    def __enter__(self) -> Attempt:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if not isinstance(exc, Exception):
            return False
        loop = self._loop
        judged = loop.judge(exc)
        if (
            loop.policy is None
            or not loop.retryable(judged)
            or not loop.policy.should_retry(judged, self.number)
        ):
            return False
        self.error = exc
        return True


@dataclass(slots=True)
class _Loop:
    """What every :class:`Attempt` of one :func:`retrying` loop shares: the policy and how a
    failure is judged (its root cause) and whether it may be retried at all."""

    policy: RetryPolicy | None
    judge: Callable[[BaseException], BaseException]
    retryable: Callable[[BaseException], bool]


async def retrying(
    policy: RetryPolicy | None,
    *,
    judge: Callable[[BaseException], BaseException] = _same,
    retryable: Callable[[BaseException], bool] = _always,
    on_retry: Callable[[int, Any, float], None] | None = None,
) -> AsyncGenerator[Attempt, None]:
    """The one retry loop of plait, for steps and model calls, plain calls and streams alike.

    >>> async with contextlib.aclosing(retrying(policy, on_retry=report)) as attempts:
    ...     async for attempt in attempts:
    ...         with attempt:
    ...             result = await call()

    Each failure is judged by ``judge(exc)`` (say, the root cause of a wrapped
    error): retried when ``retryable`` and the policy agree, after
    ``on_retry(attempt, exc, delay)`` and ``delay`` seconds of backoff. The loop
    ends after a try that did not fail; a failure that is not retried leaves the
    ``with`` block. ``policy=None``: one try.
    """
    loop = _Loop(policy, judge, retryable)
    number = 1
    while True:
        attempt = Attempt(loop, number)
        yield attempt
        error = attempt.error
        if error is None or policy is None:
            return
        delay = policy.delay(number, judge(error))
        if on_retry is not None:
            on_retry(number, error, delay)
        await asyncio.sleep(delay)
        number += 1


class _Headers(Protocol):
    def get(self, name: str, /) -> str | None: ...


def parse_retry_after(headers: Mapping[str, str] | _Headers | None) -> float | None:
    """Seconds a server asks to wait, from HTTP headers: ``retry-after-ms``, else
    ``retry-after`` (seconds or an HTTP date); None when absent or unreadable.

    ``headers`` must look names up case-insensitively (as httpx's and aiohttp's do).
    """
    if not headers:
        return None
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        import email.utils  # here: the email package costs ~5 ms of importing plait

        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
