"""A stored run drawn for ``plait runs show``: its tree of checkpointed steps
(:func:`record_tree`, with the live tree's marks from :mod:`plait._tree`) and one step's
detail (:func:`step_detail`)."""

from __future__ import annotations

import re
from typing import Any

from rich.console import RenderableType
from rich.text import Text
from rich.tree import Tree

from plait._tree import ITERATION, MARKS, parent_of

__all__ = ["find_step", "record_tree", "step_detail"]


def record_tree(record: Any, checkpoints: list[Any], *, color: Any = None, subtitle: str = "") -> Tree:
    """A stored run as a tree (``plait runs show``): its checkpointed steps with status,
    duration and tokens; loop iterations under their loop; containers without a
    checkpoint yet marked by the run's state (paused, running, failed, unfinished); the
    steps it waits at as paused nodes. ``subtitle`` follows the title (a fork's lineage)."""
    style = color or (lambda status: MARKS.get(status, ("", "white"))[1])
    user = f"  user {record.user_id}" if record.user_id else ""
    tree = Tree(
        Text.assemble(
            (record.workflow_name, "bold"),
            f"  run {record.run_id}{user}  ",
            (record.status, style(record.status)),
            subtitle,
        )
    )
    status = str(record.status).lower()
    open_status = {"paused": "paused", "running": "running", "cancelled": "cancelled"}.get(
        status, "failed" if status in ("error", "failed") else "unfinished"
    )
    nodes: dict[str, Tree] = {"": tree}

    def open_label(step_id: str) -> Text:
        last = step_id.rpartition("/")[2]
        match = ITERATION.match(last)
        name = f"↻ iteration {match.group(2)}" if match else last
        symbol, mark_style = MARKS[open_status]
        return Text.assemble((f"{symbol} ", mark_style), name, (f"  {open_status}", mark_style))

    def node_for(step_id: str) -> Tree:
        """The tree node of a step, adding containers without a checkpoint on the way."""
        if step_id not in nodes:
            nodes[step_id] = node_for(parent_of(step_id)).add(open_label(step_id))
        return nodes[step_id]

    def depth(step_id: str) -> int:
        n = 0
        while step_id:
            step_id = parent_of(step_id)
            n += 1
        return n

    loops: set[str] = set()
    done_ids = {c.step_id for c in checkpoints}
    for checkpoint in sorted(checkpoints, key=lambda c: depth(c.step_id)):
        output = checkpoint.output
        metrics = output.get("metrics") or {}
        step_status = (
            "skipped" if output.get("skipped") else "done" if output.get("success", True) else "failed"
        )
        tokens = metrics.get("input_tokens", 0) + metrics.get("output_tokens", 0)
        symbol, mark_style = MARKS[step_status]
        step_type = output.get("step_type") or ""
        parts: list[Any] = [
            (f"{symbol} ", mark_style),
            checkpoint.step_id.rpartition("/")[2],
            (f"  {step_type}", "dim"),
            (f"  {metrics.get('duration', 0.0):.2f}s", "dim"),
        ]
        if tokens:
            parts.append((f"  {tokens} tokens", "dim"))
        if step_status != "done":
            parts.append((f"  {step_status}", mark_style))
        if step_type == "Loop":
            loops.add(checkpoint.step_id)
        parent = parent_of(checkpoint.step_id)
        if checkpoint.step_id in nodes:  # drawn open before its own checkpoint: relabel it
            nodes[checkpoint.step_id].label = Text.assemble(*parts)
            continue
        nodes[checkpoint.step_id] = node_for(parent).add(Text.assemble(*parts))
    for step_id, branch in nodes.items():  # the iterations of a finished loop finished too
        if step_id and parent_of(step_id) in loops and ITERATION.match(step_id.rpartition("/")[2]):
            number = ITERATION.match(step_id.rpartition("/")[2]).group(2)  # type: ignore[union-attr]
            branch.label = Text.assemble(("✓ ", "green"), f"↻ iteration {number}")
    for request in (record.pause or {}).get("pending", []):
        step_id = request.get("step_id") or ""
        label = Text.assemble(
            ("⏸ ", "yellow"),
            step_id.rpartition("/")[2],
            (f"  waiting at {step_id}: {request.get('prompt', '')}", "yellow"),
        )
        if step_id in nodes:
            nodes[step_id].label = label
        else:
            nodes[step_id] = node_for(parent_of(step_id)).add(label)
    if record.error:
        failed = _FAILED_STEP.search(str(record.error))
        if failed is not None and not any(k.rpartition("/")[2] == failed.group(1) for k in nodes if k):
            # the step that failed has no checkpoint: draw it where the run stopped, in the
            # deepest container left open (a run stops at its first failure)
            open_ids = [k for k in nodes if k and k not in done_ids and parent_of(k) not in loops]
            where = max(open_ids, key=depth) if open_ids else ""
            nodes[where].add(Text.assemble(("✗ ", "red"), failed.group(1), (f"  {failed.group(2)}", "red")))
        else:
            tree.add(Text.assemble(("✗ ", "red"), (str(record.error), "red")))
    return tree


_FAILED_STEP = re.compile(r"Step '([^']+)' failed: (.*)", re.S)


def find_step(checkpoints: list[Any], step_id: str) -> Any:
    """The checkpoint of ``step_id``: its exact id, else the one step whose id ends with
    it (``edit`` for ``refine[2]/edit`` when only one matches); a LookupError naming the
    candidates otherwise."""
    exact = [c for c in checkpoints if c.step_id == step_id]
    if exact:
        return exact[0]
    matches = [c for c in checkpoints if c.step_id.endswith("/" + step_id)]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(c.step_id for c in (matches or checkpoints)) or "none"
    what = "is ambiguous; it may be" if matches else "has no checkpoint in this run; the steps are"
    raise LookupError(f"step {step_id!r} {what}: {known}")


def _within(step_id: str, ancestor: str) -> bool:
    while step_id:
        step_id = parent_of(step_id)
        if step_id == ancestor:
            return True
    return False


def step_detail(record: Any, checkpoints: list[Any], step_id: str) -> RenderableType:
    """One stored step (``plait runs show RUN --step ID``): what it received (the run's
    input and the content of the checkpoint stored just before it, the previous step's),
    its output and metrics, and the session-state keys it changed since that checkpoint
    (the whole state after it for the first step)."""
    from rich.pretty import Pretty
    from rich.table import Table

    from plait._io import format_content

    ordered = sorted(checkpoints, key=lambda c: c.created_at)
    checkpoint = find_step(ordered, step_id)
    index = ordered.index(checkpoint)
    earlier = [c for c in ordered[:index] if not _within(c.step_id, checkpoint.step_id)]
    previous = earlier[-1].output.get("content") if earlier else None
    output = checkpoint.output
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    kind = ", ".join(str(v) for v in (output.get("step_type"), output.get("executor_name")) if v)
    table.add_row("step", f"{checkpoint.step_id}  ({kind})")
    table.add_row("run input", Pretty(record.input))
    table.add_row(
        "previous content", Text(format_content(previous)) if earlier else Text("(none: the first step)")
    )
    table.add_row("output", Text(format_content(output.get("content"))))
    if output.get("error"):
        table.add_row("error", Text(str(output["error"]), style="red"))
    table.add_row(
        "metrics", Pretty({k: v for k, v in (output.get("metrics") or {}).items() if v is not None})
    )
    after = checkpoint.state or {}
    if not earlier:  # what the state was before the first step is not stored: show it after
        table.add_row("state after", Pretty(after))
        return table
    before_state = earlier[-1].state or {}
    changed = {k: v for k, v in after.items() if k not in before_state or before_state[k] != v}
    removed = [k for k in before_state if k not in after]
    if changed or removed:
        change: dict[str, Any] = dict(changed)
        change.update({k: "(removed)" for k in removed})
        table.add_row("state change", Pretty(change))
    else:
        table.add_row("state change", Text("(none)", style="dim"))
    return table
