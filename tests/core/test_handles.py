"""Background runs: ``workflow.start`` (a thread with its own loop) and ``astart`` (a task)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from plait import AsyncRunHandle, RunHandle, RunStatus, Step, StepInput, Workflow
from plait.errors import DefinitionError, StepError

WAIT = 30.0  # generous: a noisy machine


def _echo_workflow() -> Workflow:
    return Workflow(name="echo", steps=[Step(name="shout", executor=lambda si: str(si.input).upper())])


def test_start_returns_the_run_id_at_once_and_wait_gives_the_output() -> None:
    gate = threading.Event()

    def held(step_input: StepInput) -> str:
        assert gate.wait(WAIT)
        return f"done {step_input.input}"

    workflow = Workflow(name="held", steps=[Step(name="held", executor=held)])
    handle = workflow.start("x", session_id="s1", user_id="ann")
    assert isinstance(handle, RunHandle) and handle.run_id
    assert handle.status() is RunStatus.RUNNING and not handle.done()
    with pytest.raises(TimeoutError, match="still running"):
        handle.wait(timeout=0.05)
    gate.set()
    output = handle.wait(timeout=WAIT)
    assert output.content == "done x"
    assert output.run_id == handle.run_id and output.session_id == "s1"
    assert handle.status() is RunStatus.COMPLETED and handle.done()
    names = [event.event for event in handle.events()]
    assert names[0] == "WorkflowStarted" and names[-1] == "WorkflowCompleted"
    assert "StepCompleted" in names  # step events too, not only the run's
    assert [e.event for e in handle.events()] == names  # each call starts over


def test_events_follow_the_run_live() -> None:
    gate = threading.Event()
    workflow = Workflow(
        name="live",
        steps=[
            Step(name="first", executor=lambda si: "a"),
            Step(name="second", executor=lambda si: gate.wait(WAIT)),
        ],
    )
    handle = workflow.start("x")
    seen: list[str] = []
    for event in handle.events(timeout=WAIT):
        seen.append(event.event)
        if event.event == "StepStarted" and getattr(event, "step_name", None) == "second":
            assert not handle.done()  # seen while the run goes on
            gate.set()
    assert seen[-1] == "WorkflowCompleted"
    assert handle.wait(WAIT).content is True


def test_a_failure_surfaces_from_wait() -> None:
    def boom(step_input: StepInput) -> str:
        raise ValueError("no good")

    handle = Workflow(name="fails", steps=[Step(name="boom", executor=boom)]).start("x")
    with pytest.raises(StepError, match="boom") as caught:
        handle.wait(WAIT)
    assert "no good" in str(caught.value)
    assert handle.status() is RunStatus.ERROR
    assert [e.event for e in handle.events()][-1] == "WorkflowError"


def test_cancel_stops_the_run_before_its_next_step() -> None:
    gate = threading.Event()
    ran: list[str] = []

    def first(step_input: StepInput) -> str:
        assert gate.wait(WAIT)
        return "first"

    def second(step_input: StepInput) -> str:
        ran.append("second")
        return "second"

    workflow = Workflow(
        name="cancel", steps=[Step(name="first", executor=first), Step(name="second", executor=second)]
    )
    handle = workflow.start("x")
    assert handle.cancel() is True
    gate.set()
    output = handle.wait(WAIT)
    assert output.status is RunStatus.CANCELLED and handle.status() is RunStatus.CANCELLED
    assert ran == []
    assert handle.cancel() is False  # it has ended


def test_starts_from_many_threads_at_once() -> None:
    workflow = _echo_workflow()
    handles: list[RunHandle] = []
    lock = threading.Lock()

    def starter(i: int) -> None:
        handle = workflow.start(f"t{i}")
        with lock:
            handles.append(handle)

    threads = [threading.Thread(target=starter, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert sorted(h.wait(WAIT).content for h in handles) == sorted(f"T{i}" for i in range(8))
    assert len({h.run_id for h in handles}) == 8


def test_a_hundred_concurrent_starts() -> None:
    barrier = threading.Barrier(100, timeout=WAIT)

    def meet(step_input: StepInput) -> Any:
        barrier.wait()  # only passes when all hundred runs are going at once
        return step_input.input

    workflow = Workflow(name="many", steps=[Step(name="meet", executor=meet)])
    handles = [workflow.start(i) for i in range(100)]
    assert [h.wait(WAIT).content for h in handles] == list(range(100))


def test_on_event_and_options_are_checked() -> None:
    workflow = _echo_workflow()
    seen: list[str] = []
    handle = workflow.start("x", on_event=lambda event: seen.append(event.event), run_id="chosen")
    assert handle.run_id == "chosen" and handle.wait(WAIT).run_id == "chosen"
    assert seen == [e.event for e in handle.events()]
    with pytest.raises(DefinitionError, match="user_id"):
        workflow.start("x", user_id=3)  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="unknown option"):
        workflow.start("x", colour="red")  # type: ignore[call-arg]


def test_astart_from_asyncio_run_twice() -> None:
    workflow = _echo_workflow()

    async def main(text: str) -> tuple[str, list[str], RunStatus]:
        handle = await workflow.astart(text)
        assert isinstance(handle, AsyncRunHandle) and handle.run_id
        names = [event.event async for event in handle.events()]
        output = await handle.wait()
        return output.content, names, handle.status()

    for text in ("one", "two"):  # a second loop after the first closed
        content, names, status = asyncio.run(main(text))
        assert content == text.upper() and status is RunStatus.COMPLETED
        assert names[0] == "WorkflowStarted" and names[-1] == "WorkflowCompleted"


def test_astart_cancel_and_failure() -> None:
    async def first(step_input: StepInput) -> str:
        await asyncio.sleep(0)
        return "first"

    def boom(step_input: StepInput) -> str:
        raise RuntimeError("broken")

    async def main() -> None:
        cancelled = Workflow(
            name="c", steps=[Step(name="first", executor=first), Step(name="boom", executor=boom)]
        )
        handle = await cancelled.astart("x")
        assert handle.cancel() is True  # before its first step: it never gets to boom
        assert (await handle.wait(WAIT)).status is RunStatus.CANCELLED
        failing = await Workflow(name="f", steps=[Step(name="boom", executor=boom)]).astart("x")
        with pytest.raises(StepError, match="broken"):
            await failing.wait(WAIT)
        assert failing.status() is RunStatus.ERROR

    asyncio.run(main())


def test_start_takes_the_options_of_run() -> None:
    from plait._handle import RUN_OPTIONS
    from plait.workflow import RunArguments

    assert {*RUN_OPTIONS, "run_id"} == set(RunArguments.__annotations__)
