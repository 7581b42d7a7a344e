"""A run as a live tree: nested workflows, containers and steps with status and timing."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text
from rich.tree import Tree

from plait.console import ICONS
from plait.events import (
    Event,
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

__all__ = ["RunTree"]

_MARKS = {
    "running": ("…", "yellow"),
    "done": ("✓", "green"),
    "failed": ("✗", "red"),
    "skipped": ("⤼", "yellow"),
    "paused": ("⏸", "yellow"),
    "cancelled": ("✗", "yellow"),
}


class RunTree:
    """One run's tree, redrawn in place on a terminal as its events arrive (printed once,
    when the run ends, elsewhere). :meth:`render` gives the tree as it stands."""

    def __init__(self, console: Console | None = None, *, live: bool = True) -> None:
        self.console = console or Console()
        self._nodes: dict[str, dict[str, Any]] = {}
        self._order: list[str] = []
        self._live: Any = None
        self._use_live = live

    def _add(self, key: str, label: str, parent: str | None) -> None:
        if key not in self._nodes:
            self._nodes[key] = {"label": label, "parent": parent, "status": "running", "info": ""}
            self._order.append(key)

    def _finish(self, key: str, status: str, info: str = "") -> None:
        node = self._nodes.get(key)
        if node is not None:
            node["status"] = status
            if info:
                node["info"] = info

    def handle(self, event: Event) -> None:
        workflow_key = f"workflow:{event.run_id}"
        if isinstance(event, WorkflowStartedEvent):
            # a nested workflow shows as the step that runs it
            if event.nested_depth == 0:
                self._add(workflow_key, f"◆ {event.workflow_name}", None)
                self._start()
        elif isinstance(event, StepStartedEvent) and event.step_id:
            parent = event.parent_step_id if event.parent_step_id in self._nodes else workflow_key
            self._add(event.step_id, f"{ICONS.get(event.step_type, '•')} {event.step_name}", parent)
        elif isinstance(event, StepCompletedEvent) and event.step_id:
            skipped = self._nodes.get(event.step_id, {}).get("status") == "skipped"
            status = "skipped" if skipped else "done" if event.success else "failed"
            self._finish(event.step_id, status, f"{event.duration:.2f}s")
        elif isinstance(event, StepErrorEvent) and event.step_id:
            self._finish(event.step_id, "failed")
        elif isinstance(event, StepSkippedEvent) and event.step_id:
            self._finish(event.step_id, "skipped")
        elif isinstance(event, StepPausedEvent) and event.step_id:
            self._finish(event.step_id, "paused")
        elif isinstance(event, (WorkflowPausedEvent, WorkflowCancelledEvent)) and event.nested_depth == 0:
            self._finish(workflow_key, "paused" if isinstance(event, WorkflowPausedEvent) else "cancelled")
            self._stop()
            return
        elif isinstance(event, (WorkflowCompletedEvent, WorkflowErrorEvent)):
            if isinstance(event, WorkflowCompletedEvent):
                self._finish(workflow_key, "done", f"{event.duration:.2f}s")
            else:
                self._finish(workflow_key, "failed")
            if event.nested_depth == 0:
                self._stop()
                return
        else:
            return
        if self._live is not None:
            self._live.update(self.render())

    def render(self) -> Tree:
        top = Tree("plait")
        branches: dict[str, Tree] = {}
        for key in self._order:
            node = self._nodes[key]
            mark, style = _MARKS[node["status"]]
            info = f"  {node['info']}" if node["info"] else ""
            label = Text.assemble((f"{mark} ", style), node["label"], (info, "dim"))
            branches[key] = branches.get(node["parent"], top).add(label)
        return top.children[0] if len(top.children) == 1 else top

    def _start(self) -> None:
        if self._use_live and self._live is None and self.console.is_terminal:
            from rich.live import Live

            self._live = Live(self.render(), console=self.console, refresh_per_second=8)
            self._live.start()

    def _stop(self) -> None:
        if self._live is not None:
            self._live.update(self.render())
            self._live.stop()
            self._live = None
        else:
            self.console.print(self.render())
