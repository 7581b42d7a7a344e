"""Console output for people: ``print_response`` and the ``plait run`` command.

:class:`ConsoleRenderer` turns the event stream into an indented outline of the
run (nested workflows one level deeper, containers and steps with their timing,
retries, fallbacks, waits for a rate limit, tool calls and a preview of each step's
content), and prints the final answer in a panel, as Markdown when asked.

On a terminal (``live=True``, as ``print_response(stream=True)`` and ``plait run``
use it), what is still running stays at the bottom of the screen, redrawn in place:
each running step with a spinner and its elapsed time, and the text an agent streams
in a panel that grows as tokens arrive (rendered as Markdown with ``markdown=True``).
Elsewhere (a pipe, CI) the same outline is printed as plain lines, without control codes.
"""

from __future__ import annotations

import re
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.markdown import Markdown
from rich.panel import Panel
from rich.spinner import Spinner
from rich.text import Text

from plait._io import format_content
from plait._sync import sync
from plait._tree import ICONS, LiveArea, Node, RunModel, mark, rate_wait_text
from plait.events import (
    BudgetWarningEvent,
    Event,
    LoopIterationStartedEvent,
    ModelFallbackEvent,
    ModelRetryEvent,
    RateLimitWaitEvent,
    RunContentEvent,
    StepCompletedEvent,
    StepErrorEvent,
    StepPausedEvent,
    StepRetryEvent,
    StepSkippedEvent,
    StepStartedEvent,
    ToolCallStartedEvent,
    WorkflowCompletedEvent,
    WorkflowErrorEvent,
    WorkflowStartedEvent,
)

__all__ = ["ICONS", "ConsoleRenderer", "aprint_run", "print_run", "print_summary"]


class ConsoleRenderer:
    """Prints events as an indented outline. Feed it with :meth:`handle`.

    With ``live=True`` on a terminal, the running steps and the text they stream show
    below the outline, redrawn in place, until the step completes (call :meth:`close`
    when the run has ended). ``markdown=True`` renders the streamed text as Markdown.
    """

    def __init__(
        self,
        console: Console | None = None,
        *,
        preview: int = 90,
        live: bool = False,
        markdown: bool = False,
    ) -> None:
        self.console = console or Console()
        self.preview = preview
        self.markdown = markdown
        self._content: dict[str | None, list[str]] = {}
        self._steps = 0
        # the live area exists only where it can be drawn: elsewhere an event costs no more
        self.live = live
        self._area: LiveArea | None = None
        self._model: RunModel | None = None
        self._spinner = Spinner("dots", style="yellow")
        if live and self.console.is_terminal:
            self._model = RunModel()
            self._area = LiveArea(self.console, self._render_live, transient=True)

    def begin(self, name: str) -> None:
        """Show ``name`` (an agent or team run on its own, outside a workflow) as running,
        its streamed text under it."""
        if self._model is not None and self._model.root is None:
            root = self._model.root = Node("", name, "Agent", None)
            root.text = []
            self._model.nodes[""] = root
            self._area.start()  # type: ignore[union-attr]

    def close(self) -> None:
        """Stop the live display (call once the run has ended)."""
        if self._area is not None:
            self._area.stop()

    # -- the live area -----------------------------------------------------------------

    def _render_live(self) -> RenderableType:
        model = self._model
        if model is None:
            return Text("")
        try:
            nodes = list(model.nodes.values())
        except RuntimeError:  # the run added a node while this refresh read them
            return Text("")
        running = [
            n
            for n in nodes
            if n.status == "running" and n.kind != "Iteration" and (n is not model.root or n.text is not None)
        ]
        parts: list[RenderableType] = []
        streaming = [n for n in running if n.text]
        lines = max(3, (self.console.height or 24) - len(running) - 4 * len(streaming) - 2)
        for node in running:
            if node.text:  # its panel shows the spinner and the elapsed time
                parts.append(self._panel(node, max(3, lines // max(1, len(streaming)))))
            else:
                parts.append(Text.assemble(self._indent_of(node), mark(node, self._spinner)))
        return Group(*parts)

    def _indent_of(self, node: Node) -> str:
        return "│ " * node.key.count("/") if node.key else ""

    def _panel(self, node: Node, height: int) -> RenderableType:
        text = "".join(node.text or ())
        width = max(20, self.console.width - 4)
        tail = _tail(text, height, width)
        body: RenderableType = Markdown(tail) if self.markdown else Text(tail)
        title = node.label.split(" ", 1)[-1] if node.key else node.label
        return Panel(
            body,
            title=title,
            title_align="left",
            subtitle=Text.assemble(mark(node, self._spinner)[0:1], f" {node.elapsed():.1f}s"),
            subtitle_align="right",
            border_style="cyan",
        )

    # -- the outline -------------------------------------------------------------------

    def _indent(self, event: Event, extra: int = 0) -> str:
        levels = event.nested_depth + (event.step_id or "").count("/") + extra
        return "│ " * levels

    def handle(self, event: Event) -> None:
        if self._model is not None:
            if isinstance(event, WorkflowStartedEvent) and event.nested_depth == 0:
                self._model = RunModel()  # a new run on this renderer
                self._area.start()  # type: ignore[union-attr]
            self._model.handle(event)
        print_ = self.console.print
        if isinstance(event, RunContentEvent):
            if isinstance(event.content, str):
                self._content.setdefault(event.step_id, []).append(event.content)
        elif isinstance(event, WorkflowStartedEvent):
            label = "workflow" if event.nested_depth == 0 else f"nested workflow · depth {event.nested_depth}"
            print_(
                Text.assemble(
                    self._indent(event),
                    ("◆ ", "bold magenta"),
                    (event.workflow_name or "", "bold"),
                    (f"  {label}", "dim"),
                )
            )
        elif isinstance(event, StepStartedEvent):
            if event.step_type in ("Step", "Workflow"):
                return
            icon = ICONS.get(event.step_type, "•")
            print_(
                Text.assemble(
                    self._indent(event),
                    (f"{icon} ", "cyan"),
                    (event.step_name or "", "cyan"),
                    (f"  {event.step_type}", "dim"),
                )
            )
        elif isinstance(event, LoopIterationStartedEvent):
            print_(
                Text.assemble(
                    self._indent(event), (f"↻ iteration {event.iteration}/{event.max_iterations}", "dim")
                )
            )
        elif isinstance(event, ToolCallStartedEvent):
            args = ", ".join(f"{k}={v!r}" for k, v in event.arguments.items())
            print_(
                Text.assemble(
                    self._indent(event, 1), ("⚙ ", "yellow"), (f"{event.tool_name}({args})", "yellow")
                )
            )
        elif isinstance(event, StepRetryEvent):
            print_(
                Text.assemble(
                    self._indent(event),
                    ("↺ ", "yellow"),
                    (
                        f"{event.step_name}: attempt {event.attempt} failed ({event.error}); retrying in {event.delay:.2f}s",
                        "yellow",
                    ),
                )
            )
        elif isinstance(event, ModelRetryEvent):
            who = event.agent_name or event.step_name or "model"
            print_(
                Text.assemble(
                    self._indent(event, 1),
                    ("↺ ", "yellow"),
                    (
                        f"{who}: model call {event.attempt} failed ({event.error}); retrying in {event.delay:.2f}s",
                        "yellow",
                    ),
                )
            )
        elif isinstance(event, ModelFallbackEvent):
            who = event.agent_name or event.step_name or "model"
            print_(
                Text.assemble(
                    self._indent(event, 1),
                    ("⤳ ", "yellow"),
                    (
                        f"{who}: {event.failed_model} failed ({event.error_type}: {event.error}); "
                        f"falling back to {event.next_model}",
                        "yellow",
                    ),
                )
            )
        elif isinstance(event, RateLimitWaitEvent):
            who = event.agent_name or event.step_name or "model"
            print_(
                Text.assemble(
                    self._indent(event, 1), ("⧗ ", "yellow"), (f"{who}: {rate_wait_text(event)}", "yellow")
                )
            )
        elif isinstance(event, BudgetWarningEvent):
            print_(Text.assemble(self._indent(event, 1), ("! ", "yellow"), (event.message, "yellow")))
        elif isinstance(event, StepPausedEvent):
            print_(
                Text.assemble(
                    self._indent(event),
                    ("⏸ ", "yellow"),
                    (f"{event.step_name} waits for a person: {event.prompt}", "yellow"),
                )
            )
        elif isinstance(event, StepSkippedEvent):
            print_(
                Text.assemble(
                    self._indent(event),
                    ("⤼ ", "yellow"),
                    (f"{event.step_name} skipped: {event.error}", "yellow"),
                )
            )
        elif isinstance(event, StepErrorEvent):
            print_(
                Text.assemble(
                    self._indent(event),
                    ("✗ ", "bold red"),
                    (f"{event.step_name}: {event.error_type}: {event.error}", "red"),
                )
            )
        elif isinstance(event, StepCompletedEvent):
            self._completed(event)
        elif isinstance(event, WorkflowCompletedEvent) and event.nested_depth > 0:
            print_(
                Text.assemble(
                    self._indent(event),
                    ("◆ ", "magenta"),
                    (f"{event.workflow_name} done", "magenta"),
                    (f"  {event.duration:.2f}s", "dim"),
                )
            )
        elif isinstance(event, WorkflowErrorEvent) and event.nested_depth == 0:
            self.close()
            print_(Text.assemble(("✗ ", "bold red"), (f"{event.workflow_name} failed: {event.error}", "red")))

    def _completed(self, event: StepCompletedEvent) -> None:
        self._steps += 1
        streamed = "".join(self._content.pop(event.step_id, []))
        if self._area is not None:
            self._area.refresh()  # the step leaves the live area as its line is printed
        if event.step_type not in ("Step", "Workflow"):
            extra = ""
            if event.metadata:
                extra = "  " + ", ".join(f"{k}={v}" for k, v in event.metadata.items())
            self.console.print(
                Text.assemble(
                    self._indent(event),
                    ("✓ ", "green"),
                    (event.step_name or "", "green"),
                    (f"  {event.duration:.2f}s{extra}", "dim"),
                )
            )
            return
        text = _oneline(streamed or format_content(event.content))
        if len(text) > self.preview:
            text = text[: self.preview - 1] + "…"
        mark_ = ("✓ ", "green") if event.success else ("✗ ", "red")
        how = "  cached" if event.cached else ""
        self.console.print(
            Text.assemble(
                self._indent(event),
                mark_,
                (event.step_name or "", "bold"),
                (f"  {event.duration:.2f}s{how}  ", "dim"),
                (text, "italic"),
            ),
            no_wrap=True,  # a preview is one line: cut at the terminal's edge, not wrapped
            overflow="ellipsis",
        )


def _tail(text: str, height: int, width: int) -> str:
    """The end of ``text`` that fits in about ``height`` lines of ``width`` columns."""
    lines = text.split("\n")
    kept: list[str] = []
    used = 0
    for line in reversed(lines):
        used += max(1, -(-len(line) // width))
        if used > height and kept:
            break
        kept.append(line)
    return "\n".join(reversed(kept))


def _oneline(text: str) -> str:
    """Text as one line for a preview: whitespace collapsed, Markdown heading and bold marks dropped."""
    return " ".join(re.sub(r"(?m)^\s*#+\s+|\*\*", "", text).split())


def _final(console: Console, title: str, content: Any, markdown: bool, subtitle: str = "") -> None:
    text = format_content(content)
    body: Any = Markdown(text) if markdown else Text(text)
    console.print(Panel(body, title=title, subtitle=subtitle or None, border_style="green", expand=True))


def print_run(
    target: Any,
    input: Any,
    *,
    stream: bool,
    markdown: bool,
    options: dict[str, Any],
    console: Console | None = None,
) -> Any:
    """Run a workflow or agent and print it (``print_response``): :func:`aprint_run`, driven
    from sync code."""
    return sync(aprint_run(target, input, stream=stream, markdown=markdown, options=options, console=console))


async def aprint_run(
    target: Any,
    input: Any,
    *,
    stream: bool,
    markdown: bool,
    options: dict[str, Any],
    console: Console | None = None,
) -> Any:
    """Run a workflow or agent and print it (``aprint_response``): live with ``stream=True``,
    else behind a spinner; then the final panel."""
    console = console or Console()
    if stream:
        renderer = ConsoleRenderer(console, live=True, markdown=markdown)
        if not hasattr(target, "steps"):  # an agent or team on its own
            renderer.begin(target.name)
        from plait._context import OFFLOAD_SYNC

        # sync steps run in worker threads meanwhile: one that blocks still shows as running
        offloading = OFFLOAD_SYNC.set(True)
        try:
            async for event in target.arun(input, stream=True, stream_events=True, **options):
                renderer.handle(event)
        finally:
            OFFLOAD_SYNC.reset(offloading)
            renderer.close()
        output = target.get_last_run_output()
    else:
        with console.status(f"Running {target.name}…"):
            output = await target.arun(input, **options)
    print_summary(console, target, output, markdown)
    return output


def print_summary(console: Console, target: Any, output: Any, markdown: bool) -> None:
    if output is None:
        return
    status = getattr(output, "status", None)
    duration = getattr(output, "duration", 0.0)
    subtitle = f"{status} · {duration:.2f}s" if status is not None else f"{duration:.2f}s"
    pending = getattr(output, "pending", None)
    if pending:
        waits = "\n".join(f"- **{p.step_id}** ({p.kind}): {p.prompt}" for p in pending)
        where = storage_url(getattr(target, "storage", None))
        command = approve_command(output.run_id, getattr(target, "storage", None))
        hint = f"\n\nThe run is stored in `{where}`. Continue with `workflow.continue_run({output.run_id!r}, ...)`"
        hint += f" or, in a shell in this directory:\n\n`{command}`" if command else " in this process."
        limits = sorted({p.budget["limit"] for p in pending if p.budget and p.budget.get("limit")})
        if limits:  # a budget pause: how to go on with a raised limit
            options = " or ".join(f"`--budget-{limit.replace('_', '-')} N`" for limit in limits)
            hint += f"\n\nTo raise the budget that paused, add {options} (`budget=Budget(...)` in Python)."
        _final(console, target.name, f"Waiting for a person:\n{waits}{hint}", True, subtitle)
        return
    _final(console, target.name, output.content, markdown, subtitle)


def storage_url(storage: Any) -> str | None:
    """The URL of a workflow's storage (a URL or a backend object), password redacted."""
    from plait.storage import redact_url

    url = storage if isinstance(storage, str) else getattr(storage, "url", None)
    return redact_url(url) if isinstance(url, str) else None


def approve_command(run_id: str, storage: Any) -> str | None:
    """The ``plait runs approve`` command that finds the run, or None when no other process can.

    ``--storage`` is spelled out unless the run is in the store the CLI searches by
    default, so the printed command works as pasted (a password stays redacted).
    """
    import os
    import shlex

    from plait.storage import DEFAULT_STORAGE, redact_url

    url = storage_url(storage)
    if url is None or url.startswith("memory:"):
        return None
    searched = redact_url(os.environ.get("PLAIT_STORAGE") or DEFAULT_STORAGE)
    option = "" if url == searched else f" --storage {shlex.quote(url)}"
    return f"plait runs approve {run_id}{option}"
