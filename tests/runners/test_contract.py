"""The runner contract: every runner gives the same results, state, errors, events and traces.

Parametrized over the in-process runner, ``PickleRoundTripRunner`` (branches shipped
through pickle, in this process) and ``RayRunner`` on one local cluster (skipped
with install instructions when plait-ray is missing; failing under ``CI=true``).
Steps live at module level so every runner can ship them by reference.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import time
import traceback
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from plait import Parallel, Step, StepInput, StepOutput, Steps, Workflow
from plait.errors import StepError, StepTimeoutError
from plait.events import Event, StepCompletedEvent, WorkflowStartedEvent
from plait.runners import InProcessRunner
from tests.runners.conftest import EXAMPLES, worker_spans

# -- steps -------------------------------------------------------------------------------


class Delayed:
    """Returns ``value`` after ``delay`` seconds (async)."""

    def __init__(self, value: str, delay: float) -> None:
        self.value = value
        self.delay = delay

    async def __call__(self, step_input: StepInput) -> StepOutput:
        await asyncio.sleep(self.delay)
        return StepOutput(content=self.value)


def increment(step_input: StepInput, run_context: Any) -> str:
    run_context.session_state["counter"] += 1
    return "incremented"


def fail_loudly(step_input: StepInput) -> None:
    raise ValueError("the remote step broke")


class Sleeper:
    """Sleeps long, writing to ``marker`` when it starts and when it is cancelled."""

    def __init__(self, marker: str, seconds: float = 30.0) -> None:
        self.marker = marker
        self.seconds = seconds

    async def __call__(self, step_input: StepInput) -> str:
        Path(self.marker).write_text("started")
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            Path(self.marker).write_text("cancelled")
            raise
        Path(self.marker).write_text("finished")
        return "slept"


async def fail_soon(step_input: StepInput) -> None:
    await asyncio.sleep(0.3)
    raise RuntimeError("sibling failure")


def join_contents(step_input: StepInput) -> str:
    contents = step_input.previous_step_content
    return "+".join(f"{name}={value}" for name, value in sorted(contents.items()))


async def chatty(step_input: StepInput, run_context: Any) -> Any:
    """An async generator step: text chunks, custom events, then its output."""
    for index in range(3):
        yield f"chunk{index} "
        run_context.emit({"progress": index})
        await asyncio.sleep(0)
    yield StepOutput(content=f"{run_context.step_name} done")


def sync_chatty(step_input: StepInput) -> Any:
    """A sync generator step (it runs in a worker thread and emits from there)."""
    for index in range(3):
        yield f"sync{index} "


def current_span_ids(step_input: StepInput) -> dict[str, int]:
    context = trace.get_current_span().get_span_context()
    return {"trace_id": context.trace_id, "span_id": context.span_id}


def upper(step_input: StepInput) -> str:
    return str(step_input.input).upper()


# -- helpers -----------------------------------------------------------------------------


def in_process() -> InProcessRunner:
    return InProcessRunner(max_threads=8)


def events_of(workflow: Workflow, message: str = "go") -> list[Event]:
    return list(workflow.run(message, stream=True, stream_events=True))


def per_branch(events: list[Event], parallel_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """Each branch's events, in order, reduced to what must not change between runners."""
    branches: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    prefix = parallel_id + "/"
    for event in events:
        if event.step_id and event.step_id.startswith(prefix):
            branch = event.step_id[len(prefix) :].split("/")[0]
            detail = getattr(event, "content", None) if hasattr(event, "content") else None
            data = getattr(event, "data", None)
            branches[branch].append(
                (type(event).__name__, event.step_id, event.nested_depth, event.parent_step_id, detail, data)
            )
    return dict(branches)


def wait_for(path: Path, text: str, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text() == text:
            return True
        time.sleep(0.05)
    return False


def chain_text(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


# -- the contract ------------------------------------------------------------------------


def test_outputs_in_declaration_order(runner: Any) -> None:
    delays = [0.3, 0.1, 0.2, 0.0]
    branches = [Step(name=f"b{i}", executor=Delayed(f"v{i}", delay)) for i, delay in enumerate(delays)]
    workflow = Workflow(name="order", steps=[Parallel(*branches, name="p")], runner=runner)
    output = workflow.run("go")
    assert list(output.content) == ["b0", "b1", "b2", "b3"]
    assert list(output.content.values()) == ["v0", "v1", "v2", "v3"]
    assert [o.step_name for o in output.step_outputs[0].steps] == ["b0", "b1", "b2", "b3"]


def test_session_state_merges_every_branch(runner: Any) -> None:
    branches = [Step(name=f"inc{i}", executor=increment) for i in range(5)]
    workflow = Workflow(
        name="state", steps=[Parallel(*branches, name="p")], session_state={"counter": 0}, runner=runner
    )
    assert workflow.run("go").session_state["counter"] == 5


def test_max_concurrency_still_runs_every_branch(runner: Any) -> None:
    branches = [Step(name=f"b{i}", executor=Delayed(str(i), 0.05)) for i in range(6)]
    workflow = Workflow(
        name="limited", steps=[Parallel(*branches, name="p", max_concurrency=2)], runner=runner
    )
    assert list(workflow.run("go").content.values()) == [str(i) for i in range(6)]


def test_error_names_step_path_and_keeps_the_traceback(runner: Any) -> None:
    workflow = Workflow(
        name="errors",
        steps=[
            Parallel(
                Step(name="fine", executor=Delayed("ok", 0)), Step(name="bad", executor=fail_loudly), name="p"
            )
        ],
        runner=runner,
    )
    with pytest.raises(StepError) as caught:
        workflow.run("go")
    error = caught.value
    assert error.step_path == "p/bad"
    assert "p/bad" in str(error) and "the remote step broke" in str(error)
    assert isinstance(error.__cause__, ValueError)
    # The frame that raised is in the chain, whether it ran here or in a worker.
    assert "in fail_loudly" in chain_text(error)


def test_failing_branch_cancels_its_siblings(runner: Any, tmp_path: Path) -> None:
    marker = tmp_path / "sibling"
    workflow = Workflow(
        name="cancel",
        steps=[
            Parallel(
                Step(name="sleeper", executor=Sleeper(str(marker))),
                Step(name="bad", executor=fail_soon),
                name="p",
            )
        ],
        runner=runner,
    )
    started = time.monotonic()
    with pytest.raises(StepError) as caught:
        workflow.run("go")
    assert caught.value.step_path == "p/bad"
    assert time.monotonic() - started < 20
    assert wait_for(marker, "cancelled"), marker.read_text() if marker.exists() else "never started"


def test_caller_cancellation_reaches_every_branch(runner: Any, tmp_path: Path) -> None:
    markers = [tmp_path / f"sleeper{i}" for i in range(2)]
    workflow = Workflow(
        name="caller",
        steps=[Parallel(*(Step(name=m.name, executor=Sleeper(str(m))) for m in markers), name="p")],
        runner=runner,
    )

    async def cancel_after_start() -> None:
        task = asyncio.ensure_future(workflow.arun("go"))
        deadline = time.monotonic() + 30
        while not all(m.exists() for m in markers) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_after_start())
    for marker in markers:
        assert wait_for(marker, "cancelled"), marker.read_text()


def test_step_timeout_inside_a_branch(runner: Any, tmp_path: Path) -> None:
    marker = tmp_path / "slow"
    workflow = Workflow(
        name="timeouts",
        steps=[
            Parallel(
                Step(name="slow", executor=Sleeper(str(marker), seconds=10), timeout=0.3),
                Step(name="fast", executor=Delayed("ok", 0)),
                name="p",
            )
        ],
        runner=runner,
    )
    started = time.monotonic()
    with pytest.raises(StepError) as caught:
        workflow.run("go")
    assert time.monotonic() - started < 8
    assert caught.value.step_path == "p/slow"
    assert isinstance(caught.value.__cause__, StepTimeoutError)
    assert wait_for(marker, "cancelled")


def test_nested_parallel_inside_a_branch(runner: Any) -> None:
    inner = Steps(
        name="chain",
        steps=[
            Parallel(
                Step(name="x", executor=Delayed("1", 0.05)),
                Step(name="y", executor=Delayed("2", 0)),
                name="inner",
            ),
            Step(name="join", executor=join_contents),
        ],
    )
    workflow = Workflow(
        name="nested-parallel",
        steps=[Parallel(inner, Step(name="side", executor=Delayed("s", 0)), name="p")],
        runner=runner,
    )
    output = workflow.run("go")
    assert output.content == {"chain": "x=1+y=2", "side": "s"}
    events = per_branch(events_of(workflow), "p")
    # a container's start is its own subclass of StepStartedEvent (StepsExecutionStartedEvent)
    started = [e[1] for e in events["chain"] if e[0].endswith(("StepStartedEvent", "ExecutionStartedEvent"))]
    assert started == ["p/chain", "p/chain/inner", "p/chain/inner/x", "p/chain/inner/y", "p/chain/join"]


def _nested_workflow_pipeline(runner: Any) -> Workflow:
    inner = Workflow(
        name="Inner", steps=[Step(name="shout", executor=upper), Step(name="talk", executor=chatty)]
    )
    return Workflow(
        name="Outer",
        steps=[
            Parallel(Step(name="sub", workflow=inner), Step(name="side", executor=Delayed("s", 0)), name="p")
        ],
        runner=runner,
    )


def test_nested_workflow_inside_a_branch(runner: Any, runner_kind: str) -> None:
    output = _nested_workflow_pipeline(runner).run("go")
    assert output.content == {"sub": "talk done", "side": "s"}
    events = events_of(_nested_workflow_pipeline(runner))
    reference = events_of(_nested_workflow_pipeline(in_process()))
    assert per_branch(events, "p") == per_branch(reference, "p")
    depths = {e.workflow_name: e.nested_depth for e in events if isinstance(e, WorkflowStartedEvent)}
    assert depths == {"Outer": 0, "Inner": 1}
    inner_steps = [e for e in events if e.workflow_name == "Inner" and e.step_id]
    assert inner_steps and all(e.nested_depth == 1 for e in inner_steps)


def _chatty_pipeline(runner: Any) -> Workflow:
    return Workflow(
        name="events",
        steps=[
            Parallel(
                Step(name="a", executor=chatty),
                Step(name="b", executor=chatty),
                Step(name="c", executor=sync_chatty),
                name="p",
            ),
            Step(name="after", executor=join_contents),
        ],
        runner=runner,
    )


def test_events_complete_and_in_order_per_branch(runner: Any) -> None:
    events = events_of(_chatty_pipeline(runner))
    reference = events_of(_chatty_pipeline(in_process()))
    assert per_branch(events, "p") == per_branch(reference, "p")
    assert type(events[0]).__name__ == "WorkflowStartedEvent"
    assert type(events[-1]).__name__ == "WorkflowCompletedEvent"
    # every branch event reaches the caller before the Parallel completes
    names = [(isinstance(e, StepCompletedEvent), e.step_id) for e in events]
    parallel_done = names.index((True, "p"))
    assert all(
        i < parallel_done for i, (_, step_id) in enumerate(names) if step_id and step_id.startswith("p/")
    )


def test_remote_spans_join_the_drivers_trace(runner: Any, runner_kind: str, worker_span_dir: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    workflow = Workflow(
        name="traced",
        steps=[
            Parallel(
                Step(name="a", executor=current_span_ids),
                Steps(name="group", steps=[Step(name="inside", executor=current_span_ids)]),
                name="p",
            )
        ],
        runner=runner,
        tracer_provider=provider,
    )
    output = workflow.run("go")
    driver = exporter.get_finished_spans()
    root = next(s for s in driver if s.parent is None)
    trace_id = root.context.trace_id
    parallel = next(s for s in driver if s.name == "parallel p")
    assert parallel.context.trace_id == trace_id
    seen = [output.content["a"], output.content["group"]]
    assert all(ids["trace_id"] == trace_id for ids in seen)
    if runner_kind == "pickle":
        return  # this process has no global tracer provider: the context travels, no spans are made
    if runner_kind == "ray":
        spans = worker_spans(worker_span_dir, trace_id)
    else:
        spans = [
            {
                "name": s.name,
                "span_id": s.context.span_id,
                "parent_id": s.parent.span_id if s.parent else None,
            }
            for s in driver
        ]
    by_name = {s["name"]: s for s in spans}
    assert by_name["step a"]["parent_id"] == parallel.context.span_id
    assert by_name["steps group"]["parent_id"] == parallel.context.span_id
    assert by_name["step inside"]["parent_id"] == by_name["steps group"]["span_id"]
    assert seen[0]["span_id"] == by_name["step a"]["span_id"]


# -- the seeds' examples, unchanged but for the runner -------------------------------------


@pytest.fixture
def examples_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))


def fresh_example(name: str) -> Any:
    module = sys.modules.get(name) or importlib.import_module(name)
    return importlib.reload(module)


@pytest.mark.usefixtures("examples_path")
def test_parallel_workflow_example(runner: Any) -> None:
    reference = fresh_example("parallel_workflow").workflow.run("Write about the latest AI developments")
    module = fresh_example("parallel_workflow")
    module.workflow.runner = runner
    output = module.workflow.run("Write about the latest AI developments")
    assert output.session_state == {"sources": 1}
    assert output.content == reference.content


@pytest.mark.usefixtures("examples_path")
def test_deep_nested_workflow_example(runner: Any, runner_kind: str) -> None:
    reference = events_of(
        fresh_example("deep_nested_workflow").outer_workflow, "The future of battery storage"
    )
    module = fresh_example("deep_nested_workflow")
    module.outer_workflow.runner = runner
    events = events_of(module.outer_workflow, "The future of battery storage")
    # Branches interleave differently from run to run; each branch's own events, and
    # everything outside the Parallel, keep their order.
    parallel = "research/parallel_research"
    assert per_branch(events, parallel) == per_branch(reference, parallel)

    def outside(stream: list[Event]) -> list[tuple[str, str | None, int]]:
        return [
            (type(e).__name__, e.step_id, e.nested_depth)
            for e in stream
            if not (e.step_id or "").startswith(parallel + "/")
        ]

    assert outside(events) == outside(reference)
    depths = {e.workflow_name: e.nested_depth for e in events if isinstance(e, WorkflowStartedEvent)}
    assert depths == {
        "Full Pipeline": 0,
        "Comprehensive Research": 1,
        "Data Collection": 2,
        "Expert Opinion": 2,
    }
    assert module.outer_workflow.get_last_run_output().content == (
        fresh_example("deep_nested_workflow").outer_workflow.run("The future of battery storage").content
    )


def add(a: int, b: int) -> int:
    """Add two numbers.

    Args:
        a: the first
        b: the second
    """
    return a + b


def add_reply(messages: list[Any]) -> Any:
    from plait.models import ToolCall

    if messages[-1].role != "tool":
        return ToolCall("c1", "add", {"a": 2, "b": 3})
    return f"the sum is {messages[-1].content}"


def test_an_agent_with_tools_in_a_branch(runner: Any) -> None:
    """A tool's arguments model is made at run time: a shipped agent builds its tools again."""
    from plait import Agent
    from plait.testing import FunctionModel

    agent = Agent(name="calc", model=FunctionModel(add_reply), tools=[add])
    workflow = Workflow(
        name="tools",
        steps=[Parallel(Step(name="a", agent=agent), Step(name="b", agent=agent), name="both")],
        runner=runner,
    )
    output = workflow.run("go")
    assert [o.content for o in output.step_outputs[0].steps] == ["the sum is 5", "the sum is 5"]
    described = agent.tools[0].definition.parameters["properties"]["a"]
    assert described["description"] == "the first"
