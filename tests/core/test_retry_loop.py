"""plait.retry.retrying, the one retry loop under steps and model calls."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from plait.retry import RetryPolicy, retrying

FAST = RetryPolicy(max_attempts=3, initial_delay=0.001, jitter=0)


async def run(
    policy: RetryPolicy | None, outcomes: list[BaseException | None], **options: object
) -> list[int]:
    """Try as ``outcomes`` say (None: success); return the attempt numbers that ran."""
    ran: list[int] = []
    async with contextlib.aclosing(retrying(policy, **options)) as attempts:  # type: ignore[arg-type]
        async for attempt in attempts:
            with attempt:
                ran.append(attempt.number)
                outcome = outcomes[attempt.number - 1]
                if outcome is not None:
                    raise outcome
    return ran


async def test_a_success_ends_the_loop() -> None:
    assert await run(FAST, [None]) == [1]
    assert await run(FAST, [ValueError("a"), None]) == [1, 2]


async def test_exhausted_attempts_raise_the_last_error_and_report_each_retry() -> None:
    retries: list[tuple[int, str, float]] = []
    with pytest.raises(ValueError, match="third"):
        await run(
            FAST,
            [ValueError("first"), ValueError("second"), ValueError("third")],
            on_retry=lambda n, exc, delay: retries.append((n, str(exc), delay)),
        )
    assert [(n, message) for n, message, _ in retries] == [(1, "first"), (2, "second")]
    assert all(delay >= 0 for *_, delay in retries)


async def test_without_a_policy_there_is_one_try() -> None:
    with pytest.raises(ValueError):
        await run(None, [ValueError("once"), None])


async def test_retryable_and_judge_decide_and_cancellation_is_never_swallowed() -> None:
    with pytest.raises(KeyError):
        await run(FAST, [KeyError("no"), None], retryable=lambda exc: not isinstance(exc, KeyError))
    wrapped = RuntimeError("wrapper")
    wrapped.__cause__ = TimeoutError("root")
    only_timeouts = RetryPolicy(max_attempts=2, initial_delay=0, jitter=0, retry_on=(TimeoutError,))
    assert await run(only_timeouts, [wrapped, None], judge=lambda exc: exc.__cause__ or exc) == [1, 2]
    with pytest.raises(asyncio.CancelledError):
        await run(FAST, [asyncio.CancelledError(), None])
