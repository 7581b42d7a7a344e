"""The span tree, through the real OpenTelemetry SDK."""

from __future__ import annotations

import asyncio
import logging

import pytest
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from plait import Agent, Loop, Parallel, Step, StepError, StepInput, Workflow
from plait.testing import FunctionModel


class Tracker(SpanProcessor):
    """Counts spans started and ended, to find any left open."""

    def __init__(self) -> None:
        self.open: set[int] = set()

    def on_start(self, span, parent_context=None) -> None:  # type: ignore[no-untyped-def]
        self.open.add(span.context.span_id)

    def on_end(self, span: ReadableSpan) -> None:
        self.open.discard(span.context.span_id)


@pytest.fixture
def tracing():  # type: ignore[no-untyped-def]
    exporter = InMemorySpanExporter()
    tracker = Tracker()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.add_span_processor(tracker)
    yield provider, exporter, tracker
    provider.shutdown()


def tree(spans: list[ReadableSpan]) -> dict[str, str | None]:
    by_id = {s.context.span_id: s for s in spans}
    return {s.name: (by_id[s.parent.span_id].name if s.parent else None) for s in spans}


def sync_step(step_input: StepInput) -> str:
    return "sync"


async def async_step(step_input: StepInput) -> str:
    await asyncio.sleep(0)
    return "async"


def test_span_tree_of_a_nested_run(tracing) -> None:  # type: ignore[no-untyped-def]
    provider, exporter, tracker = tracing
    writer = Agent(name="writer", model=FunctionModel(lambda m: "text"), instructions="write")
    inner = Workflow(
        name="inner", steps=[Parallel(sync_step, async_step, name="fan"), Step(name="write", agent=writer)]
    )
    loop = Loop(name="loop", steps=[sync_step], max_iterations=2)
    outer = Workflow(name="outer", steps=[Step(name="phase", workflow=inner), loop], tracer_provider=provider)
    outer.run("x")
    spans = exporter.get_finished_spans()
    assert len({s.context.trace_id for s in spans}) == 1
    assert tree(list(spans)) == {
        "invoke_workflow outer": None,
        "workflow phase": "invoke_workflow outer",
        "invoke_workflow inner": "workflow phase",
        "parallel fan": "invoke_workflow inner",
        "step sync_step": "loop_iteration loop[2]",  # the last one named so: the loop's
        "step async_step": "parallel fan",
        "step write": "invoke_workflow inner",
        "invoke_agent writer": "step write",
        "chat <lambda>": "invoke_agent writer",
        "loop loop": "invoke_workflow outer",
        "loop_iteration loop[1]": "loop loop",
        "loop_iteration loop[2]": "loop loop",
    }
    by_name: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    # the sync branch ran in a worker thread and still has the right parent
    parents = sorted(tree_parent(s, spans) for s in by_name["step sync_step"])
    assert parents == ["loop_iteration loop[1]", "loop_iteration loop[2]", "parallel fan"]
    fan_branch = next(s for s in by_name["step sync_step"] if tree_parent(s, spans) == "parallel fan")
    assert fan_branch.attributes["plait.step.id"] == "phase/fan/sync_step"
    assert fan_branch.attributes["plait.parallel.branch"] == 0
    assert by_name["invoke_workflow inner"][0].attributes["plait.nested_depth"] == 1
    assert by_name["chat <lambda>"][0].attributes["gen_ai.usage.output_tokens"] == 1
    assert not tracker.open


def tree_parent(span: ReadableSpan, spans) -> str | None:  # type: ignore[no-untyped-def]
    by_id = {s.context.span_id: s for s in spans}
    return by_id[span.parent.span_id].name if span.parent else None


def test_failed_step_marks_spans_with_error(tracing) -> None:  # type: ignore[no-untyped-def]
    provider, exporter, tracker = tracing

    def boom(step_input: StepInput) -> str:
        raise ValueError("bad")

    with pytest.raises(StepError):
        Workflow(name="w", steps=[boom], tracer_provider=provider).run("x")
    spans = {s.name: s for s in exporter.get_finished_spans()}
    step = spans["step boom"]
    assert step.status.status_code is StatusCode.ERROR
    assert step.attributes["error.type"] == "ValueError"
    assert any(e.name == "exception" for e in step.events)
    assert spans["invoke_workflow w"].status.status_code is StatusCode.ERROR
    assert not tracker.open


def test_abandoned_stream_ends_its_spans_cleanly(tracing, caplog) -> None:  # type: ignore[no-untyped-def]
    provider, exporter, tracker = tracing

    async def slow(step_input: StepInput) -> str:
        await asyncio.sleep(10)
        return "late"

    inner = Workflow(name="inner", steps=[Parallel(slow, async_step, name="p")])
    workflow = Workflow(name="w", steps=[sync_step, inner], tracer_provider=provider)
    caplog.set_level(logging.ERROR)
    stream = workflow.run("x", stream=True, stream_events=True)
    for event in stream:
        if event.step_id == "inner/p/async_step" and event.event == "StepCompleted":
            break
    stream.close()
    assert not tracker.open
    assert "Failed to detach context" not in caplog.text
    names = {s.name for s in exporter.get_finished_spans()}
    assert {
        "invoke_workflow w",
        "workflow inner",
        "invoke_workflow inner",
        "parallel p",
        "step slow",
    } <= names


def test_no_sdk_means_no_spans_and_no_cost() -> None:
    from plait.tracing import resolve_tracer

    assert resolve_tracer() is None
