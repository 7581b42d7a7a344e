"""Rate limits: requests and tokens per minute and concurrent calls, per provider or per model,
enforced before each model request: calls wait their turn instead of receiving 429s.

A :class:`RateLimit` is declared on a workflow (``Workflow(limits={"openai": RateLimit(...)})``,
shared by every branch, nested workflow and concurrent run of that workflow object) or for the
whole process (:func:`set_rate_limits`). A key is a provider (``"openai"``) or a model string
(``"openai:gpt-4o-mini"``); a call counts against every limit whose key names its model or its
provider. Each try counts (a retry is a request too); a :class:`~plait.models.FallbackModel`'s
members each count against their own.

Token counts are estimated from the request before it is sent (a quarter of its characters,
as for budgets: :func:`estimate_input_tokens`) and corrected with the usage the provider
reports once the answer is in.

How a call takes its turn: it reserves the earliest start at which the sliding window ending
there holds fewer than ``requests_per_minute`` calls and, with it, at most
``tokens_per_minute`` tokens (:func:`next_start`), and sleeps until then; reservations are made
in turn, so calls go first come, first served. With ``max_concurrent`` it first takes one of the
slots (looking again until one is free) and holds it until the call ends. The count lives in a
*store*: :class:`LocalWindow` in this process, or, for ``RateLimit(shared=True)``, the workflow's
storage, when it offers :class:`SharedRateLimits` (plait-redis does: one atomic script per turn),
so every process that uses that storage shares one count per key.

A wait longer than :data:`VISIBLE_WAIT` is said (a ``RateLimitWaitEvent`` through the agent, a
``rate_limit.wait`` event on the model call's span); an unthrottled call says nothing.

Nothing here runs unless a limit is declared: the model call asks :func:`active_limiters`,
which returns None.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import math
import os
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from plait._checks import check_number
from plait._public import publish as _publish
from plait.errors import DefinitionError

__all__ = [
    "VISIBLE_WAIT",
    "Limiter",
    "LocalWindow",
    "RateLimit",
    "RateWait",
    "SharedRateLimits",
    "active_limiters",
    "check_limits",
    "estimate_input_tokens",
    "limits_scope",
    "next_start",
    "set_rate_limits",
]

#: seconds of the sliding window the per-minute limits count in
_WINDOW = 60.0
#: how often a call waiting for a concurrency slot looks again (seconds): in this process, and
#: through a shared storage (a round trip each time)
_POLL = 0.005
_SHARED_POLL = 0.05
#: a wait longer than this (seconds) is reported; shorter ones are not worth a line
VISIBLE_WAIT = 0.2


@dataclass(frozen=True, slots=True)
class RateLimit:
    """How fast calls to a provider (or one model) may go.

    >>> Workflow(name="Fan-out", steps=[...], limits={
    ...     "openai": RateLimit(requests_per_minute=500, tokens_per_minute=200_000),
    ...     "anthropic:claude-haiku-4-5": RateLimit(max_concurrent=4),
    ... })

    ``requests_per_minute`` and ``tokens_per_minute`` count over a sliding minute;
    ``max_concurrent`` bounds the calls in flight. A call that would go over waits (first
    come, first served) until it fits; one whose estimate alone exceeds
    ``tokens_per_minute`` goes when the minute is empty.

    ``shared=True`` counts with every process that uses the same storage (the workflow's
    ``storage=``, or :func:`set_rate_limits`'s), one count per key: twenty workers under one
    provider account stay under its limit together. The storage must be able to count
    atomically across processes: Redis (``plait-redis``) can; memory and SQLite storage cannot,
    and declaring a shared limit with them is a :class:`~plait.errors.DefinitionError`.
    """

    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    max_concurrent: int | None = None
    shared: bool = False

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
        if not isinstance(self.shared, bool):
            raise DefinitionError(f"RateLimit: shared must be True or False, got {self.shared!r}")


@dataclass(frozen=True, slots=True)
class RateWait:
    """A call held by a limit: the limiter's ``key``, which ``limit`` held it
    (``"requests_per_minute"``, ``"tokens_per_minute"`` or ``"max_concurrent"``) and its
    ``maximum``, and the ``seconds`` it is expected to wait (None for a concurrency slot: until
    a call in flight ends)."""

    key: str
    limit: str
    maximum: float
    seconds: float | None
    shared: bool


@runtime_checkable
class SharedRateLimits(Protocol):
    """What a storage offers to count ``RateLimit(shared=True)`` for every process that uses it
    (plait-redis's ``RedisStorage`` does). Both methods are atomic in the store; ``key`` names
    the count (the limits key), ``ticket`` one call, ``window`` the seconds of the sliding
    "minute" (60, shorter in tests). Time is the store's clock, so processes on hosts whose
    clocks differ agree."""

    async def take_rate_limit(
        self, key: str, limit: RateLimit, ticket: str, tokens: float, window: float
    ) -> tuple[float, str] | None:
        """With ``max_concurrent``, None when every slot is taken (nothing changes); else take a
        slot, reserve the call's start as :func:`next_start` says, and return (seconds until it,
        the limit that set it or "")."""
        ...

    async def return_rate_limit(
        self, key: str, limit: RateLimit, ticket: str, tokens: float | None, sent: bool
    ) -> None:
        """The call ended: free its slot; ``sent=False`` (it never went) drops its reservation,
        else ``tokens`` (the usage reported; None: keep the estimate) corrects its count."""
        ...


def next_start(
    limit: RateLimit, entries: Sequence[Sequence[Any]], tokens: float, now: float, window: float
) -> tuple[float, str]:
    """When a call of ``tokens`` may start, given the reservations in the window (``entries``:
    ``(start, tokens, ...)`` in order of start, none older than ``now - window``): the earliest
    time, not before ``now`` nor before the last reservation, at which the window ending there
    holds fewer than ``requests_per_minute`` calls and at most ``tokens_per_minute`` tokens with
    this one; and the limit that set it ("" when it can go now). The Redis script (plait-redis)
    computes the same."""
    start, holding = now, ""
    if entries:
        start = max(start, entries[-1][0])
    rpm = limit.requests_per_minute
    if rpm is not None and len(entries) >= int(rpm):
        at = entries[len(entries) - int(rpm)][0] + window
        if at > start:
            start, holding = at, "requests_per_minute"
    tpm = limit.tokens_per_minute
    if tpm is not None and entries:
        used = sum(entry[1] for entry in entries)
        if used + tokens > tpm:
            # when enough of the oldest calls have left the window (all of them at most)
            excess = used + tokens - tpm
            freed = 0.0
            at = entries[-1][0] + window
            for entry in entries:
                freed += entry[1]
                if freed >= excess:
                    at = entry[0] + window
                    break
            if at > start:
                start, holding = at, "tokens_per_minute"
    if start > now and not holding:  # behind a call that waits itself
        holding = "requests_per_minute" if rpm is not None else "tokens_per_minute"
    return start, holding


class LocalWindow:
    """A limit's count in this process: the reservations in the window and the slots held
    (the :class:`SharedRateLimits` methods, for one limiter; safe across threads)."""

    __slots__ = ("_lock", "holders", "recent", "tickets")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: [start, tokens, ticket] of each call in the window, in order of start
        self.recent: deque[list[Any]] = deque()
        self.tickets: dict[str, list[Any]] = {}
        #: the tickets of the calls holding a concurrency slot
        self.holders: set[str] = set()

    async def take_rate_limit(
        self, key: str, limit: RateLimit, ticket: str, tokens: float, window: float
    ) -> tuple[float, str] | None:
        with self._lock:
            now = time.monotonic()
            recent = self.recent
            while recent and recent[0][0] <= now - window:
                del self.tickets[recent.popleft()[2]]
            if limit.max_concurrent is not None:
                if len(self.holders) >= limit.max_concurrent:
                    return None
                self.holders.add(ticket)
            start, holding = next_start(limit, recent, tokens, now, window)
            entry = [start, tokens, ticket]
            recent.append(entry)
            self.tickets[ticket] = entry
            return start - now, holding

    async def return_rate_limit(
        self, key: str, limit: RateLimit, ticket: str, tokens: float | None, sent: bool
    ) -> None:
        with self._lock:
            self.holders.discard(ticket)
            entry = self.tickets.get(ticket)
            if entry is None:  # already out of the window
                return
            if not sent:
                del self.tickets[ticket]
                self.recent.remove(entry)
            elif tokens is not None:
                entry[1] = tokens


def can_share(storage: Any) -> bool:
    """Whether ``storage`` counts shared rate limits (offers :class:`SharedRateLimits`)."""
    return isinstance(storage, SharedRateLimits)


#: storage URL schemes known not to share a count across processes
_LOCAL_SCHEMES = {"memory": "memory storage", "sqlite": "SQLite storage"}


def _cannot_share(where: str, key: str, what: str) -> DefinitionError:
    return DefinitionError(
        f"{where}: limits[{key!r}] is RateLimit(shared=True), counted for every process in the "
        f"storage, but {what}; use Redis storage (pip install plait-redis, "
        "storage='redis://host:6379/0'), which counts atomically across processes"
    )


def check_shared_storage(storage: Any, where: str, key: str) -> None:
    """A DefinitionError naming ``where`` unless ``storage`` (an object or a URL) can share a
    count; a URL of a plugin's scheme is checked when the first call resolves it."""
    if storage is None:
        raise _cannot_share(where, key, "there is no storage")
    if isinstance(storage, str):
        scheme = storage.partition("://")[0].partition("+")[0]
        if scheme in _LOCAL_SCHEMES:
            raise _cannot_share(where, key, f"{_LOCAL_SCHEMES[scheme]} ({scheme}://) keeps it in one process")
    elif not can_share(storage):
        raise _cannot_share(where, key, f"{type(storage).__name__} cannot count it across processes")


class Limiter:
    """One :class:`RateLimit` in force: where it is counted and the turn each call takes."""

    __slots__ = ("_ready", "_store", "_where", "key", "limit")

    def __init__(
        self,
        key: str,
        limit: RateLimit,
        ready: Callable[[], Awaitable[Any]] | None = None,
        where: str = "",
    ) -> None:
        self.key = key
        self.limit = limit
        self._where = where
        #: for a shared limit, the storage once resolved (``ready()`` gives it)
        self._store: SharedRateLimits | None = None if limit.shared else LocalWindow()
        self._ready = ready

    async def _resolve(self) -> SharedRateLimits:
        assert self._ready is not None, "a shared limit is built with its storage"
        storage = await self._ready()
        if not can_share(storage):
            raise _cannot_share(self._where, self.key, f"{storage!r} cannot count it across processes")
        self._store = storage
        return storage  # type: ignore[no-any-return]

    async def acquire(self, tokens: float, on_wait: Callable[[RateWait], None]) -> str:
        """Wait for this call's turn (``on_wait`` hears of a wait longer than
        :data:`VISIBLE_WAIT`); the ticket returned is given back to :meth:`release`."""
        store = self._store or await self._resolve()
        limit = self.limit
        ticket = os.urandom(12).hex()
        since = time.monotonic()
        said = False
        while True:
            taken = await store.take_rate_limit(self.key, limit, ticket, tokens, _WINDOW)
            if taken is not None:
                break
            if not said and time.monotonic() - since >= VISIBLE_WAIT:
                on_wait(RateWait(self.key, "max_concurrent", limit.max_concurrent or 0, None, limit.shared))
                said = True
            await asyncio.sleep(_SHARED_POLL if limit.shared else _POLL)
        delay, holding = taken
        if delay > 0:
            if delay >= VISIBLE_WAIT:
                on_wait(RateWait(self.key, holding, getattr(limit, holding), delay, limit.shared))
            try:
                await asyncio.sleep(delay)
            except BaseException:
                await store.return_rate_limit(self.key, limit, ticket, None, False)
                raise
        return ticket

    async def release(self, ticket: str, tokens: float | None, sent: bool) -> None:
        """The call ended; ``tokens``: what the provider reported (None: keep the estimate);
        ``sent=False``: it never went (cancelled while waiting for another limit)."""
        store = self._store
        assert store is not None
        await store.return_rate_limit(self.key, self.limit, ticket, tokens, sent)


def check_limits(
    limits: Any,
    where: str,
    *,
    storage: Any = None,
    ready: Callable[[], Awaitable[Any]] | None = None,
) -> dict[str, Limiter] | None:
    """``{key: RateLimit}`` as limiters (None for none); an error naming ``where`` otherwise.
    A shared limit is counted in ``storage`` (an object or a URL), which ``ready()`` resolves
    and sets up at the first call."""
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
        if limit.shared:
            check_shared_storage(storage, where, key)
        limiters[key] = Limiter(key, limit, ready, where)
    return limiters or None


_PROCESS: dict[str, Limiter] = {}
_SCOPED: contextvars.ContextVar[tuple[dict[str, Limiter], ...]] = contextvars.ContextVar(
    "plait_rate_limits", default=()
)


def set_rate_limits(limits: Mapping[str, RateLimit] | None, *, storage: Any = None) -> None:
    """Rate limits for every model call in this process (``None`` or ``{}``: none), besides
    any a workflow declares. ``storage`` (a storage object or URL) counts the shared ones
    (``RateLimit(shared=True)``) with every other process that uses it.

    >>> set_rate_limits({"openai": RateLimit(requests_per_minute=500)})
    >>> set_rate_limits({"openai": RateLimit(requests_per_minute=500, shared=True)},
    ...                 storage="redis://cache:6379/0")
    """
    ready = None
    if storage is not None:
        from plait.storage import resolve_storage

        resolved = resolve_storage(storage)

        async def ready() -> Any:
            assert resolved is not None
            await resolved.setup()  # idempotent
            return resolved

        storage = resolved
    limiters = check_limits(limits, "set_rate_limits", storage=storage, ready=ready) if limits else None
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


def _ignore(wait: RateWait) -> None:
    pass


@contextlib.asynccontextmanager
async def rate_limited(
    limiters: list[Limiter], request: Any, on_wait: Callable[[RateWait], None] | None = None
) -> AsyncIterator[list[Any]]:
    """Wait for a turn on every limiter, hold it during the call; the yielded list takes the
    call's final usage (append it) to correct the token estimate. ``on_wait`` hears of each
    wait longer than :data:`VISIBLE_WAIT` as it starts; the span gets the waits when they end."""
    tokens = estimate_input_tokens(request)
    held: list[tuple[Limiter, str]] = []
    waits: list[RateWait] = []
    tell = on_wait or _ignore

    def heard(wait: RateWait) -> None:
        waits.append(wait)
        tell(wait)

    reported: list[Any] = []
    sent = False
    try:
        began = time.monotonic()
        for limiter in limiters:
            held.append((limiter, await limiter.acquire(tokens, heard)))
        if waits:
            from plait.tracing import add_current_span_event, rate_limit_wait_attributes

            add_current_span_event(
                "rate_limit.wait", rate_limit_wait_attributes(waits, time.monotonic() - began)
            )
        sent = True
        yield reported
    finally:
        usage = reported[-1] if reported else None
        actual = None if usage is None else float(usage.input_tokens + usage.output_tokens)
        for limiter, ticket in held:
            await limiter.release(ticket, actual, sent)


def estimate_input_tokens(request: Any) -> int:
    """A request's input tokens, estimated: a quarter of the characters of its messages (content,
    tool calls), tool definitions and output schema, rounded up; an image, audio or file part
    counts as 1,000 tokens (providers count them by size, which plait does not know)."""
    chars = 0
    for message in request.messages:
        content = message.content
        if isinstance(content, list):
            chars += len(message.text) + 4000 * sum(1 for part in content if part.kind != "text")
        else:
            chars += len(content or "")
        for call in message.tool_calls:
            chars += len(call.name) + len(json.dumps(call.arguments, default=str))
    for tool in request.tools:
        chars += len(tool.name) + len(tool.description) + len(json.dumps(tool.parameters, default=str))
    schema = request.output_schema
    if schema is not None and hasattr(schema, "model_json_schema"):
        chars += len(json.dumps(schema.model_json_schema(), default=str))
    return math.ceil(chars / 4)


# Last: the names plait exports report ``plait`` as their home (plait._public).
_publish(__name__, globals())
