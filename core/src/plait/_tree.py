"""A run's steps as a tree: the model both console views share, and its drawing.

:class:`RunModel` follows a run's events into nodes (the workflow, its containers,
loop iterations under their loop, steps) with their status and timing. The live
tree (``sinks=["tree"]``, ``plait run --tree``) draws it whole; the outline of
``print_response`` prints what finished and keeps what is still running (with a
spinner, its elapsed time and the text it streams) in :class:`LiveArea`, the one live
display both use. A stored run is drawn with the same marks by :mod:`plait.cli._stored`.
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
    "ITERATION",
    "MARKS",
    "LiveArea",
    "Node",
    "RunModel",
    "RunTree",
    "parent_of",
    "rate_wait_text",
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

#: a loop iteration's step id, ``name[2]``
ITERATION = re.compile(r"^(.*)\[(\d+)\]$")


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
    match = ITERATION.match(last)
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
