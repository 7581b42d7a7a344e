"""The time bound the executor puts around a node and around a workflow run.

:func:`execute_node <plait._engine.execute_node>` and the workflow run frame
(:func:`plait._workflow_run.execute`) both bound their work with :func:`bounded`;
their spans come from :func:`plait.tracing.open_span`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["bounded"]

T = TypeVar("T")


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
