"""Comparing two stored runs step by step: :func:`diff_runs` and what it returns.

It reads the runs' records and checkpoints from a storage, so it works from the CLI and
for runs of workflow code that has changed since (no workflow object needed, no class
rebuilt: content is compared as the JSON it was stored as). Steps are matched by step id;
a step one run has and the other has not counts as a difference.
"""

from __future__ import annotations

import difflib
import json
import textwrap
from dataclasses import asdict, dataclass, field
from typing import Any

from plait._public import publish as _publish
from plait.errors import DefinitionError
from plait.storage import StepCheckpoint, Storage, read_checkpoints, resolve_storage

__all__ = ["RunDiff", "StepDiff", "adiff_runs", "diff_runs"]


@dataclass(slots=True)
class StepDiff:
    """One step of two runs. Each pair is (run A's, run B's); None where a run lacks the step."""

    step_id: str
    #: "COMPLETED", "FAILED" (failed as data), "SKIPPED", or None: no such step in that run
    status: tuple[str | None, str | None]
    #: the step's content as text (JSON for structured content)
    content: tuple[str | None, str | None]
    #: a unified diff of the content texts (empty when equal)
    content_diff: list[str] = field(default_factory=list)
    #: session-state keys whose value after the step differs: key -> (A's, B's); a key a
    #: run does not have is None there
    state_changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    tokens: tuple[int | None, int | None] = (None, None)
    cost: tuple[float | None, float | None] = (None, None)
    duration: tuple[float | None, float | None] = (None, None)

    @property
    def differs(self) -> bool:
        """Whether the step's status, content or session state differ (tokens, cost and
        duration are reported, not counted: a live step never takes the same time twice)."""
        return self.status[0] != self.status[1] or bool(self.content_diff) or bool(self.state_changes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["differs"] = self.differs
        return data


@dataclass(slots=True)
class RunDiff:
    """Two runs compared: their statuses, each step (in run A's order, then B's extra
    steps), and the first step where they diverge (None: the same steps with the same results)."""

    run_a: str
    run_b: str
    status: tuple[str, str]
    lineage: tuple[dict[str, str] | None, dict[str, str] | None]
    steps: list[StepDiff]
    first_divergence: str | None
    content_diff: list[str] = field(default_factory=list)

    @property
    def differs(self) -> bool:
        return (
            self.first_divergence is not None or bool(self.content_diff) or self.status[0] != self.status[1]
        )

    def step(self, step_id: str) -> StepDiff:
        for step in self.steps:
            if step.step_id == step_id:
                return step
        raise KeyError(
            f"no step {step_id!r} in either run; steps: {', '.join(s.step_id for s in self.steps)}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_a": self.run_a,
            "run_b": self.run_b,
            "status": list(self.status),
            "lineage": list(self.lineage),
            "first_divergence": self.first_divergence,
            "differs": self.differs,
            "content_diff": self.content_diff,
            "steps": [step.to_dict() for step in self.steps],
        }

    def format(self, width: int = 80) -> str:
        """The comparison as text no wider than ``width`` columns (``plait runs diff``)."""
        lines = [f"A {self.run_a}  {self.status[0]}", f"B {self.run_b}  {self.status[1]}"]
        for name, lineage in zip("AB", self.lineage, strict=True):
            if lineage:
                lines.append(f"{name} {_lineage_text(lineage)}")
        lines.append(
            f"first divergence: {self.first_divergence}" if self.first_divergence else "no divergence"
        )
        for step in self.steps:
            mark = "≠" if step.differs else "="
            status = (
                step.status[0]
                if step.status[0] == step.status[1]
                else f"{step.status[0]} -> {step.status[1]}"
            )
            lines.append(f"{mark} {step.step_id}  {status}")
            extras = []
            for label, pair, fmt in (
                ("tokens", step.tokens, "{}"),
                ("cost", step.cost, "{:.4f}"),
                ("duration", step.duration, "{:.3f}s"),
            ):
                if pair[0] is not None or pair[1] is not None:
                    a, b = (("-" if v is None else fmt.format(v)) for v in pair)
                    if label != "duration" and a == b:
                        continue
                    extras.append(f"{label} {a} -> {b}" if a != b else f"{label} {a}")
            if extras:
                lines.append("    " + ", ".join(extras))
            for key, (a, b) in step.state_changes.items():
                lines.append(f"    state {key}: {_short(a)} -> {_short(b)}")
            lines.extend(f"    {line}" for line in step.content_diff)
        return "\n".join(_fit(line, width) for line in lines)


def _lineage_text(lineage: dict[str, str]) -> str:
    if lineage.get("forked_from"):
        return f"forked from {lineage['forked_from']} at {lineage.get('fork_step')}"
    if lineage.get("replay_of"):
        return f"replay of {lineage['replay_of']}"
    return json.dumps(lineage)


def _short(value: Any) -> str:
    return "-" if value is None else json.dumps(value, default=str)


def _fit(line: str, width: int) -> str:
    if len(line) <= width:
        return line
    return textwrap.shorten(line, width, placeholder="…") if " " in line else line[: width - 1] + "…"


def _text(content: Any) -> str:
    return content if isinstance(content, str) else json.dumps(content, indent=2, sort_keys=True, default=str)


def _status(output: dict[str, Any]) -> str:
    if output.get("skipped"):
        return "SKIPPED"
    return "COMPLETED" if output.get("success", True) else "FAILED"


def _metric(output: dict[str, Any] | None, name: str) -> Any:
    metrics = (output or {}).get("metrics") or {}
    if name == "tokens":
        if not metrics:
            return None
        return int(metrics.get("input_tokens") or 0) + int(metrics.get("output_tokens") or 0)
    return metrics.get(name)


def _text_diff(a: str | None, b: str | None, name_a: str, name_b: str) -> list[str]:
    if a == b:
        return []
    return list(
        difflib.unified_diff(
            (a or "").splitlines(), (b or "").splitlines(), f"A {name_a}", f"B {name_b}", lineterm="", n=1
        )
    )


def _compare(step_id: str, a: StepCheckpoint | None, b: StepCheckpoint | None) -> StepDiff:
    out_a = None if a is None else a.output
    out_b = None if b is None else b.output
    text_a = None if out_a is None else _text(out_a.get("content"))
    text_b = None if out_b is None else _text(out_b.get("content"))
    state_a = {} if a is None else a.state
    state_b = {} if b is None else b.state
    changes = {
        key: (state_a.get(key), state_b.get(key))
        for key in [*state_a, *(k for k in state_b if k not in state_a)]
        if (a is not None and b is not None) and state_a.get(key, _NONE) != state_b.get(key, _NONE)
    }
    return StepDiff(
        step_id=step_id,
        status=(None if out_a is None else _status(out_a), None if out_b is None else _status(out_b)),
        content=(text_a, text_b),
        content_diff=_text_diff(text_a, text_b, step_id, step_id) if a is not None and b is not None else [],
        state_changes=changes,
        tokens=(_metric(out_a, "tokens"), _metric(out_b, "tokens")),
        cost=(_metric(out_a, "cost"), _metric(out_b, "cost")),
        duration=(_metric(out_a, "duration"), _metric(out_b, "duration")),
    )


_NONE: Any = object()


async def adiff_runs(run_a: str, run_b: str, *, storage: Storage | str) -> RunDiff:
    """``await plait.adiff_runs(...)``: :func:`diff_runs` from async code."""
    backend = resolve_storage(storage)
    if backend is None:
        raise DefinitionError("diff_runs needs storage= (a Storage or a URL such as 'sqlite:///runs.db')")
    await backend.setup()
    records = []
    for run_id in (run_a, run_b):
        record = await backend.get_run(run_id)
        if record is None:
            raise DefinitionError(f"diff_runs: no run {run_id!r} in {backend!r}")
        records.append(record)
    points_a = {c.step_id: c for c in await read_checkpoints(backend, run_a)}
    points_b = {c.step_id: c for c in await read_checkpoints(backend, run_b)}
    order = [*points_a, *(step_id for step_id in points_b if step_id not in points_a)]
    steps = [_compare(step_id, points_a.get(step_id), points_b.get(step_id)) for step_id in order]
    first = next((step.step_id for step in steps if step.differs), None)
    text_a, text_b = (None if r.content is None else _text(r.content) for r in records)
    return RunDiff(
        run_a=run_a,
        run_b=run_b,
        status=(records[0].status, records[1].status),
        lineage=(records[0].lineage, records[1].lineage),
        steps=steps,
        first_divergence=first,
        content_diff=_text_diff(text_a, text_b, "output", "output"),
    )


def diff_runs(run_a: str, run_b: str, *, storage: Storage | str) -> RunDiff:
    """Compare stored runs ``run_a`` and ``run_b`` step by step (a fork with its original,
    two forks, two runs of one workflow): per step its status, content (a text diff),
    session state after it, tokens, cost and duration, and the first step where the two
    diverge. ``storage`` is the workflow's storage (object or URL).

    A function over a storage rather than a method of Workflow: the runs may be of
    workflow code that has changed since, and ``plait runs diff`` has only the storage.
    """
    from plait._sync import run_sync

    return run_sync(adiff_runs(run_a, run_b, storage=storage))


# Last: the names plait exports report ``plait`` as their home (plait._public).
_publish(__name__, globals())
