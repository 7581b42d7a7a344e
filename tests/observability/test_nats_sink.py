"""NatsSink against a real NATS server with JetStream on 127.0.0.1:4222."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import nats
import pytest
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError

from plait import Agent, Parallel, Step, Workflow
from plait.events import Event
from plait.plugins import build_registry
from plait.sinks import flush_sinks
from plait.testing import FunctionModel
from plait_nats import NatsSink
from tests.services import require_service

URL = "nats://127.0.0.1:4222"


class ListSink:
    """Collects what plait delivers to sinks, to compare with what NATS stored."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def handle(self, event: Event) -> None:
        self.events.append(event)


def workflow(*sinks: Any) -> Workflow:
    agent = Agent(name="Writer", model=FunctionModel(lambda m: "an article"))
    inner = Workflow(name="Draft", steps=[Step(name="write", agent=agent)])
    return Workflow(
        name="Report",
        steps=[
            Parallel(
                Step(name="a", executor=lambda i: "A"), Step(name="b", executor=lambda i: "B"), name="p"
            ),
            inner,
        ],
        sinks=list(sinks),
    )


async def read_stream(stream: str, subject: str) -> list[Msg]:
    client = await nats.connect(URL)
    try:
        jetstream = client.jetstream()
        subscription = await jetstream.pull_subscribe(subject, stream=stream)
        messages: list[Msg] = []
        while True:
            try:
                batch = await subscription.fetch(100, timeout=0.5)
            except TimeoutError:  # nats.errors.TimeoutError, or the plain one its fetch also raises
                return messages
            for message in batch:
                await message.ack()
            messages.extend(batch)
    finally:
        await client.close()


async def delete_stream(stream: str) -> None:
    client = await nats.connect(URL)
    try:
        try:
            await client.jetstream().delete_stream(stream)
        except NotFoundError:
            pass
    finally:
        await client.close()


@pytest.fixture
def names() -> Iterator[tuple[str, str]]:
    """A stream and subject of this test's own, deleted afterwards."""
    require_service("nats")
    token = uuid.uuid4().hex[:12]
    stream, subject = f"PLAIT_TEST_{token}", f"plait.test.{token}"
    yield stream, subject
    asyncio.run(delete_stream(stream))


def test_every_event_reaches_jetstream_in_order(names: tuple[str, str]) -> None:
    stream, subject = names
    sink, seen = NatsSink(URL, subject=subject, stream=stream), ListSink()
    try:
        output = workflow(sink, seen).run("topic")
        assert flush_sinks(10)
    finally:
        sink.close()

    messages = asyncio.run(read_stream(stream, f"{subject}.{output.run_id}"))
    assert [json.loads(m.data) for m in messages] == [json.loads(e.to_json()) for e in seen.events]
    kinds = [e.event for e in seen.events]
    assert kinds[0] == "WorkflowStarted" and kinds[-1] == "WorkflowCompleted"
    assert {"StepStarted", "StepCompleted"} <= set(kinds)  # a sink gets step events too
    # The outermost run's subject carries the nested workflow's events too.
    run_ids = {e.run_id for e in seen.events}
    assert output.run_id in run_ids and len(run_ids) == 2
    assert all(m.subject == f"{subject}.{output.run_id}" for m in messages)
    assert [m.headers["Plait-Event"] for m in messages if m.headers] == kinds


def test_a_second_run_has_a_subject_of_its_own(names: tuple[str, str]) -> None:
    stream, subject = names
    sink = NatsSink(URL, subject=subject, stream=stream)
    flow = workflow(sink)
    try:
        first, second = flow.run("one"), flow.run("two")
        assert flush_sinks(10)
    finally:
        sink.close()
    everything = asyncio.run(read_stream(stream, f"{subject}.>"))
    only_second = asyncio.run(read_stream(stream, f"{subject}.{second.run_id}"))
    assert {m.subject for m in everything} == {f"{subject}.{first.run_id}", f"{subject}.{second.run_id}"}
    assert only_second and len(only_second) < len(everything)
    assert json.loads(only_second[0].data)["input"] == "two"


def test_registered_as_the_nats_sink(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAIT_LOAD_PLUGINS", "nats")
    registry = build_registry()
    sink = registry.get("event_sink", "nats")(url=URL, subject="plait.named", stream="PLAIT_NAMED")
    assert isinstance(sink, NatsSink)
    assert (sink.url, sink.subject, sink.stream) == (URL, "plait.named", "PLAIT_NAMED")
    assert registry.plugins["nats"].distribution == "plait-nats"


def test_a_dead_server_never_fails_the_run(caplog: pytest.LogCaptureFixture) -> None:
    sink = NatsSink("nats://127.0.0.1:1", subject="plait.dead", stream="PLAIT_DEAD", connect_timeout=0.5)
    caplog.set_level(logging.WARNING)
    try:
        output = workflow(sink).run("topic")
        flush_sinks(10)
    finally:
        sink.close()
    assert output.status.value == "COMPLETED"
    assert output.content == "an article"
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert warnings[0].name == "plait.sinks"
    assert "NatsSink('nats://127.0.0.1:1'" in warnings[0].getMessage()
