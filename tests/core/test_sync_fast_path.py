"""``run()`` from sync code: a run whose steps never wait finishes in its task's first
step, without a turn of the thread's loop; everything that needs the loop still works,
on the fast path and when the run does wait."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import AsyncIterator
from typing import Any

from plait import Step, StepInput, Workflow, _sync


def _polls(monkeypatch: Any) -> list[float | None]:
    """Count the thread loop's polls for I/O (each turn of the loop makes one)."""
    loop = _sync._thread_loop()
    calls: list[float | None] = []
    select = loop._selector.select  # type: ignore[attr-defined]

    def counting(timeout: float | None = None) -> Any:
        calls.append(timeout)
        return select(timeout)

    monkeypatch.setattr(loop._selector, "select", counting)  # type: ignore[attr-defined]
    return calls


def test_a_run_that_never_waits_does_not_turn_the_loop(monkeypatch: Any) -> None:
    wf = Workflow(name="w", steps=[Step(name="a", executor=lambda si: si.input + 1)])
    wf.run(0)  # the thread's loop exists from here on
    polls = _polls(monkeypatch)
    assert wf.run(1).content == 2
    assert [e.event for e in wf.run(1, stream=True)][-1] == "WorkflowCompleted"
    assert polls == []


def test_a_run_that_waits_goes_on_in_the_loop(monkeypatch: Any) -> None:
    async def slow(step_input: StepInput) -> int:
        await asyncio.sleep(0.01)
        return step_input.input * 2

    wf = Workflow(name="w", steps=[Step(name="a", executor=slow)])
    wf.run(0)
    polls = _polls(monkeypatch)
    assert wf.run(21).content == 42
    assert polls, "the rest of the run needs the loop"
    assert [e.content for e in wf.run(4, stream=True) if e.event == "WorkflowCompleted"] == [8]


def test_steps_see_a_running_loop_and_a_current_task() -> None:
    seen: list[Any] = []

    async def look(step_input: StepInput) -> str:
        seen.append((asyncio.get_running_loop(), asyncio.current_task()))
        return "ok"

    wf = Workflow(name="w", steps=[Step(name="a", executor=look)])
    wf.run()
    wf.run()
    (loop1, task1), (loop2, task2) = seen
    assert loop1 is loop2 is _sync._thread_loop()
    assert task1 is not None and task2 is not None and task1 is not task2
    # and the loop is not left marked running in this thread
    assert asyncio._get_running_loop() is None


def test_callbacks_from_other_threads_are_not_lost() -> None:
    """A callback another thread schedules between runs (the loop is idle) runs at the
    next run, which then takes the usual path."""
    wf = Workflow(name="w", steps=[Step(name="a", executor=lambda si: si.input)])
    wf.run(0)
    loop = _sync._thread_loop()
    ran = threading.Event()
    thread = threading.Thread(target=lambda: loop.call_soon_threadsafe(ran.set))
    thread.start()
    thread.join()
    assert not ran.is_set()
    assert wf.run(5).content == 5
    assert ran.is_set()


def test_an_abandoned_async_generator_is_closed_by_the_loop() -> None:
    """A step's async generator left unfinished on the fast path is finalized through
    the loop's hooks (its ``finally`` runs, awaiting), as asyncio.run would do."""
    closed: list[str] = []

    async def numbers() -> AsyncIterator[int]:
        try:
            yield 1
            yield 2
        finally:
            await asyncio.sleep(0)
            closed.append("closed")

    async def first(step_input: StepInput) -> int:
        if not step_input.input:
            return 0
        agen = numbers()
        value = await agen.__anext__()
        del agen
        return value

    wf = Workflow(name="w", steps=[Step(name="a", executor=first)])
    assert wf.run(True).content == 1
    gc.collect()
    assert closed == []  # the finalizer scheduled its aclose on the loop, which is idle
    for _ in range(3):  # the next runs turn the loop: the aclose runs, awaiting
        wf.run(False)
    assert closed == ["closed"]


def test_an_exception_in_the_first_step_is_raised_with_the_hooks_restored() -> None:
    import sys

    hooks = sys.get_asyncgen_hooks()

    def boom(step_input: StepInput) -> None:
        raise ValueError("no")

    wf = Workflow(name="w", steps=[Step(name="a", executor=boom)])
    try:
        wf.run()
    except Exception as error:  # StepError naming the step
        assert "no" in str(error)
    else:
        raise AssertionError("expected the step's error")
    assert sys.get_asyncgen_hooks() == hooks
    assert asyncio._get_running_loop() is None
