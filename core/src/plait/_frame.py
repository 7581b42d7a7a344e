"""The frame the executor puts around a node and around a workflow run: span, timeout, errors.

:func:`execute_node <plait._engine.execute_node>` and ``Workflow._execute`` both
open their span with :func:`open_span`, close it with :func:`close_span` (which
records the user's error, not plait's wrapper) and bound their work with
:func:`bounded`; what differs (their events, hooks and outputs) stays with them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from plait.errors import StepError
from plait.tracing import record_error

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

__all__ = ["bounded", "close_span", "open_span", "root_cause"]

T = TypeVar("T")


def open_span(tracer: Tracer, name: str, attributes: dict[str, Any]) -> tuple[Any, Any]:
    """Enter a span (and make it current) that :func:`close_span` ends: (its context manager, the span)."""
    cm = tracer.start_as_current_span(
        name, attributes=attributes, record_exception=False, set_status_on_exception=False
    )
    return cm, cm.__enter__()


def close_span(cm: Any, span: Any, error: BaseException | None = None) -> None:
    """End a span from :func:`open_span`; an Exception is recorded on it (its root cause)."""
    if isinstance(error, Exception) and span is not None:
        record_error(span, root_cause(error))
    cm.__exit__(None, None, None)


async def bounded(timeout: float, work: Awaitable[T], expired: Callable[[], BaseException]) -> T:
    """Await ``work`` for at most ``timeout`` seconds; past it, raise ``expired()`` (a
    TimeoutError raised by the work itself passes through as it is)."""
    scope = asyncio.timeout(timeout)
    try:
        async with scope:
            return await work
    except TimeoutError:
        if not scope.expired():
            raise
        raise expired() from None


def root_cause(exc: BaseException) -> BaseException:
    """The user's exception behind plait's StepError wrappers (for retry filters and spans)."""
    while isinstance(exc, StepError) and exc.__cause__ is not None:
        exc = exc.__cause__
    return exc
