"""Failure semantics: loud errors, retries, skips, timeouts, cancellation, stop."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from plait import (
    Loop,
    Parallel,
    RetryPolicy,
    RunStatus,
    Step,
    StepError,
    StepInput,
    StepOutput,
    Steps,
    Workflow,
)
from plait.errors import RunTimeoutError, StepTimeoutError
from plait.events import StepRetryEvent, WorkflowErrorEvent


def ok(step_input: StepInput) -> str:
    return "ok"


def test_exception_fails_the_run_naming_the_path_with_the_cause() -> None:
    ran = []

    def boom(step_input: StepInput) -> str:
        raise ValueError("bad value")

    def after(step_input: StepInput) -> str:
        ran.append("after")
        return "never"

    inner = Workflow(name="inner", steps=[Steps(name="group", steps=[ok, Step(name="boom", executor=boom)])])
    workflow = Workflow(name="outer", steps=[Step(name="phase", workflow=inner), after])
    with pytest.raises(StepError) as info:
        workflow.run("x")
    error = info.value
    assert error.step_path == "phase/group/boom"
    assert "Step 'phase/group/boom' failed: ValueError: bad value" in str(error)
    assert isinstance(error.__cause__, ValueError)
    assert ran == []


def test_failed_run_streams_an_error_event_then_raises() -> None:
    def boom(step_input: StepInput) -> str:
        raise RuntimeError("nope")

    events = []
    with pytest.raises(StepError):
        for event in Workflow(name="w", steps=[ok, boom]).run("x", stream=True):
            events.append(event)
    assert isinstance(events[-1], WorkflowErrorEvent)
    assert events[-1].failed_step_id == "boom"
    assert not any(e.event == "WorkflowCompleted" for e in events)


def test_retry_with_backoff_until_success() -> None:
    attempts = []

    def flaky(step_input: StepInput) -> str:
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise ConnectionError("try again")
        return "finally"

    policy = RetryPolicy(max_attempts=3, initial_delay=0.01, multiplier=2, jitter=0)
    workflow = Workflow(name="w", steps=[Step(name="flaky", executor=flaky, retry=policy)])
    events = list(workflow.run("x", stream_events=True))
    output = workflow.get_last_run_output()
    assert output is not None and output.content == "finally"
    assert output.step_outputs[0].metrics.attempts == 3  # type: ignore[union-attr]
    retries = [e for e in events if isinstance(e, StepRetryEvent)]
    assert [(e.attempt, e.delay) for e in retries] == [(1, 0.01), (2, 0.02)]
    assert attempts[2] - attempts[1] >= 0.015


def test_retry_exhausted_fails_and_filter_skips_other_errors() -> None:
    calls = {"n": 0}

    def always(step_input: StepInput) -> str:
        calls["n"] += 1
        raise TimeoutError("slow")

    policy = RetryPolicy(max_attempts=2, initial_delay=0, jitter=0, retry_on=(TimeoutError,))
    with pytest.raises(StepError, match="failed after 2 attempts: TimeoutError: slow"):
        Workflow(name="w", steps=[Step(name="s", executor=always, retry=policy)]).run("x")
    assert calls["n"] == 2

    calls["n"] = 0

    def wrong(step_input: StepInput) -> str:
        calls["n"] += 1
        raise KeyError("not retried")

    with pytest.raises(StepError):
        Workflow(name="w", steps=[Step(name="s", executor=wrong, retry=policy)]).run("x")
    assert calls["n"] == 1


def test_agno_max_retries_means_retries_after_the_first_attempt() -> None:
    step = Step(name="s", executor=ok, max_retries=3)
    assert step.retry is not None and step.retry.max_attempts == 4


def test_retry_restores_session_state_between_attempts() -> None:
    def partial(step_input: StepInput, run_context) -> str:  # type: ignore[no-untyped-def]
        run_context.session_state["writes"] = run_context.session_state.get("writes", 0) + 1
        if run_context.session_state.get("ok") is None:
            run_context.session_state["ok"] = False
            if len(attempts) == 0:
                attempts.append(1)
                raise RuntimeError("first attempt fails after writing")
        return "done"

    attempts: list[int] = []
    policy = RetryPolicy(max_attempts=2, initial_delay=0, jitter=0)
    output = Workflow(name="w", steps=[Step(name="s", executor=partial, retry=policy)]).run("x")
    assert output.session_state == {"writes": 1, "ok": False}


def test_on_error_skip_continues_but_never_reports_plain_completed() -> None:
    def boom(step_input: StepInput) -> str:
        raise RuntimeError("broken")

    workflow = Workflow(
        name="w", steps=[ok, Step(name="boom", executor=boom, on_error="skip"), lambda si: si.message + "!"]
    )
    output = workflow.run("x")
    assert output.status is RunStatus.COMPLETED_WITH_ERRORS
    assert output.content == "ok!"  # the skipped step's (absent) content does not replace the previous one
    skipped = output.step_outputs[1]
    assert skipped.skipped and not skipped.success and skipped.error == "RuntimeError: broken"
    assert "boom" in (output.error or "")
    assert Step(name="s", executor=ok, skip_on_failure=True).on_error == "skip"


def test_returned_failure_is_data_and_marks_the_run() -> None:
    workflow = Workflow(name="w", steps=[lambda si: StepOutput(content="partial", success=False), ok])
    output = workflow.run("x")
    assert output.content == "ok"
    assert output.status is RunStatus.COMPLETED_WITH_ERRORS


def test_async_step_timeout_cancels_the_step() -> None:
    cancelled = asyncio.Event()

    async def slow(step_input: StepInput) -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "late"

    async def main() -> None:
        with pytest.raises(StepError) as info:
            await Workflow(name="w", steps=[Step(name="slow", executor=slow, timeout=0.05)]).arun("x")
        assert isinstance(info.value.__cause__, StepTimeoutError)
        assert "timed out after 0.05s" in str(info.value)
        assert cancelled.is_set()

    asyncio.run(main())


def test_sync_step_timeout_abandons_the_thread_with_a_clear_error() -> None:
    release = threading.Event()

    def stuck(step_input: StepInput) -> str:
        release.wait(5)
        return "late"

    started = time.monotonic()
    with pytest.raises(StepError, match="cannot be interrupted and was abandoned"):
        Workflow(name="w", steps=[Step(name="stuck", executor=stuck, timeout=0.05)]).run("x")
    assert time.monotonic() - started < 2
    release.set()


def test_run_timeout() -> None:
    async def slow(step_input: StepInput) -> str:
        await asyncio.sleep(10)
        return "late"

    with pytest.raises(RunTimeoutError, match=r"timed out after 0\.05s"):
        Workflow(name="w", steps=[slow], timeout=0.05).run("x")


def test_cancellation_reaches_every_branch_and_nested_workflow() -> None:
    started: list[str] = []
    cancelled: list[str] = []

    def branch(label: str):  # type: ignore[no-untyped-def]
        async def run(step_input: StepInput) -> str:
            started.append(label)
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                cancelled.append(label)
                raise
            return label

        return Step(name=label, executor=run)

    inner = Workflow(name="inner", steps=[Parallel(branch("deep1"), branch("deep2"), name="deep")])
    workflow = Workflow(
        name="w", steps=[Parallel(branch("a"), branch("b"), Step(name="nested", workflow=inner), name="p")]
    )

    async def main() -> None:
        task = asyncio.ensure_future(workflow.arun("x"))
        while len(started) < 4:
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert sorted(cancelled) == ["a", "b", "deep1", "deep2"]


def test_a_failing_branch_cancels_its_siblings() -> None:
    cancelled = []

    async def slow(step_input: StepInput) -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append("slow")
            raise
        return "late"

    async def fail(step_input: StepInput) -> str:
        await asyncio.sleep(0.01)
        raise ValueError("branch failed")

    with pytest.raises(StepError, match="p/fail"):
        Workflow(name="w", steps=[Parallel(slow, fail, name="p")]).run("x")
    assert cancelled == ["slow"]


def test_stop_ends_the_run_early_even_from_nested_containers() -> None:
    ran = []

    def stopper(step_input: StepInput) -> StepOutput:
        return StepOutput(content="enough", stop=True)

    def later(step_input: StepInput) -> str:
        ran.append("later")
        return "never"

    inner = Workflow(name="inner", steps=[Loop(name="loop", steps=[stopper, later], max_iterations=5)])
    workflow = Workflow(name="w", steps=[Step(name="phase", workflow=inner), later])
    output = workflow.run("x")
    assert output.content == "enough"
    assert output.status is RunStatus.COMPLETED
    assert ran == []
    assert output.step_outputs[0].steps[0].metadata == {"iterations": 1}  # type: ignore[index]


def test_parse_retry_after_reads_every_form() -> None:
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    from plait.retry import parse_retry_after

    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "2.5"}) == 2.5
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 28 <= parse_retry_after({"retry-after": later}) <= 31  # type: ignore[operator]
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after(None) is None and parse_retry_after({}) is None
