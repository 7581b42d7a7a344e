"""Issue #15, items 4, 5, 7 and 8: fork a stored run at any step, diff two runs, exactly-once
side effects (``run_context.idempotency_key`` / ``once`` / ``aonce``), and lineage on spans,
events, ``plait runs show`` and ``plait runs list``. The workflows are written as Agno
workflows are (Step, Loop, Parallel, nested Workflow, Agent); only the imports and the model
differ."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from plait import (
    Agent,
    Loop,
    Parallel,
    RunContext,
    Step,
    StepInput,
    StepOutput,
    Workflow,
    diff_runs,
)
from plait.cli import main
from plait.errors import DefinitionError
from plait.events import WorkflowStartedEvent
from plait.testing import FunctionModel

calls: Counter[str] = Counter()


def research(step_input: StepInput, session_state: dict[str, Any]) -> str:
    calls["research"] += 1
    session_state["sources"] = session_state.get("sources", 0) + 2
    return f"notes on {step_input.input}"


def draft(step_input: StepInput, session_state: dict[str, Any]) -> str:
    calls["draft"] += 1
    tone = session_state.get("tone", "plain")
    return f"{tone} draft of {step_input.previous_step_content}"


def polish(step_input: StepInput) -> str:
    calls["polish"] += 1
    return f"polished {step_input.previous_step_content}"


def reply(messages: Any) -> str:
    calls["model"] += 1
    return f"edited: {messages[-1].content}"


def build(url: str) -> Workflow:
    editor = Agent(name="Editor", model=FunctionModel(reply), instructions="Edit the text.")
    return Workflow(
        name="Blog",
        steps=[
            Step(name="research", executor=research),
            Step(name="draft", executor=draft),
            Step(name="polish", executor=polish),
            Step(name="edit", agent=editor),
        ],
        storage=url,
    )


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


def test_fork_restores_steps_before_the_point_and_runs_the_rest_live(url: str) -> None:
    workflow = build(url)
    original = workflow.run("otters")
    assert calls == Counter(research=1, draft=1, polish=1, model=1)
    calls.clear()
    fork = workflow.fork(original.run_id, at="draft", state={"tone": "formal"})
    assert calls == Counter(draft=1, polish=1, model=1)  # research was not executed again
    assert fork.content == "edited: polished formal draft of notes on otters"
    assert fork.run_id != original.run_id
    assert fork.lineage == {"forked_from": original.run_id, "fork_step": "draft"}
    assert fork.session_state["sources"] == 2 and fork.session_state["tone"] == "formal"
    assert [o.step_name for o in fork.step_outputs] == ["research", "draft", "polish", "edit"]
    assert fork.step_outputs[0].content == "notes on otters"
    stored = {r.run_id: r for r in asyncio.run(_runs(workflow))}
    assert stored[original.run_id].lineage is None  # the original is untouched
    assert stored[fork.run_id].lineage == fork.lineage


def test_fork_with_a_replacement_input_or_output(url: str) -> None:
    workflow = build(url)
    original = workflow.run("otters")
    calls.clear()
    replaced = workflow.fork(original.run_id, at="polish", input="a new text")
    assert calls == Counter(polish=1, model=1)
    assert replaced.content == "edited: polished a new text"
    calls.clear()
    given = workflow.fork(original.run_id, at="polish", output="hand-written")
    assert calls == Counter(model=1)  # polish not run: later steps see the given output
    assert given.content == "edited: hand-written"
    assert given.step_outputs[2].content == "hand-written"
    # the given output is checkpointed: the fork of a fork restores it
    calls.clear()
    again = workflow.fork(given.run_id, at="edit")
    assert calls == Counter(model=1) and again.content == "edited: hand-written"


def test_fork_errors_name_the_run_and_its_step_ids(url: str) -> None:
    workflow = build(url)
    original = workflow.run("otters")
    with pytest.raises(DefinitionError, match=r"no step 'drafts' in the run; its step ids: research, draft"):
        workflow.fork(original.run_id, at="drafts")
    with pytest.raises(DefinitionError, match="not both"):
        workflow.fork(original.run_id, at="draft", input="x", output="y")
    with pytest.raises(DefinitionError, match="state= must be a dict"):
        workflow.fork(original.run_id, at="draft", state=["tone"])  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="no run 'nope'"):
        workflow.fork("nope", at="draft")
    with pytest.raises(DefinitionError, match="needs storage"):
        Workflow(name="w", steps=[research]).fork(original.run_id, at="research")


def count(name: str):  # type: ignore[no-untyped-def]
    def step(step_input: StepInput, session_state: dict[str, Any]) -> str:
        calls[name] += 1
        session_state[name] = session_state.get(name, 0) + 1
        bonus = session_state.get("bonus", "")
        return f"{name}{bonus}({step_input.previous_step_content or step_input.input})"

    step.__name__ = name
    return Step(name=name, executor=step)


def test_fork_inside_a_nested_workflow_a_loop_iteration_and_a_parallel_branch(url: str) -> None:
    inner = Workflow(name="inner", steps=[count("i1"), count("i2")])
    workflow = Workflow(
        name="Deep",
        steps=[
            count("first"),
            inner,
            Loop(name="loop", steps=[count("body"), count("check")], max_iterations=3),
            Parallel(count("p1"), count("p2"), name="fan"),
            count("last"),
        ],
        storage=url,
    )
    original = workflow.run("go")
    assert calls["body"] == 3 and calls["last"] == 1
    calls.clear()
    nested = workflow.fork(original.run_id, at="inner/i2", state={"bonus": "!"})
    assert calls["first"] == 0 and calls["i1"] == 0 and calls["i2"] == 1 and calls["last"] == 1
    assert "i2!(" in nested.step_outputs[1].content
    calls.clear()
    looped = workflow.fork(original.run_id, at="loop[3]/check", state={"bonus": "?"})
    # iterations 1 and 2 and the body of iteration 3 restored (iterations count from 1)
    assert calls["body"] == 0 and calls["check"] == 1 and calls["first"] == 0 and calls["i1"] == 0
    assert calls["p1"] == 1 and calls["p2"] == 1 and calls["last"] == 1
    assert looped.session_state["body"] == 3 and looped.session_state["check"] == 3
    calls.clear()
    branch = workflow.fork(original.run_id, at="fan/p2", state={"bonus": "+"})
    assert calls["p2"] == 1 and calls["last"] == 1 and calls["body"] == 0 and calls["first"] == 0
    assert calls["p1"] == 0  # the sibling branch is restored
    assert "p2+(" in branch.step_outputs[3].content["p2"]
    calls.clear()
    second = workflow.fork(original.run_id, at="loop[2]/body")
    assert calls["body"] == 2 and calls["check"] == 2 and second.session_state["body"] == 3
    with pytest.raises(DefinitionError, match=r"loop\[1\]/body"):
        workflow.fork(original.run_id, at="loop/body")  # an iteration must be named


def test_fork_in_a_branch_restores_siblings_that_finished_after_it(url: str) -> None:
    async def slow(step_input: StepInput) -> str:
        calls["slow"] += 1
        await asyncio.sleep(0.05)
        return "slow done"

    async def fast(step_input: StepInput, session_state: dict[str, Any]) -> str:
        calls["fast"] += 1
        return f"fast {session_state.get('mood', '')}"

    workflow = Workflow(
        name="w",
        steps=[
            Parallel(Step(name="slow", executor=slow), Step(name="fast", executor=fast), name="fan"),
            count("after"),
        ],
        storage=url,
    )
    original = workflow.run("x")
    ids = [c.step_id for c in asyncio.run(_checkpoints(workflow, original.run_id))]
    assert ids.index("fan/fast") < ids.index("fan/slow")  # the sibling finished after the fork step
    calls.clear()
    forked = workflow.fork(original.run_id, at="fan/fast", state={"mood": "happy"})
    assert calls == Counter(fast=1, after=1)
    assert forked.step_outputs[0].content["slow"] == "slow done"
    assert forked.step_outputs[0].content["fast"] == "fast happy"


async def _checkpoints(workflow: Workflow, run_id: str) -> list[Any]:
    storage = await workflow._ready_storage()
    assert storage is not None
    return await storage.load_checkpoints(run_id)


def test_a_failed_step_can_be_forked_with_a_fixed_input(url: str) -> None:
    def strict(step_input: StepInput) -> str:
        if step_input.input == "bad":
            raise ValueError("bad input")
        return f"ok {step_input.input}"

    workflow = Workflow(name="w", steps=[count("first"), Step(name="strict", executor=strict)], storage=url)
    with pytest.raises(Exception, match="bad input"):
        workflow.run("bad")
    records = asyncio.run(_runs(workflow))
    run_id = next(r.run_id for r in records if r.status == "ERROR")
    calls.clear()
    fixed = workflow.fork(run_id, at="strict", input="good")
    assert fixed.content == "ok good" and calls["first"] == 0


async def _runs(workflow: Workflow) -> list[Any]:
    storage = await workflow._ready_storage()
    assert storage is not None
    return await storage.list_runs()


class Invoice(BaseModel):
    number: int
    due: dt.date


@dataclasses.dataclass
class Receipt:
    paid_at: dt.datetime
    lines: tuple[str, ...]


def test_fork_output_and_restored_types_survive_the_storage(url: str) -> None:
    def bill(step_input: StepInput) -> Invoice:
        calls["bill"] += 1
        return Invoice(number=7, due=dt.date(2026, 1, 2))

    def pay(step_input: StepInput) -> Receipt:
        calls["pay"] += 1
        invoice = step_input.previous_step_content
        assert isinstance(invoice, Invoice)
        return Receipt(paid_at=dt.datetime(2026, 1, 3, 4, 5), lines=(f"#{invoice.number}", str(invoice.due)))

    workflow = Workflow(
        name="Billing", steps=[Step(name="bill", executor=bill), Step(name="pay", executor=pay)], storage=url
    )
    original = workflow.run("go")
    calls.clear()
    fork = workflow.fork(original.run_id, at="pay")
    assert calls == Counter(pay=1)
    assert fork.content == Receipt(paid_at=dt.datetime(2026, 1, 3, 4, 5), lines=("#7", "2026-01-02"))
    given = workflow.fork(original.run_id, at="bill", output=Invoice(number=9, due=dt.date(2027, 5, 6)))
    assert given.content.lines == ("#9", "2027-05-06")


def test_diff_runs_finds_where_two_forks_diverge(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    workflow = build(url)
    original = workflow.run("otters")
    formal = workflow.fork(original.run_id, at="draft", state={"tone": "formal"})
    casual = workflow.fork(original.run_id, at="draft", state={"tone": "casual"})
    result = diff_runs(formal.run_id, casual.run_id, storage=url)
    assert result.first_divergence == "draft"
    assert [s.step_id for s in result.steps] == ["research", "draft", "polish", "edit"]
    assert not result.step("research").differs
    step = result.step("draft")
    assert step.differs and step.status == ("COMPLETED", "COMPLETED")
    assert step.content == ("formal draft of notes on otters", "casual draft of notes on otters")
    assert "-formal draft of notes on otters" in step.content_diff
    assert "+casual draft of notes on otters" in step.content_diff
    assert step.state_changes == {"tone": ("formal", "casual")}
    assert step.duration[0] is not None and step.duration[1] is not None
    assert result.step("edit").differs and result.lineage[0]["fork_step"] == "draft"
    assert json.loads(json.dumps(result.to_dict()))["first_divergence"] == "draft"
    same = diff_runs(original.run_id, original.run_id, storage=url)
    assert same.first_divergence is None and not same.differs
    with pytest.raises(KeyError, match="no step 'nope'"):
        result.step("nope")
    with pytest.raises(DefinitionError, match="no run 'missing'"):
        diff_runs(original.run_id, "missing", storage=url)

    assert main(["runs", "diff", formal.run_id, casual.run_id, "--storage", url]) == 0
    text = capsys.readouterr().out
    assert "first divergence: draft" in text and "≠ draft  COMPLETED" in text and "= research" in text
    assert 'state tone: "formal" -> "casual"' in text
    assert all(len(line) <= 80 for line in text.splitlines()), text
    assert main(["runs", "diff", formal.run_id, casual.run_id, "--storage", url, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["first_divergence"] == "draft" and data["steps"][1]["state_changes"] == {
        "tone": ["formal", "casual"]
    }


def test_diff_of_a_step_only_one_run_has(url: str) -> None:
    short = Workflow(name="w", steps=[count("a")], storage=url)
    long = Workflow(name="w", steps=[count("a"), count("b")], storage=url)
    one, two = short.run("x"), long.run("x")
    result = diff_runs(one.run_id, two.run_id, storage=url)
    assert result.first_divergence == "b" and result.step("b").status == (None, "COMPLETED")
    assert "b  None -> COMPLETED" in result.format()


def test_cli_fork_show_and_list_display_lineage(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = tmp_path / "blog_flow.py"
    module.write_text(f"from tests.compat.test_time_travel import build\nworkflow = build({url!r})\n")
    workflow = build(url)
    original = workflow.run("otters")
    calls.clear()
    code = main(
        [
            "runs", "fork", original.run_id, "--at", "draft", "--state", '{"tone": "formal"}',
            "--storage", url, "--workflow", f"{module}:workflow", "--json",
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    data = json.loads(capsys.readouterr().out)
    assert data["lineage"] == {"forked_from": original.run_id, "fork_step": "draft"}
    assert data["content"] == "edited: polished formal draft of notes on otters"
    assert calls["research"] == 0 and calls["draft"] == 1
    assert main(["runs", "show", data["run_id"], "--storage", url]) == 0
    shown = capsys.readouterr().out
    assert f"forked_from {original.run_id}" in shown and "fork_step draft" in shown
    assert main(["runs", "list", "--storage", url]) == 0
    listed = capsys.readouterr().out
    assert "(fork of" in listed and original.run_id[:8] in listed and "draft)" in listed, listed
    target = ["--storage", url, "--workflow", f"{module}:workflow", "--json"]
    assert main(["runs", "fork", original.run_id, "--at", "polish", "--output", '"by hand"', *target]) == 0
    assert json.loads(capsys.readouterr().out)["content"] == "edited: by hand"
    assert main(["runs", "fork", original.run_id, "--at", "polish", "--input", "plain words", *target]) == 0
    assert json.loads(capsys.readouterr().out)["content"] == "edited: polished plain words"
    calls.clear()  # --replay: the editor's request is what the original sent, answered from its record
    assert main(["runs", "fork", original.run_id, "--at", "polish", "--replay", *target]) == 0
    assert json.loads(capsys.readouterr().out)["content"] == "edited: polished plain draft of notes on otters"
    assert calls == Counter(polish=1)
    code = main(["runs", "fork", original.run_id, "--at", "draft", "--state", "[1]", "--storage", url])
    assert code == 2 and "--state must be a JSON object" in capsys.readouterr().err
    code = main(
        [
            "runs",
            "fork",
            original.run_id,
            "--at",
            "nope",
            "--storage",
            url,
            "--workflow",
            f"{module}:workflow",
        ]
    )
    assert code == 1 and "its step ids: research, draft, polish, edit" in capsys.readouterr().err


def test_lineage_on_the_span_and_the_started_event(url: str) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from plait.tracing import ATTR

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    workflow = build(url)
    workflow.tracer_provider = provider
    original = workflow.run("otters")
    exporter.clear()
    events: list[Any] = []
    stream = workflow.fork(original.run_id, at="polish", stream=True, stream_events=True)
    for event in stream:
        events.append(event)
    started = [e for e in events if isinstance(e, WorkflowStartedEvent)]
    assert started and started[0].lineage == {"forked_from": original.run_id, "fork_step": "polish"}
    root = next(s for s in exporter.get_finished_spans() if s.name.startswith("invoke_workflow"))
    assert root.attributes[ATTR.FORK_OF] == original.run_id
    assert root.attributes[ATTR.FORK_STEP] == "polish"
    assert ATTR.REPLAY_OF == "plait.replay.of"
    plain = [
        e for e in workflow.run("x", stream=True, stream_events=True) if isinstance(e, WorkflowStartedEvent)
    ]
    assert plain[0].lineage is None


# -- exactly-once side effects -------------------------------------------------------


def test_idempotency_key_is_stable_across_retries_and_resumes_and_new_in_a_fork(url: str) -> None:
    keys: list[str] = []
    attempts = Counter[str]()

    def charge(step_input: StepInput, run_context: RunContext) -> str:
        keys.append(run_context.idempotency_key)
        attempts["charge"] += 1
        if attempts["charge"] == 1:
            raise ConnectionError("flaky")
        return "charged"

    from plait import Approval

    workflow = Workflow(
        name="Shop",
        steps=[Step(name="charge", executor=charge, max_retries=2), Approval(name="ok", prompt="Ship?")],
        storage=url,
    )
    paused = workflow.run("order-1")
    assert len(keys) == 2 and keys[0] == keys[1] and keys[0].startswith("plait-")
    other = workflow.run("order-2")
    assert keys[-1] != keys[0]
    forked = workflow.fork(paused.run_id, at="charge")
    assert keys[-1] not in (keys[0], keys[2]) and forked.lineage is not None

    seen: list[str] = []

    def crash_once(step_input: StepInput, run_context: RunContext) -> str:
        seen.append(run_context.idempotency_key)
        if len(seen) == 1:
            raise RuntimeError("crash")
        return "done"

    flaky = Workflow(name="Flaky", steps=[Step(name="crash_once", executor=crash_once)], storage=url)
    with pytest.raises(Exception, match="crash"):
        flaky.run("x", run_id="resume-me-" + other.run_id)
    flaky.continue_run("resume-me-" + other.run_id)
    assert seen[0] == seen[1]


def test_once_runs_the_side_effect_once_across_retries_with_types(url: str) -> None:
    effects: list[str] = []

    def send_invoice() -> Invoice:
        effects.append("sent")
        return Invoice(number=len(effects), due=dt.date(2026, 3, 4))

    tries = Counter[str]()

    def bill(step_input: StepInput, run_context: RunContext) -> str:
        invoice = run_context.once("send-invoice", send_invoice)
        assert isinstance(invoice, Invoice)
        tries["bill"] += 1
        if tries["bill"] < 3:
            raise TimeoutError("the ledger is slow")
        return f"invoice {invoice.number} due {invoice.due.isoformat()}"

    for storage in (url, None):
        effects.clear()
        tries.clear()
        workflow = Workflow(
            name="Billing", steps=[Step(name="bill", executor=bill, max_retries=3)], storage=storage
        )
        output = workflow.run("go")
        assert output.content == "invoice 1 due 2026-03-04", storage
        assert effects == ["sent"] and tries["bill"] == 3
        workflow.run("again")  # a new run: the effect runs again for it
        assert effects == ["sent", "sent"]


def test_aonce_and_concurrent_branches_with_one_key(url: str) -> None:
    effects: list[str] = []

    async def notify() -> tuple[int, str]:
        effects.append("notified")
        await asyncio.sleep(0.01)
        return (1, "ok")

    async def branch(step_input: StepInput, run_context: RunContext) -> str:
        result = await run_context.aonce("notify", notify)
        assert result == (1, "ok")
        return "sent"

    workflow = Workflow(
        name="Notify",
        steps=[Parallel(Step(name="a", executor=branch), Step(name="b", executor=branch), name="fan")],
        storage=url,
    )
    asyncio.run(workflow.arun("go"))
    asyncio.run(workflow.arun("go"))  # asyncio.run twice: a new run each time, its own record
    assert effects == ["notified", "notified"]


def test_once_errors_and_a_failing_effect_is_not_recorded(url: str) -> None:
    attempts: list[int] = []

    def flaky_effect() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("down")
        return "done"

    def step(step_input: StepInput, run_context: RunContext) -> str:
        return run_context.once("effect", flaky_effect)

    workflow = Workflow(name="w", steps=[Step(name="s", executor=step, max_retries=1)], storage=url)
    assert workflow.run("x").content == "done" and len(attempts) == 2

    def bad_key(step_input: StepInput, run_context: RunContext) -> str:
        return run_context.once("", lambda: "x")

    with pytest.raises(Exception, match=r"non-empty str key \(step 'bad_key'\)"):
        Workflow(name="w", steps=[bad_key]).run("x")

    async def coro() -> str:
        return "x"

    def sync_with_async_fn(step_input: StepInput, run_context: RunContext) -> Any:
        return run_context.once("k", coro)

    with pytest.raises(Exception, match="aonce"):
        Workflow(name="w", steps=[sync_with_async_fn]).run("x")

    def unstorable(step_input: StepInput, run_context: RunContext) -> Any:
        return run_context.once("k", lambda: object())

    with pytest.raises(Exception, match="cannot be stored"):
        Workflow(name="w", steps=[unstorable], storage=url).run("x")


def test_once_in_an_agent_tool_outside_a_workflow_just_calls() -> None:
    from plait import tool

    effects: list[str] = []

    @tool
    def book(run_context: RunContext) -> str:
        """Book it."""
        return run_context.once("book", lambda: effects.append("booked") or "booked")

    answers = iter([{"name": "book", "arguments": {}}, "done"])

    def model(messages: Any) -> Any:
        from plait.models import ToolCall

        nxt = next(answers)
        return (
            ToolCall(id="c1", name=nxt["name"], arguments=nxt["arguments"]) if isinstance(nxt, dict) else nxt
        )

    agent = Agent(name="Booker", model=FunctionModel(model), tools=[book])
    assert agent.run("book a table").content == "done" and effects == ["booked"]


def test_step_output_is_still_plain(url: str) -> None:
    # a fork's given output is a StepOutput whose fields the next steps read as usual
    def read(step_input: StepInput) -> str:
        previous = step_input.get_step_output("first")
        assert isinstance(previous, StepOutput)
        return f"saw {previous.content}"

    workflow = Workflow(name="w", steps=[count("first"), Step(name="read", executor=read)], storage=url)
    original = workflow.run("x")
    assert workflow.fork(original.run_id, at="first", output="given").content == "saw given"
