"""Rate limits: requests and tokens per minute and concurrent calls, per provider or per model,
enforced in this process before each model request: calls wait their turn instead of
receiving 429s.

A :class:`RateLimit` is declared on a workflow (``Workflow(limits={"openai": RateLimit(...)})``,
shared by every branch, nested workflow and concurrent run of that workflow object) or for the
whole process (:func:`set_rate_limits`). A key is a provider (``"openai"``) or a model string
(``"openai:gpt-4o-mini"``); a call counts against every limit whose key names its model or its
provider. Each try counts (a retry is a request too); a :class:`~plait.models.FallbackModel`'s
members each count against their own.

Token counts are estimated from the request before it is sent (a quarter of its characters,
as for budgets: :func:`estimate_input_tokens`) and corrected with the usage the provider
reports once the answer is in. A limiter shared across processes (Redis) is not part of this
module: every process here has its own.

Nothing here runs unless a limit is declared: the model call asks :func:`active_limiters`,
which returns None.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import json
import math
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from plait._checks import check_number
from plait.errors import DefinitionError

__all__ = [
    "Limiter",
    "RateLimit",
    "active_limiters",
    "check_limits",
    "estimate_input_tokens",
    "limits_scope",
    "set_rate_limits",
]

#: seconds of the sliding window the per-minute limits count in
_WINDOW = 60.0
#: how often a call waiting for a concurrency slot looks again (seconds)
_POLL = 0.005


@dataclass(frozen=True, slots=True)
class RateLimit:
    """How fast calls to a provider (or one model) may go, in this process.

    >>> Workflow(name="Fan-out", steps=[...], limits={
    ...     "openai": RateLimit(requests_per_minute=500, tokens_per_minute=200_000),
    ...     "anthropic:claude-haiku-4-5": RateLimit(max_concurrent=4),
    ... })

    ``requests_per_minute`` and ``tokens_per_minute`` count over a sliding minute;
    ``max_concurrent`` bounds the calls in flight. A call that would go over waits (first
    come, first served) until it fits; one whose estimate alone exceeds
    ``tokens_per_minute`` goes when the minute is empty.
    """

    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    max_concurrent: int | None = None

    def __post_init__(self) -> None:
        for name in ("requests_per_minute", "tokens_per_minute", "max_concurrent"):
            value = getattr(self, name)
            if value is not None:
                check_number(value, "RateLimit", name, minimum=1, integer=name == "max_concurrent")
        if (
            self.requests_per_minute is None
            and self.tokens_per_minute is None
            and self.max_concurrent is None
        ):
            raise DefinitionError(
                "RateLimit: expected requests_per_minute=, tokens_per_minute= or max_concurrent=, got none"
            )


class Limiter:
    """The state of one :class:`RateLimit`: the last minute's calls and the calls in flight."""

    __slots__ = ("_lock", "_queue", "_tickets", "in_flight", "key", "limit", "recent")

    def __init__(self, key: str, limit: RateLimit) -> None:
        self.key = key
        self.limit = limit
        self._lock = threading.Lock()
        #: [start time, tokens] of each call in the window, oldest first
        self.recent: deque[list[float]] = deque()
        self.in_flight = 0
        self._tickets = itertools.count()
        self._queue: deque[int] = deque()

    def _wait_needed(self, tokens: float, now: float) -> float | None:
        """Seconds until a call of ``tokens`` fits (0: now), None: wait for a slot to free."""
        limit = self.limit
        recent = self.recent
        while recent and recent[0][0] <= now - _WINDOW:
            recent.popleft()
        if limit.max_concurrent is not None and self.in_flight >= limit.max_concurrent:
            return None
        wait = 0.0
        if limit.requests_per_minute is not None and len(recent) >= limit.requests_per_minute:
            index = len(recent) - int(limit.requests_per_minute)
            wait = max(wait, recent[index][0] + _WINDOW - now)
        if limit.tokens_per_minute is not None and recent:
            used = sum(entry[1] for entry in recent)
            if used + tokens > limit.tokens_per_minute:
                # wait until enough of the oldest calls leave the window (all of them at most)
                excess = used + tokens - limit.tokens_per_minute
                freed = 0.0
                for start, spent in recent:
                    freed += spent
                    if freed >= excess:
                        wait = max(wait, start + _WINDOW - now)
                        break
                else:
                    wait = max(wait, recent[-1][0] + _WINDOW - now)
        return wait

    async def acquire(self, tokens: float) -> list[float]:
        """Wait for this call's turn; the entry returned is corrected by :meth:`release`."""
        with self._lock:
            ticket = next(self._tickets)
            self._queue.append(ticket)
        try:
            while True:
                with self._lock:
                    wait: float | None = _POLL
                    if self._queue[0] == ticket:
                        now = time.monotonic()
                        wait = self._wait_needed(tokens, now)
                        if wait is not None and wait <= 0:
                            self._queue.popleft()
                            entry = [now, tokens]
                            self.recent.append(entry)
                            self.in_flight += 1
                            return entry
                await asyncio.sleep(_POLL if wait is None else max(_POLL, min(wait, 1.0)))
        except BaseException:
            with self._lock, contextlib.suppress(ValueError):
                self._queue.remove(ticket)
            raise

    def release(self, entry: list[float], tokens: float | None) -> None:
        """The call ended; ``tokens``: what the provider reported (None: keep the estimate)."""
        with self._lock:
            self.in_flight -= 1
            if tokens is not None:
                entry[1] = tokens


def check_limits(limits: Any, where: str) -> dict[str, Limiter] | None:
    """``{key: RateLimit}`` as limiters (None for none); an error naming ``where`` otherwise."""
    if limits is None:
        return None
    if not isinstance(limits, Mapping):
        raise DefinitionError(
            f"{where}: limits must be a dict of provider or model names to RateLimit(...), got {limits!r}"
        )
    limiters = {}
    for key, limit in limits.items():
        if not isinstance(key, str) or not key:
            raise DefinitionError(
                f"{where}: a limits key must be a provider ('openai') or a model ('openai:gpt-4o-mini'), got {key!r}"
            )
        if not isinstance(limit, RateLimit):
            raise DefinitionError(f"{where}: limits[{key!r}] must be a RateLimit(...), got {limit!r}")
        limiters[key] = Limiter(key, limit)
    return limiters or None


_PROCESS: dict[str, Limiter] = {}
_SCOPED: contextvars.ContextVar[tuple[dict[str, Limiter], ...]] = contextvars.ContextVar(
    "plait_rate_limits", default=()
)


def set_rate_limits(limits: Mapping[str, RateLimit] | None) -> None:
    """Rate limits for every model call in this process (``None`` or ``{}``: none), besides
    any a workflow declares.

    >>> set_rate_limits({"openai": RateLimit(requests_per_minute=500)})
    """
    limiters = check_limits(limits or {}, "set_rate_limits") if limits else None
    _PROCESS.clear()
    _PROCESS.update(limiters or {})


@contextlib.contextmanager
def limits_scope(limiters: dict[str, Limiter]) -> Iterator[None]:
    """``limiters`` in force for the block (and every task it starts)."""
    token = _SCOPED.set((*_SCOPED.get(), limiters))
    try:
        yield
    finally:
        _SCOPED.reset(token)


def active_limiters(provider: str, name: str) -> list[Limiter] | None:
    """The limiters a call of model ``name`` (``provider:model``) counts against, or None."""
    scoped = _SCOPED.get()
    if not scoped and not _PROCESS:
        return None
    found = []
    for limiters in (_PROCESS, *scoped):
        for key in (name, provider):
            limiter = limiters.get(key)
            if limiter is not None and limiter not in found:
                found.append(limiter)
    return found or None


@contextlib.asynccontextmanager
async def rate_limited(limiters: list[Limiter], request: Any) -> AsyncIterator[list[Any]]:
    """Wait for a turn on every limiter, hold it during the call; the yielded list takes the
    call's final usage (append it) to correct the token estimate."""
    tokens = estimate_input_tokens(request)
    entries: list[tuple[Limiter, list[float]]] = []
    reported: list[Any] = []
    try:
        for limiter in limiters:
            entries.append((limiter, await limiter.acquire(tokens)))
        yield reported
    finally:
        usage = reported[-1] if reported else None
        actual = None if usage is None else float(usage.input_tokens + usage.output_tokens)
        for limiter, entry in entries:
            limiter.release(entry, actual)


def estimate_input_tokens(request: Any) -> int:
    """A request's input tokens, estimated: a quarter of the characters of its messages (content,
    tool calls), tool definitions and output schema, rounded up."""
    chars = 0
    for message in request.messages:
        chars += len(message.content or "")
        for call in message.tool_calls:
            chars += len(call.name) + len(json.dumps(call.arguments, default=str))
    for tool in request.tools:
        chars += len(tool.name) + len(tool.description) + len(json.dumps(tool.parameters, default=str))
    schema = request.output_schema
    if schema is not None and hasattr(schema, "model_json_schema"):
        chars += len(json.dumps(schema.model_json_schema(), default=str))
    return math.ceil(chars / 4)
