"""A run's steps as a tree: the model both console views share, and its drawing.

:class:`RunModel` follows a run's events into nodes (the workflow, its containers,
loop iterations under their loop, steps) with their status and timing. The live
tree (``sinks=["tree"]``, ``plait run --tree``) draws it whole; the outline of
``print_response`` prints what finished and keeps what is still running (with a
spinner, its elapsed time and the text it streams) in :class:`LiveArea`, the one live
display both use. :func:`record_tree` draws a stored run (``plait runs show``) the same way.
"""

from __future__ import annotations

import re
import time
from typing import Any

from rich.console import Console, RenderableType
from rich.spinner import Spinner
from rich.text import Text
from rich.tree import Tree

from plait.events import (
    Event,
    LoopIterationCompletedEvent,
    LoopIterationStartedEvent,
    RateLimitWaitEvent,
    RunContentEvent,
    StepCompletedEvent,
    StepErrorEvent,
    StepPausedEvent,
    StepSkippedEvent,
    StepStartedEvent,
    WorkflowCancelledEvent,
    WorkflowCompletedEvent,
    WorkflowErrorEvent,
    WorkflowPausedEvent,
    WorkflowStartedEvent,
)

__all__ = [
    "ICONS",
    "MARKS",
    "LiveArea",
    "Node",
    "RunModel",
    "RunTree",
    "parent_of",
    "rate_wait_text",
    "record_tree",
]

ICONS = {
    "Step": "•",
    "Steps": "☰",
    "Parallel": "⫘",
    "Condition": "?",
    "Loop": "↻",
    "Router": "⤳",
    "Workflow": "◆",
    "Iteration": "↻",
}

#: the mark and style of each status (a running node shows a spinner instead)
MARKS = {
    "running": ("…", "yellow"),
    "done": ("✓", "green"),
    "cached": ("✓", "cyan"),
    "restored": ("✓", "cyan"),
    "failed": ("✗", "red"),
    "skipped": ("⤼", "yellow"),
    "paused": ("⏸", "yellow"),
    "cancelled": ("⊘", "yellow"),
    "unfinished": ("…", "yellow"),
}

_ITERATION = re.compile(r"^(.*)\[(\d+)\]$")


def rate_wait_text(event: RateLimitWaitEvent) -> str:
    """What a rate-limit wait says (the outline's line, the running node's note):
    ``waiting 2.1s for openai requests_per_minute=5``, or for a concurrency slot
    ``waiting for a free openai slot (max_concurrent=4)``; ``shared`` when other processes count too."""
    maximum = f"{event.maximum:g}"
    shared = ", shared" if event.shared else ""
    if event.seconds is None:
        return f"waiting for a free {event.key} slot ({event.limit}={maximum}{shared})"
    return f"waiting {event.seconds:.1f}s for {event.key} {event.limit}={maximum}" + (
        " (shared)" if event.shared else ""
    )


def parent_of(step_id: str) -> str:
    """The id of a step's parent: ``"a/b"`` -> ``"a"``; a loop iteration's is its loop
    (``"refine[2]"`` -> ``"refine"``), so iterations nest under their loop; "" at the top."""
    head, _, last = step_id.rpartition("/")
    match = _ITERATION.match(last)
    if match is not None:
        return f"{head}/{match.group(1)}" if head else match.group(1)
    return head


class Node:
    """One node of the tree: a workflow, container, loop iteration or step."""

    __slots__ = (
        "children",
        "error",
        "info",
        "key",
        "kind",
        "label",
        "parent",
        "started",
        "status",
        "text",
        "waiting",
        "waiting_until",
    )

    def __init__(self, key: str, label: str, kind: str, parent: Node | None) -> None:
        self.key = key
        self.label = label
        self.kind = kind
        self.parent = parent
        self.status = "running"
        self.started = time.monotonic()
        self.info = ""
        self.error = ""
        self.text: list[str] | None = None  # streamed text, when it streams
        #: a rate-limit wait in progress (rate_wait_text), shown until ``waiting_until``
        self.waiting = ""
        self.waiting_until = 0.0
        self.children: list[Node] = []
        if parent is not None:
            parent.children.append(self)

    def elapsed(self) -> float:
        return time.monotonic() - self.started


class RunModel:
    """The nodes of one run, kept up to date by :meth:`handle` (cheap: a dict lookup and
    a few assignments per event; drawing happens only when a display asks)."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.root: Node | None = None

    def running(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.status == "running" and n is not self.root]

    def _add(self, key: str, label: str, kind: str, parent_key: str | None) -> Node:
        node = self.nodes.get(key)
        if node is None:
            parent = self.nodes.get(parent_key) if parent_key else None
            if parent is None and parent_key:
                parent = self.nodes.get(parent_of(parent_key)) or self.root
            node = self.nodes[key] = Node(key, label, kind, parent or self.root)
        return node

    def _end_running(self, status: str) -> None:
        for node in self.nodes.values():
            if node.status == "running":
                node.status = status
                node.info = f"{node.elapsed():.2f}s"

    def handle(self, event: Event) -> Node | None:
        """Apply one event; the node it concerns, or None."""
        key = event.step_id
        if isinstance(event, RunContentEvent):
            node = self.nodes.get(key or "")
            if node is not None and isinstance(event.content, str):
                if node.text is None:
                    node.text = []
                node.text.append(event.content)
                node.waiting = ""  # the answer is arriving: no longer waiting
            return node
        if isinstance(event, WorkflowStartedEvent):
            if event.nested_depth == 0 and self.root is None:  # a nested one is the step that runs it
                self.root = Node("", f"◆ {event.workflow_name}", "Workflow", None)
                self.nodes[""] = self.root
            return self.root
        if isinstance(event, StepStartedEvent) and key:
            node = self._add(
                key, f"{ICONS.get(event.step_type, '•')} {event.step_name}", event.step_type, parent_of(key)
            )
            node.status = "running"
            return node
        if isinstance(event, LoopIterationStartedEvent) and key:
            label = f"↻ iteration {event.iteration}/{event.max_iterations}"
            return self._add(key, label, "Iteration", event.parent_step_id or parent_of(key))
        node = self.nodes.get(key) if key else None
        if isinstance(event, RateLimitWaitEvent):
            node = node or self.root  # an agent run on its own is the root
            if node is not None:
                node.waiting = rate_wait_text(event)
                seconds = event.seconds
                node.waiting_until = time.monotonic() + (seconds if seconds is not None else 3600.0)
        elif isinstance(event, LoopIterationCompletedEvent):
            if node is not None and node.status == "running":
                node.status = "done"
        elif isinstance(event, StepCompletedEvent):
            if node is not None:
                if event.cached:
                    node.status = "cached"
                elif event.restored:
                    node.status = "restored"
                elif node.status != "skipped":
                    node.status = "done" if event.success else "failed"
                node.info = f"{event.duration:.2f}s"
                if event.metadata:
                    facts = [f"{k}={v}" for k, v in event.metadata.items() if k != "cache_hit"]
                    if facts:
                        node.info += "  " + ", ".join(facts)
        elif isinstance(event, StepErrorEvent):
            if node is not None:
                node.status = "failed"
                node.error = f"{event.error_type}: {event.error}" if event.error_type else event.error
        elif isinstance(event, StepSkippedEvent):
            if node is not None:
                node.status = "skipped"
                node.error = event.error
        elif isinstance(event, StepPausedEvent):
            if node is not None:
                node.status = "paused"
                node.error = event.prompt
        elif isinstance(event, WorkflowPausedEvent) and event.nested_depth == 0:
            self._end_running("paused")  # the containers of a paused step wait with it
            return self.root
        elif isinstance(event, WorkflowCancelledEvent) and event.nested_depth == 0:
            self._end_running("cancelled")
            return self.root
        elif isinstance(event, WorkflowErrorEvent) and event.nested_depth == 0:
            self._end_running("failed")
            if self.root is not None:
                self.root.error = event.error
            return self.root
        elif isinstance(event, WorkflowCompletedEvent) and event.nested_depth == 0:
            if self.root is not None:
                self.root.status = "done"
                self.root.info = f"{event.duration:.2f}s"
            return self.root
        return node


def mark(node: Node, spinner: Spinner | None = None, now: float | None = None) -> Text:
    """A node's label with its mark, timing and error: a running node shows ``spinner``'s
    frame (when given) and its elapsed time."""
    if node.status == "running":
        frame: Any = spinner.render(now or time.monotonic()) if spinner is not None else Text("…")
        head = frame if isinstance(frame, Text) else Text(str(frame))
        head.stylize("yellow")
        text = Text.assemble(head, " ", node.label, (f"  {node.elapsed():.1f}s", "dim"))
        if node.waiting and (now or time.monotonic()) < node.waiting_until:
            text.append(f"  ⧗ {node.waiting}", "yellow")
        return text
    symbol, style = MARKS[node.status]
    parts: list[Any] = [(f"{symbol} ", style), node.label]
    if node.info:
        parts.append((f"  {node.info}", "dim"))
    if node.status in ("cached", "restored", "skipped", "paused", "cancelled"):
        parts.append((f"  {node.status}", style))
    if node.error:
        parts.append((f"  {node.error}", style))
    return Text.assemble(*parts)


def draw(model: RunModel, spinner: Spinner | None = None) -> RenderableType:
    """The model as a rich Tree (the workflow at its root)."""
    now = time.monotonic()
    root = model.root
    top = Tree(mark(root, spinner, now) if root is not None else Text("plait"))

    def add(branch: Tree, node: Node) -> None:
        for child in node.children:
            add(branch.add(mark(child, spinner, now)), child)

    if root is not None:
        add(top, root)
    return top


class LiveArea:
    """The bottom of a terminal, redrawn in place (rich's Live) from ``render()`` at each
    refresh (8 a second): events only change state, so an event costs no drawing. Only
    on a terminal; elsewhere :attr:`active` stays False and nothing is drawn live."""

    def __init__(self, console: Console, render: Any, *, transient: bool) -> None:
        self.console = console
        self._render = render
        self._transient = transient
        self._live: Any = None

    @property
    def active(self) -> bool:
        return self._live is not None

    def __rich__(self) -> RenderableType:
        return self._render()  # type: ignore[no-any-return]

    def start(self) -> None:
        if self._live is None and self.console.is_terminal:
            from rich.live import Live

            self._live = Live(
                self,
                console=self.console,
                refresh_per_second=8,
                transient=self._transient,
                redirect_stdout=False,
            )
            self._live.start()

    def refresh(self) -> None:
        if self._live is not None:
            self._live.refresh()

    def stop(self) -> None:
        if self._live is not None:
            live, self._live = self._live, None
            live.stop()


class RunTree:
    """One run's tree, redrawn in place on a terminal as its events arrive (printed once,
    when the run ends, elsewhere). :meth:`render` gives the tree as it stands."""

    def __init__(self, console: Console | None = None, *, live: bool = True) -> None:
        self.console = console or Console()
        self.model = RunModel()
        self._spinner = Spinner("dots", style="yellow")
        self._area = LiveArea(self.console, self.render, transient=False)
        self._use_live = live

    def handle(self, event: Event) -> None:
        model = self.model
        model.handle(event)
        if event.nested_depth:
            return
        if isinstance(event, WorkflowStartedEvent):
            if self._use_live:
                self._area.start()
        elif isinstance(
            event, (WorkflowCompletedEvent, WorkflowErrorEvent, WorkflowPausedEvent, WorkflowCancelledEvent)
        ):
            self._stop()

    def render(self) -> RenderableType:
        return draw(self.model, self._spinner if self._area.active else None)

    def _stop(self) -> None:
        if self._area.active:
            self._area.refresh()
            self._area.stop()
        else:
            self.console.print(self.render())


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
        match = _ITERATION.match(last)
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
        if step_id and parent_of(step_id) in loops and _ITERATION.match(step_id.rpartition("/")[2]):
            number = _ITERATION.match(step_id.rpartition("/")[2]).group(2)  # type: ignore[union-attr]
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
