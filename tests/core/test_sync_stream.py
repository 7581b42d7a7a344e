"""``for event in run(..., stream=True)`` from sync code is live: the run goes on a thread
and event loop of its own, so the events before a blocking sync step reach the reader while
the step blocks. Stopping early cancels the run, the run's error is raised in the reader, a
slow reader makes the run wait, and the reader's context variables reach the steps."""

from __future__ import annotations

import asyncio
import contextvars
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from plait import Agent, Step, StepInput, Workflow, _sync
from plait.errors import StepError
from plait.models import Message
from plait.storage import resolve_storage
from plait.testing import FunctionModel

#: seconds after which a test gives up on something that should happen at once (a hang is
#: a failure, not a wait forever); never a measure of speed
BOUND = 30.0


def _stored(url: str, run_id: str) -> Any:
    async def get() -> Any:
        storage = resolve_storage(url)
        assert storage is not None
        await storage.setup()
        try:
            return await storage.get_run(run_id)
        finally:
            await storage.close()

    return asyncio.run(get())


def _in_thread(fn: Any) -> threading.Thread:
    """``fn()`` on a thread, joined within BOUND (the caller asserts it is not alive)."""
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    thread.join(BOUND)
    return thread


def test_the_events_before_a_blocking_sync_step_arrive_while_it_blocks() -> None:
    """The step waits until the reader has seen its StepStarted: with the loop in the
    reader's thread the reader could not see it before the step returned (it would wait
    BOUND seconds and fail)."""
    seen_started = threading.Event()
    saw: list[bool] = []

    def blocking(step_input: StepInput) -> str:
        saw.append(seen_started.wait(BOUND))
        return "done"

    workflow = Workflow(
        name="w", steps=[Step(name="first", executor=lambda si: 1), Step(name="blocks", executor=blocking)]
    )
    events = []
    for event in workflow.run(0, stream=True, stream_events=True):
        events.append((event.event, getattr(event, "step_name", None)))
        if events[-1] == ("StepStarted", "blocks"):
            seen_started.set()
    assert saw == [True]
    assert events == [
        ("WorkflowStarted", None),
        ("StepStarted", "first"),
        ("StepOutput", "first"),
        ("StepCompleted", "first"),
        ("StepStarted", "blocks"),
        ("StepOutput", "blocks"),
        ("StepCompleted", "blocks"),
        ("WorkflowCompleted", None),
    ]


def test_an_agent_streams_while_its_sync_model_function_blocks() -> None:
    """``agent.run(stream=True)`` takes the same path: RunStarted reaches the reader while
    the model's (sync) function still blocks the run's loop."""
    seen_started = threading.Event()
    saw: list[bool] = []

    def reply(messages: list[Message]) -> str:
        saw.append(seen_started.wait(BOUND))
        return "hello there"

    agent = Agent(name="a", model=FunctionModel(reply))
    names = []
    for event in agent.run("hi", stream=True, stream_events=True):
        names.append(event.event)
        if event.event == "RunStarted":
            seen_started.set()
    assert saw == [True]
    assert names[0] == "RunStarted" and names[-1] == "RunCompleted"
    assert "RunContent" in names


def test_breaking_out_cancels_the_run_and_returns(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    cancelled: list[str] = []
    ran: list[str] = []

    async def forever(step_input: StepInput) -> str:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append("forever")
            raise
        return "never"

    workflow = Workflow(
        name="w",
        steps=[
            Step(name="forever", executor=forever),
            Step(name="after", executor=lambda si: ran.append("after")),
        ],
        storage=url,
    )
    first: list[str] = []

    def read() -> None:
        for event in workflow.run(0, stream=True, stream_events=True, run_id="r1"):
            first.append(event.event)
            break

    thread = _in_thread(read)
    assert not thread.is_alive(), "breaking out of the stream did not end the run"
    assert first == ["WorkflowStarted"]
    assert ran == []
    record = _stored(url, "r1")
    # the step was cancelled if it had started; either way the run is stored as cancelled
    assert cancelled in ([], ["forever"]) and record.status == "CANCELLED"
    workflow.close()


def test_closing_the_iterator_while_a_sync_step_blocks_cancels_the_run_at_its_end(monkeypatch: Any) -> None:
    """A sync step cannot be interrupted: ``close()`` cancels the run, which stops at the
    step's end; the next step never runs."""
    entered, release, closing = threading.Event(), threading.Event(), threading.Event()
    close = _sync._Channel.close

    def closed(channel: Any) -> None:  # the run's cancel is asked for by now
        close(channel)
        closing.set()

    monkeypatch.setattr(_sync._Channel, "close", closed)
    ran: list[str] = []

    def blocking(step_input: StepInput) -> str:
        entered.set()
        release.wait(BOUND)
        return "done"

    workflow = Workflow(
        name="w",
        steps=[
            Step(name="blocks", executor=blocking),
            Step(name="next", executor=lambda si: ran.append("x")),
        ],
    )
    events = workflow.run(0, stream=True, stream_events=True)
    assert next(events).event == "WorkflowStarted"
    assert entered.wait(BOUND)
    closer = threading.Thread(target=events.close)  # type: ignore[attr-defined]
    closer.start()
    assert closing.wait(BOUND)
    release.set()
    closer.join(BOUND)
    assert not closer.is_alive()
    assert ran == []


def test_a_failing_step_raises_from_the_loop_after_its_events() -> None:
    def boom(step_input: StepInput) -> None:
        raise ValueError("no good")

    workflow = Workflow(name="w", steps=[Step(name="boom", executor=boom)])
    seen: list[str] = []
    with pytest.raises(StepError, match="no good"):
        for event in workflow.run(0, stream=True, stream_events=True):
            seen.append(event.event)
    assert seen[:2] == ["WorkflowStarted", "StepStarted"]


def test_the_reader_s_context_variables_reach_the_steps() -> None:
    tenant: contextvars.ContextVar[str] = contextvars.ContextVar("tenant", default="none")
    seen: list[tuple[str, bool]] = []

    def look(step_input: StepInput) -> str:
        seen.append((tenant.get(), threading.current_thread() is threading.main_thread()))
        return "ok"

    workflow = Workflow(name="w", steps=[Step(name="look", executor=look)])
    token = tenant.set("acme")
    try:
        assert list(workflow.run(0, stream=True))[-1].content == "ok"
    finally:
        tenant.reset(token)
    assert seen == [("acme", False)]  # on the stream's thread, with the reader's context


def test_a_slow_reader_makes_the_run_wait(monkeypatch: Any) -> None:
    """With room for 4 waiting events, a run of 100 steps (3 events each) that the reader
    stops taking from goes no further than the events the buffer and the reader hold."""
    monkeypatch.setattr(_sync, "STREAM_BUFFER", 4)
    ran: list[int] = []
    workflow = Workflow(
        name="w", steps=[Step(name=f"s{i}", executor=lambda si, i=i: ran.append(i) or i) for i in range(100)]
    )
    events = workflow.run(0, stream=True, stream_events=True)
    assert next(events).event == "WorkflowStarted"
    held = threading.Event()
    held.wait(0.5)  # the run has time to race ahead, if nothing holds it back
    assert len(ran) <= 4, ran  # the first batch taken (at most 4 events) and 4 waiting
    rest = list(events)
    assert ran == list(range(100))
    assert rest[-1].event == "WorkflowCompleted" and rest[-1].content == 99


def _stream_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "plait-stream"]


def test_streams_one_after_another_reuse_one_thread() -> None:
    threads: set[int] = set()

    def add(step_input: StepInput) -> int:
        threads.add(threading.get_ident())
        return int(step_input.input) + 1

    workflow = Workflow(name="w", steps=[Step(name="a", executor=add)])
    for i in range(200):
        assert [e.content for e in workflow.run(i, stream=True) if e.event == "WorkflowCompleted"] == [i + 1]
    half_read = workflow.run(0, stream=True)
    next(half_read)
    del half_read  # collected: closed, the run cancelled and ended
    assert len(threads) == 1 and threading.get_ident() not in threads
    assert len(_stream_threads()) <= _sync.IDLE_RUNNERS


def test_twenty_streams_at_once_from_threads() -> None:
    """Each reader's run holds its sync step until all twenty are inside theirs: they go on
    at the same time, each handing its own events to its own reader."""
    barrier = threading.Barrier(20, timeout=BOUND)

    def together(step_input: StepInput) -> int:
        barrier.wait()
        return int(step_input.input) * 2

    workflow = Workflow(name="w", steps=[Step(name="together", executor=together)])
    results: dict[int, list[Any]] = {}
    failures: list[BaseException] = []

    def read(i: int) -> None:
        try:
            results[i] = [
                (e.event, getattr(e, "content", None))
                for e in workflow.run(i, stream=True, stream_events=True)
            ]
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=read, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(BOUND)
    assert failures == []
    assert sorted(results) == list(range(20))
    for i, events in results.items():
        assert events[0][0] == "WorkflowStarted" and events[-1] == ("WorkflowCompleted", i * 2)
    # twenty threads ran them; those beyond the idle ones end
    deadline = time.monotonic() + BOUND
    while len(_stream_threads()) > _sync.IDLE_RUNNERS and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(_stream_threads()) <= _sync.IDLE_RUNNERS


def test_ctrl_c_in_the_reader_cancels_the_run_with_the_reason(tmp_path: Path) -> None:
    """SIGINT while the reader waits for the next event: KeyboardInterrupt in the reader,
    the run cancelled and stored as interrupted."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    url = f"sqlite:///{tmp_path / 'runs.db'}"

    async def interrupt(step_input: StepInput) -> str:
        os.kill(os.getpid(), signal.SIGINT)  # the reader (main thread) waits for an event
        await asyncio.sleep(3600)
        return "never"

    workflow = Workflow(name="w", steps=[Step(name="interrupt", executor=interrupt)], storage=url)
    seen: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        for event in workflow.run(0, stream=True, stream_events=True, run_id="r1"):
            seen.append(event.event)
    assert seen in ([], ["WorkflowStarted"], ["WorkflowStarted", "StepStarted"])
    record = _stored(url, "r1")
    assert (record.status, record.error) == ("CANCELLED", "interrupted (Ctrl-C)")
    workflow.close()


async def test_a_sync_stream_works_inside_a_running_loop() -> None:
    """Sync streaming from async code (a notebook cell) takes the same path."""
    workflow = Workflow(name="w", steps=[Step(name="a", executor=lambda si: si.input * 3)])
    events = list(workflow.run(2, stream=True))
    assert events[-1].event == "WorkflowCompleted" and events[-1].content == 6


def test_ctrl_c_while_a_sync_step_blocks_stops_the_run_at_the_step_s_end(tmp_path: Path) -> None:
    """A sync step on the run's thread cannot be interrupted: Ctrl-C cancels the run, which
    stops once the step returns (the next step never runs); then the reader sees the
    KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    ran: list[str] = []

    def blocking(step_input: StepInput) -> str:
        os.kill(os.getpid(), signal.SIGINT)
        threading.Event().wait(0.2)  # blocks the run's loop a while after the signal
        ran.append("blocking")
        return "done"

    workflow = Workflow(
        name="w",
        steps=[
            Step(name="blocking", executor=blocking),
            Step(name="next", executor=lambda si: ran.append("next")),
        ],
        storage=url,
    )
    with pytest.raises(KeyboardInterrupt):
        for _ in workflow.run(0, stream=True, stream_events=True, run_id="r1"):
            pass
    assert ran == ["blocking"]
    # stopped as cancel_run stops a run (before its next step), or at its next await
    assert _stored(url, "r1").status == "CANCELLED"
    workflow.close()


def test_run_without_stream_stays_on_the_caller_s_thread() -> None:
    """Only ``stream=True`` iterators get the stream thread: ``run()`` keeps its fast path."""
    where: list[threading.Thread] = []
    workflow = Workflow(
        name="w", steps=[Step(name="a", executor=lambda si: where.append(threading.current_thread()))]
    )
    workflow.run(0)
    assert where == [threading.current_thread()]
    list(workflow.run(0, stream=True))
    assert where[1].name == "plait-stream"
