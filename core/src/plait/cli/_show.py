"""What ``plait runs list`` and ``plait runs show`` print for people: a table of runs with
short ids, readable at 80 columns, and a run's step tree."""

from __future__ import annotations

from typing import Any

from plait._io import normalize_status
from plait.cli._common import color, short_id

__all__ = ["budget_lines", "lineage_line", "lineage_mark", "policy_lines", "print_run", "print_runs"]

#: how many lines of one kind of policy event ``plait runs show`` prints before summing up the rest
POLICY_LINES = 10


async def print_runs(records: list[Any], where: str, storage: Any) -> None:
    """``plait runs list``: short ids, readable at 80 columns (the id, status and times never
    wrap; the workflow's name does); a user column only when a run has a user."""
    from datetime import datetime

    from rich.console import Console
    from rich.table import Table

    users = any(r.user_id for r in records)
    table = Table(title=f"runs in {where}", title_justify="left")
    table.add_column("id", no_wrap=True)
    table.add_column("workflow", ratio=1, overflow="fold")
    if users:
        table.add_column("user", max_width=12, overflow="ellipsis")
    table.add_column("status", no_wrap=True)
    table.add_column("started", no_wrap=True)
    table.add_column("took", no_wrap=True, justify="right")
    table.add_column("tokens", no_wrap=True, justify="right")
    today = datetime.now().date()
    for r in records:
        created = datetime.fromtimestamp(r.created_at)
        started = created.strftime("%H:%M:%S" if created.date() == today else "%Y-%m-%d")
        duration = f"{r.metrics['duration']:.1f}s" if "duration" in (r.metrics or {}) else ""
        used = await _tokens(r, storage)
        name = r.workflow_name + (f"\n({lineage_mark(r.lineage)})" if r.lineage else "")  # a fork, a replay
        row = [short_id(r.run_id), name, *([r.user_id or ""] if users else []), normalize_status(r.status)]
        table.add_row(*row, started, duration, "" if used is None else str(used))
    Console().print(table)


async def _tokens(record: Any, storage: Any) -> int | None:
    """The tokens a run used: its metrics once it finished; for a run that did not (paused,
    failed, cancelled, running), those of its checkpointed steps, as ``plait runs show`` counts."""
    metrics = record.metrics or {}
    total = metrics.get("input_tokens", 0) + metrics.get("output_tokens", 0)
    if total or normalize_status(record.status) in ("COMPLETED", "COMPLETED_WITH_ERRORS"):
        return total if metrics else None
    checkpoints = await storage.load_checkpoints(record.run_id)
    ids = {c.step_id for c in checkpoints}

    def outermost(step_id: str) -> bool:  # a container's metrics already hold its steps'
        while "/" in step_id:
            step_id = step_id.rpartition("/")[0]
            if step_id in ids:
                return False
        return True

    used = 0
    for checkpoint in checkpoints:
        if outermost(checkpoint.step_id):
            step_metrics = checkpoint.output.get("metrics") or {}
            used += step_metrics.get("input_tokens", 0) + step_metrics.get("output_tokens", 0)
    return used if used or metrics else None


def print_run(record: Any, checkpoints: list[Any], events: list[dict[str, Any]] | None = None) -> None:
    """``plait runs show``: the step tree, then the budgets in force with what is left, and the
    model retries, fallbacks, rate-limit waits and budget warnings the stored events record."""
    from rich.console import Console

    from plait.cli._stored import record_tree

    console = Console()
    console.print(record_tree(record, checkpoints, color=color, subtitle=lineage_line(record)))
    for line in [*budget_lines(record), *policy_lines(events or [])]:
        console.print(line, highlight=False, markup=False)


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def budget_lines(record: Any) -> list[str]:
    """One line per budget the run counted against (``metrics["budget"]``, plait._budget_pause):
    ``budget of workflow 'W' (pauses): max_requests 2 of 3 used, 1 left``."""
    lines = []
    for key, meter in ((record.metrics or {}).get("budget") or {}).items():
        budget = dict(meter.get("budget") or {})
        soft, mode = budget.pop("soft", False), budget.pop("on_exceeded", "fail")
        used, left = meter.get("used") or {}, meter.get("left") or {}
        step = key.partition("#")[0]
        notes = [n for n in ("soft" if soft else "", "pauses" if mode == "pause" else "") if n]
        if meter.get("raised"):
            notes.append("raised by a person")
        limits = ", ".join(
            f"{name} {_number(used.get(name, 0))} of {_number(limit)} used, {_number(left.get(name, limit))} left"
            for name, limit in budget.items()
        )
        where = f" in {step}" if step and step.rpartition("/")[2] not in meter.get("owner", "") else ""
        lines.append(
            f"budget of {meter.get('owner', key)}{where}"
            + (f" ({', '.join(notes)})" if notes else "")
            + f": {limits}"
        )
    return lines


def policy_lines(events: list[dict[str, Any]]) -> list[str]:
    """The provider policy at work in a run's stored events (``Workflow(store_events=True)``):
    model retries, fallbacks, rate-limit waits and budget warnings, each at its step."""
    lines: list[str] = []
    counts: dict[str, int] = {}
    for event in events:
        kind = event.get("event")
        if kind not in _POLICY:
            continue
        counts[kind] = counts.get(kind, 0) + 1
        if counts[kind] <= POLICY_LINES:
            where = event.get("step_id") or event.get("agent_name") or "the run"
            lines.append(f"{_POLICY[kind]} at {where}: {_policy_text(kind, event)}")
    for kind, count in counts.items():
        if count > POLICY_LINES:
            lines.append(f"{_POLICY[kind]}: {count - POLICY_LINES} more")
    return lines


_POLICY = {
    "ModelRetry": "model retry",
    "ModelFallback": "fallback",
    "RateLimitWait": "rate-limit wait",
    "BudgetWarning": "budget warning",
}


def _policy_text(kind: str, event: dict[str, Any]) -> str:
    if kind == "ModelRetry":
        return f"attempt {event.get('attempt')} failed, retried after {event.get('delay', 0):.1f}s: {event.get('error')}"
    if kind == "ModelFallback":
        return (
            f"{event.get('failed_model')} failed ({event.get('error_type')}: {event.get('error')}), "
            f"passed on to {event.get('next_model')}"
        )
    if kind == "RateLimitWait":
        seconds = event.get("seconds")
        wait = "for a free slot" if seconds is None else f"{seconds:.1f}s"
        shared = ", shared" if event.get("shared") else ""
        return f"waited {wait} for {event.get('key')} {event.get('limit')}={_number(event.get('maximum'))}{shared}"
    return str(event.get("message") or "")


def lineage_mark(lineage: dict[str, str] | None) -> str:
    """A run's origin in one short cell: ``fork of RUN@STEP``, ``replay of RUN``."""
    if not lineage:
        return ""
    if lineage.get("forked_from"):
        return f"fork of {lineage['forked_from'][:8]} at {lineage.get('fork_step', '')}"
    if lineage.get("replay_of"):
        return f"replay of {lineage['replay_of'][:8]}"
    return ", ".join(f"{k} {v}" for k, v in lineage.items())


def lineage_line(record: Any) -> str:
    """``plait runs show``'s lineage: the original run (and fork step) of a fork or replay."""
    lineage = record.lineage
    if not lineage:
        return ""
    parts = []
    if lineage.get("replay_of"):
        parts.append(f"replay_of {lineage['replay_of']}")
    if lineage.get("forked_from"):
        parts.append(f"forked_from {lineage['forked_from']}")
    if lineage.get("fork_step"):
        parts.append(f"fork_step {lineage['fork_step']}")
    return "\n" + "  ".join(parts)
