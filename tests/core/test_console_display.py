"""What print_response shows: streamed text live on a terminal, one-line previews, the offline demo."""

from __future__ import annotations

import io
import time

from rich.console import Console

from plait import Agent, Step, Workflow
from plait.console import print_run
from plait.testing import OfflineModel


def workflow(delay: float = 0) -> Workflow:
    researcher = Agent(name="Researcher", model=OfflineModel(delay=delay), instructions="Research the topic.")
    writer = Agent(name="Writer", model=OfflineModel(delay=delay), instructions="Write a polished article.")
    return Workflow(
        name="W", steps=[Step(name="research", agent=researcher), Step(name="write", agent=writer)]
    )


def render(terminal: bool, width: int = 70, delay: float = 0) -> str:
    out = io.StringIO()
    console = Console(file=out, force_terminal=terminal, width=width, color_system=None)
    print_run(workflow(delay), "The history of tea", stream=True, markdown=False, options={}, console=console)
    return out.getvalue()


def test_streaming_text_shows_live_on_a_terminal() -> None:
    shown = render(terminal=True, delay=0.01)
    assert "╭─ research" in shown and "╭─ write" in shown  # the live panel of each streaming step
    assert "✓ research" in shown and "COMPLETED" in shown


def test_no_live_display_when_not_a_terminal() -> None:
    shown = render(terminal=False)
    assert "╭─ research" not in shown and "\x1b" not in shown and "✓ write" in shown


def test_previews_are_one_line_within_the_width_without_markdown_marks() -> None:
    lines = [line for line in render(terminal=False, width=70).splitlines() if line.startswith("✓ ")]
    assert len(lines) == 2
    assert all(len(line) <= 70 and line.endswith("…") for line in lines)
    assert all("#" not in line and "**" not in line for line in lines)
    assert "The history of tea Key findings:" in lines[0]


def test_a_blocking_sync_step_shows_as_running_while_it_blocks() -> None:
    # the live console runs sync steps in worker threads: the loop stays free to draw
    import threading

    go, seen = threading.Event(), threading.Event()
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=70, color_system=None)

    def blocker(step_input: object) -> str:
        go.wait(30)
        return "unblocked"

    def watch() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "blocker" not in out.getvalue():
            time.sleep(0.02)
        if "blocker" in out.getvalue():
            seen.set()
        go.set()  # either way: the step may end

    threading.Thread(target=watch, daemon=True).start()
    flow = Workflow(name="W", steps=[Step(name="blocker", executor=blocker)])
    print_run(flow, "x", stream=True, markdown=False, options={}, console=console)
    assert seen.is_set(), "the running step was not drawn while it blocked"
    assert "✓ blocker" in out.getvalue() and "COMPLETED" in out.getvalue()
    assert flow.run("x").content == "unblocked"  # a plain run is as before (go is set)
