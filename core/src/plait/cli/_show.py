"""What ``plait runs list`` and ``plait runs show`` print for people: a table of runs with
short ids, readable at 80 columns, and a run's step tree."""

from __future__ import annotations

from typing import Any

from plait._io import normalize_status
from plait.cli._common import color, short_id

__all__ = ["lineage_line", "lineage_mark", "print_run", "print_runs"]


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


def print_run(record: Any, checkpoints: list[Any]) -> None:
    from rich.console import Console

    from plait._tree import record_tree

    Console().print(record_tree(record, checkpoints, color=color, subtitle=lineage_line(record)))


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
