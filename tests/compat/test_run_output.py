"""Issue #14, item 8: the run output's shape, as Agno code reads it.

``output.step_results`` (Agno's name for plait's ``step_outputs``), ``output.metrics`` as
Agno's ``WorkflowMetrics`` (per-step metrics by name, ``to_dict()``) that keeps plait's
totals, ``output.to_dict()`` / ``WorkflowRunOutput.from_dict(...)`` with nested outputs and
typed content, and ``WorkflowCompletedEvent.step_results``. Written as Agno code with only
the imports and the model changed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
import uuid
from decimal import Decimal

import pytest
from pydantic import BaseModel

from plait import (
    Agent,
    Condition,
    Loop,
    Parallel,
    RunStatus,
    Step,
    StepInput,
    StepMetrics,
    StepOutput,
    Workflow,
    WorkflowMetrics,
    WorkflowRunOutput,
)
from plait.events import WorkflowCompletedEvent
from plait.storage import StorageError
from plait.testing import FunctionModel


class Report(BaseModel):
    title: str
    score: int


@dataclasses.dataclass
class Stamp:
    at: dt.datetime
    tags: tuple[str, ...]


def research(step_input: StepInput) -> StepOutput:
    return StepOutput(content=f"research on {step_input.input}")


def report(step_input: StepInput) -> StepOutput:
    return StepOutput(content=Report(title=str(step_input.input), score=3))


def stamp(step_input: StepInput) -> Stamp:
    return Stamp(at=dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC), tags=("a", "b"))


writer = Agent(name="Writer", model=FunctionModel(lambda messages: "three word answer"))


def workflow() -> Workflow:
    return Workflow(
        name="Shapes",
        steps=[
            Step(name="research", executor=research),
            Parallel("fan", Step(name="report", executor=report), Step(name="stamp", executor=stamp)),
            Loop(name="refine", steps=[Step(name="polish", executor=research)], max_iterations=2),
            Condition(name="never", evaluator=False, steps=[Step(name="skipped", executor=research)]),
            Step(name="write", agent=writer),
        ],
    )


def test_step_results_is_agnos_name_for_step_outputs() -> None:
    output = workflow().run("tea")
    assert output.step_results is output.step_outputs
    assert [r.step_name for r in output.step_results] == ["research", "fan", "refine", "never", "write"]
    assert output.step_results[1].steps[0].content == Report(title="tea", score=3)  # type: ignore[index]
    replaced = [StepOutput(content="x", step_name="x")]
    output.step_results = replaced
    assert output.step_outputs is replaced


def test_metrics_by_step_name_as_agnos_workflow_metrics() -> None:
    output = workflow().run("tea")
    metrics = output.metrics
    assert isinstance(metrics, WorkflowMetrics) and isinstance(metrics, StepMetrics)
    # Agno: output.metrics.steps["write"].metrics.input_tokens
    write = metrics.steps["write"]
    assert (write.step_name, write.executor_type, write.executor_name) == ("write", "agent", "Writer")
    assert write.metrics is not None and write.metrics.output_tokens == 3 and write.metrics.duration > 0
    assert metrics.steps["research"].executor_type == "function"
    assert metrics.steps["fan"].executor_type == "parallel"  # a container, as Agno names a Parallel's
    # every step at any depth; a loop's step sums its iterations
    assert set(metrics.steps) == {"research", "fan", "report", "stamp", "refine", "polish", "never", "write"}
    polish = metrics.steps["polish"].metrics
    assert polish is not None and polish.attempts == 2
    # plait's totals keep working
    assert (metrics.input_tokens, metrics.output_tokens, metrics.total_tokens) == (
        write.metrics.input_tokens,
        3,
        write.metrics.input_tokens + 3,
    )
    assert metrics.duration == output.duration > 0


def test_metrics_to_dict_has_agnos_shape_and_is_json() -> None:
    output = workflow().run("tea")
    data = output.metrics.to_dict()
    json.dumps(data)
    assert data["duration"] == output.duration
    assert data["steps"]["write"]["executor_name"] == "Writer"
    assert data["steps"]["write"]["metrics"]["output_tokens"] == 3
    assert data["steps"]["research"]["metrics"]["duration"] > 0
    assert data["output_tokens"] == 3
    again = WorkflowMetrics.from_dict(data)
    assert again == output.metrics


def test_to_dict_and_from_dict_round_trip_nested_outputs_and_typed_content() -> None:
    output = workflow().run("tea")
    data = output.to_dict()
    text = json.dumps(data)  # JSON all the way down
    assert data["status"] == "COMPLETED" and [s["step_name"] for s in data["step_results"]] == [
        "research",
        "fan",
        "refine",
        "never",
        "write",
    ]
    assert data["step_results"][1]["steps"][0]["step_name"] == "report"
    assert data["metrics"]["steps"]["write"]["executor_type"] == "agent"
    loaded = WorkflowRunOutput.from_dict(json.loads(text))
    assert loaded == output  # every field, nested outputs and metrics included
    fan = loaded.step_results[1]
    assert type(fan.steps[0].content) is Report and fan.steps[0].content == Report(title="tea", score=3)  # type: ignore[index]
    assert type(fan.steps[1].content) is Stamp and fan.steps[1].content.tags == ("a", "b")  # type: ignore[index,union-attr]
    assert loaded.step_results[3].skipped and loaded.step_results[3].metadata == {"result": False}
    assert loaded.metrics.to_dict() == output.metrics.to_dict()
    assert loaded.status is RunStatus.COMPLETED


def test_types_survive_the_round_trip() -> None:
    values = {
        "when": dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC),
        "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "money": Decimal("1.10"),
        "pair": (1, "two"),
        "by_int": {1: "one", 2: "two"},
        "blob": b"\x00\x01",
        "set": {3, 4},
    }
    output = Workflow(name="typed", steps=[lambda si: values]).run(
        {"in": (1, 2)}, session_state={"t": (5, 6)}
    )
    loaded = WorkflowRunOutput.from_dict(json.loads(json.dumps(output.to_dict())))
    assert loaded.content == values and type(loaded.content["pair"]) is tuple
    assert loaded.input == {"in": (1, 2)} and loaded.session_state == {"t": (5, 6)}


def test_a_paused_run_round_trips_with_what_it_waits_for() -> None:
    from plait import Approval
    from plait.storage import MemoryStorage

    paused = Workflow(name="w", steps=[research, Approval(name="ok")], storage=MemoryStorage()).run("x")
    loaded = WorkflowRunOutput.from_dict(paused.to_dict())
    assert loaded.status is RunStatus.PAUSED and loaded.pending == paused.pending


def test_from_dict_reads_agnos_keys_and_rejects_bad_data_clearly() -> None:
    # the shape Agno's WorkflowRunOutput.to_dict() writes: no duration at the top, steps without plait's keys
    agno = {
        "run_id": "r1",
        "workflow_id": "w",
        "workflow_name": "W",
        "session_id": "s",
        "status": "COMPLETED",
        "content": "done",
        "content_type": "str",
        "created_at": 1700000000,
        "step_results": [
            {
                "content": "done",
                "step_name": "write",
                "step_type": "Step",
                "executor_type": "agent",
                "metrics": {"input_tokens": 4, "output_tokens": 2, "total_tokens": 6, "duration": 0.5},
                "success": True,
                "stop": False,
                "is_paused": False,
            }
        ],
        "metrics": {"steps": {}, "duration": 1.5},
    }
    loaded = WorkflowRunOutput.from_dict(agno)
    assert loaded.duration == 1.5 and loaded.step_results[0].metrics.input_tokens == 4  # type: ignore[union-attr]
    assert loaded.metrics.steps["write"].metrics.total_tokens == 6  # type: ignore[union-attr]
    assert agno["metrics"] == {"steps": {}, "duration": 1.5}  # the caller's dict is not changed
    with pytest.raises(TypeError, match=r"WorkflowRunOutput.from_dict: expected a dict .*got list"):
        WorkflowRunOutput.from_dict([1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"missing 'run_id', 'status'.*got one with keys"):
        WorkflowRunOutput.from_dict({"workflow_id": "w", "workflow_name": "W", "session_id": "s"})
    with pytest.raises(ValueError, match=r"unknown status 'DONE'; expected one of 'PENDING'"):
        WorkflowRunOutput.from_dict({**agno, "status": "DONE"})
    with pytest.raises(TypeError, match=r"'step_results' must be a list"):
        WorkflowRunOutput.from_dict({**agno, "step_results": {"a": 1}})


def test_a_class_this_process_never_held_is_refused_by_name() -> None:
    data = workflow().run("tea").to_dict()
    data["step_results"][1]["steps"][0]["content"]["cls"] = "elsewhere:Secret"
    with pytest.raises(
        StorageError, match=r"step 'fan/report'.*elsewhere:Secret.*allow_content_type\(Secret\)"
    ):
        WorkflowRunOutput.from_dict(data)


def test_step_output_to_dict_from_dict() -> None:
    output = StepOutput(
        content=Report(title="t", score=1),
        step_name="s",
        metadata={"at": dt.date(2026, 1, 1)},
        metrics=StepMetrics(duration=1.0, input_tokens=2),
        steps=[StepOutput(content=("a", 1), step_name="inner")],
    )
    again = StepOutput.from_dict(json.loads(json.dumps(output.to_dict())))
    assert again == output and type(again.metadata["at"]) is dt.date  # type: ignore[index]


def test_completed_event_carries_step_results_and_metrics() -> None:
    events = list(workflow().run("tea", stream=True))
    completed = events[-1]
    assert isinstance(completed, WorkflowCompletedEvent)
    assert [r.step_name for r in completed.step_results] == ["research", "fan", "refine", "never", "write"]
    assert completed.metrics is not None and completed.metrics.steps["write"].metrics.output_tokens == 3  # type: ignore[union-attr]
    data = completed.to_dict()
    assert data["step_results"][0]["content"] == "research on tea"
    assert data["metrics"]["steps"]["write"]["executor_name"] == "Writer"


def test_concurrent_runs_and_two_event_loops_keep_their_own_metrics() -> None:
    import asyncio

    wf = workflow()
    results: list[WorkflowRunOutput] = []
    threads = [threading.Thread(target=lambda: results.append(wf.run("tea"))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.append(asyncio.run(wf.arun("tea")))
    results.append(asyncio.run(wf.arun("tea")))
    for result in results:
        assert result.metrics.steps["write"].metrics.output_tokens == 3  # type: ignore[union-attr]
        assert WorkflowRunOutput.from_dict(result.to_dict()) == result


def test_content_json_cannot_hold_is_a_clear_error() -> None:
    class Opaque:
        pass

    output = Workflow(name="opaque", steps=[Step(name="make", executor=lambda si: Opaque())]).run("x")
    with pytest.raises(StorageError, match=r"the content of workflow 'opaque' \(run .*\).*Opaque"):
        output.to_dict()
    with pytest.raises(StorageError, match=r"the output of step 'make'.*Opaque"):
        output.step_results[0].to_dict()


def test_content_types_name_the_classes_a_new_process_may_rebuild() -> None:
    from plait._codec import class_key

    class Fresh(BaseModel):  # never stored in this process: as if the data came from another one
        value: int

    data = {
        "run_id": "r",
        "workflow_id": "w",
        "workflow_name": "w",
        "session_id": "s",
        "status": "COMPLETED",
        "content": {"$plait": "model", "cls": class_key(Fresh), "v": {"value": 7}},
    }
    with pytest.raises(StorageError, match=r"workflow 'w' \(run r\).*allow_content_type\(.*Fresh\)"):
        WorkflowRunOutput.from_dict(data)
    loaded = WorkflowRunOutput.from_dict(data, content_types=[Fresh])
    assert type(loaded.content) is Fresh and loaded.content.value == 7
