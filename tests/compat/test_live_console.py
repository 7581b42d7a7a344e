"""The live console (#17 items 1 and 2), as a person sees it: in a real pseudo-terminal
(``pty``), an agent's streamed text is on screen while it streams, running steps show a
spinner and their elapsed time; in a pipe, plain lines; trees nest loop iterations under
their loop and draw failed, skipped, cached and paused steps as nodes.

The scripts are Agno code with only the imports and the model changed (an offline
FunctionModel that yields chunks slowly)."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from rich.console import Console

from plait import Loop, Parallel, Step, Workflow
from plait.sinks import TreeSink, flush_sinks

pty = pytest.importorskip("pty")

MODEL = """
import asyncio
from plait import Agent, Loop, Step, Workflow
from plait.testing import FunctionModel

WORDS = "**Tea** began in China as a medicinal drink and spread along trade routes to the world".split()

async def slow(messages):
    for word in WORDS:
        await asyncio.sleep(0.08)
        yield word + " "

agent = Agent(name="Writer", model=FunctionModel(slow), instructions="Write about tea.", markdown=True)
"""

AGENT = (
    MODEL
    + """
agent.print_response("tea", stream=True, markdown=True)
print("DONE", flush=True)
"""
)

WORKFLOW = (
    MODEL
    + """
async def edit(step_input):
    await asyncio.sleep(0.5)
    return "edited"

workflow = Workflow(
    name="Tea",
    steps=[
        Step(name="write", agent=agent),
        Loop(name="refine", steps=[Step(name="edit", executor=edit)], max_iterations=2),
    ],
)
workflow.print_response("tea", stream=True)
print("DONE", flush=True)
"""
)

TREE = """
import asyncio
from plait import Loop, Step, Workflow

async def edit(step_input):
    await asyncio.sleep(0.5)
    return "edited"

workflow = Workflow(name="Tea", steps=[Loop(name="refine", steps=[Step(name="edit", executor=edit)], max_iterations=2)])
workflow.run("tea", sinks=["tree"])
from plait.sinks import flush_sinks
flush_sinks()
print("DONE", flush=True)
"""

WINSIZE = (
    "import fcntl, struct, termios; fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack('HHHH', 30, 80, 0, 0))\n"
)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE")}
    env.update(TERM="xterm-256color", COLUMNS="80", LINES="30", PYTHONUNBUFFERED="1")
    return env


def in_pty(script: str, timeout: float = 30.0) -> list[tuple[float, str]]:
    """Run ``script`` with a pseudo-terminal (80x30) as its terminal: what it wrote, in
    chunks, each with the time it arrived (seconds since the start)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: its stdin, stdout and stderr are the terminal
        os.execve(sys.executable, [sys.executable, "-c", WINSIZE + textwrap.dedent(script)], _env())
    start = time.monotonic()
    chunks: list[tuple[float, str]] = []
    try:
        while time.monotonic() - start < timeout:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if not ready:
                continue
            try:
                data = os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append((time.monotonic() - start, data.decode("utf-8", "replace")))
    finally:
        os.close(fd)
        os.waitpid(pid, 0)
    return chunks


CODES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def first(chunks: list[tuple[float, str]], needle: str) -> float:
    """When ``needle`` was first on screen (in the output so far, control codes left out)."""
    seen = ""
    for at, data in chunks:
        seen += data
        if needle in CODES.sub("", seen):
            return at
    raise AssertionError(f"{needle!r} never shown in {seen!r}")


def screen(chunks: list[tuple[float, str]], *, raw: bool = False) -> str:
    """Everything written, without the control codes unless ``raw``."""
    text = "".join(data for _, data in chunks)
    return text if raw else CODES.sub("", text).replace("\r", "")


def test_a_streamed_agent_shows_its_text_growing_before_it_completes() -> None:
    chunks = in_pty(AGENT)
    early, done = first(chunks, "medicinal"), first(chunks, "DONE")
    # 9 words (0.08 s each) are still to come when "medicinal" is on screen
    assert done - early > 0.4, (early, done)
    shown = screen(chunks)
    assert "╭─ Writer" in shown  # the live panel, titled by the agent
    assert "**" not in shown  # its Markdown rendered as it grows (markdown=True)
    assert "\x1b[1A" in screen(chunks, raw=True)  # redrawn in place with the terminal's control codes
    assert "│ Tea began in China as a medicinal drink and spread along trade routes to the │" in shown


def test_a_workflow_streams_its_agent_and_shows_running_steps_with_elapsed_time() -> None:
    chunks = in_pty(WORKFLOW)
    early, completed = first(chunks, "medicinal"), first(chunks, "✓ write")
    assert completed - early > 0.4, (early, completed)
    shown = screen(chunks)
    assert "╭─ write" in shown
    # the running edit step: a spinner whose frame changes and an elapsed time that grows
    running = re.findall(r"([⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]) • edit  (\d+\.\d)s", shown)
    assert len({frame for frame, _ in running}) >= 2, running
    assert len({elapsed for _, elapsed in running}) >= 3, running
    assert "COMPLETED" in shown


def test_the_live_tree_nests_iterations_and_shows_elapsed_time_while_running() -> None:
    chunks = in_pty(TREE)
    shown = screen(chunks)
    assert re.search(r"[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] • edit  0\.[1-4]s", shown), shown
    final = shown[shown.rindex("refine") - 30 :]
    assert re.search(r"↻ refine.*\n.*├── ✓ ↻ iteration 1/2.*\n.*│   └── ✓ • edit", final), final


def test_in_a_pipe_the_outline_is_plain_lines_without_control_codes(tmp_path: Path) -> None:
    script = tmp_path / "tea.py"
    script.write_text(WORKFLOW)
    env = _env()
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60, check=True
    )
    assert "\x1b" not in result.stdout and "\r" not in result.stdout
    lines = result.stdout.splitlines()
    assert lines[0] == "◆ Tea  workflow"
    assert any(line.startswith("✓ write  ") and "Tea began in China" in line for line in lines)
    assert "│ ✓ edit" in result.stdout and "╭─ write" not in result.stdout and lines[-1] == "DONE"


def _tree_lines(workflow: Workflow, *args: object, **kwargs: object) -> list[str]:
    console = Console(record=True, width=100, force_terminal=False)
    try:
        workflow.run(*args, sinks=[TreeSink(console=console)], **kwargs)  # type: ignore[arg-type]
    except Exception:
        pass
    assert flush_sinks()
    lines = [line.rstrip() for line in console.export_text().splitlines() if line.strip()]
    return [re.sub(r"\s+\d+\.\d+s", "", line) for line in lines]


def test_tree_nests_loop_iterations_and_marks_failed_and_skipped_steps() -> None:
    def boom(step_input):  # type: ignore[no-untyped-def]
        raise ValueError("bad input")

    workflow = Workflow(
        name="Tea",
        steps=[
            Loop(name="refine", steps=[Step(name="edit", executor=lambda step_input: "e")], max_iterations=2),
            Step(name="optional", executor=boom, on_error="skip"),
            Step(name="explode", executor=boom),
        ],
    )
    assert _tree_lines(workflow, "x") == [
        "✗ ◆ Tea  Step 'explode' failed: ValueError: bad input",
        "├── ✓ ↻ refine  iterations=2",
        "│   ├── ✓ ↻ iteration 1/2",
        "│   │   └── ✓ • edit",
        "│   └── ✓ ↻ iteration 2/2",
        "│       └── ✓ • edit",
        "├── ⤼ • optional  skipped  ValueError: bad input",
        "└── ✗ • explode  ValueError: bad input",
    ]


def test_tree_marks_a_paused_parallel_and_a_cached_step() -> None:
    from plait import Approval

    workflow = Workflow(
        name="Ship",
        storage="memory://",
        steps=[
            Step(name="draft", executor=lambda step_input: "d", cache=True),
            Parallel(
                Step(name="b", executor=lambda step_input: "b"),
                Approval(name="ok", prompt="Ship it?"),
                name="p",
            ),
        ],
    )
    first_run = _tree_lines(workflow, "x")
    assert first_run == [
        "⏸ ◆ Ship  paused",
        "├── ✓ • draft",
        "└── ⏸ ⫘ p  paused",
        "    ├── ✓ • b",
        "    └── ⏸ • ok  paused  Ship it?",
    ]
    assert _tree_lines(workflow, "x")[1] == "├── ✓ • draft  cached"


def test_model_retries_and_waits_are_lines_of_the_outline_as_they_happen() -> None:
    import io

    from plait.console import ConsoleRenderer
    from plait.events import ModelRetryEvent, StepPausedEvent

    out = io.StringIO()
    renderer = ConsoleRenderer(Console(file=out, width=100, color_system=None), live=True)
    renderer.handle(
        ModelRetryEvent(
            step_id="write", step_name="write", agent_name="Writer", attempt=1, delay=0.5, error="429"
        )
    )
    assert out.getvalue() == "│ ↺ Writer: model call 1 failed (429); retrying in 0.50s\n"
    renderer.handle(StepPausedEvent(step_id="ok", step_name="ok", prompt="Ship it?"))
    assert out.getvalue().splitlines()[-1] == "⏸ ok waits for a person: Ship it?"
    renderer.close()


def test_fallbacks_and_budget_warnings_are_lines_of_the_outline() -> None:
    import io

    from plait.console import ConsoleRenderer
    from plait.events import BudgetWarningEvent, ModelFallbackEvent

    out = io.StringIO()
    renderer = ConsoleRenderer(Console(file=out, width=120, color_system=None), live=True)
    renderer.handle(
        ModelFallbackEvent(
            step_id="write",
            step_name="write",
            agent_name="Writer",
            failed_model="gpt-4o-mini",
            error="503 overloaded",
            error_type="ServerError",
            next_model="claude-haiku-4-5",
        )
    )
    assert out.getvalue() == (
        "│ ⤳ Writer: gpt-4o-mini failed (ServerError: 503 overloaded); falling back to claude-haiku-4-5\n"
    )
    renderer.handle(
        BudgetWarningEvent(step_id="write", step_name="write", message="max_requests: 3 of 3 used")
    )
    assert out.getvalue().splitlines()[-1] == "│ ! max_requests: 3 of 3 used"
    renderer.close()


def test_a_cancelled_run_marks_what_was_running_as_cancelled() -> None:
    from plait._tree import RunTree
    from plait.events import StepStartedEvent, WorkflowCancelledEvent, WorkflowStartedEvent

    console = Console(record=True, width=100, force_terminal=False)
    tree = RunTree(console)
    tree.handle(WorkflowStartedEvent(run_id="r", workflow_name="W"))
    tree.handle(StepStartedEvent(run_id="r", step_id="p", step_name="p", step_type="Parallel"))
    tree.handle(StepStartedEvent(run_id="r", step_id="p/a", step_name="a", parent_step_id="p"))
    tree.handle(WorkflowCancelledEvent(run_id="r", workflow_name="W"))
    lines = [re.sub(r"\s+\d+\.\d+s", "", line.rstrip()) for line in console.export_text().splitlines()]
    assert [line for line in lines if line] == [
        "⊘ ◆ W  cancelled",
        "└── ⊘ ⫘ p  cancelled",
        "    └── ⊘ • a  cancelled",
    ]


def test_runs_show_nests_iterations_under_their_loop_and_draws_the_failed_step(tmp_path: Path) -> None:
    def boom(step_input):  # type: ignore[no-untyped-def]
        raise ValueError("bad input")

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    workflow = Workflow(
        name="Tea",
        storage=url,
        steps=[
            Loop(name="refine", steps=[Step(name="edit", executor=lambda step_input: "e")], max_iterations=2),
            Step(name="explode", executor=boom),
        ],
    )
    with pytest.raises(Exception, match="bad input"):
        workflow.run("x")
    workflow.close()
    env = {**os.environ, "COLUMNS": "120"}
    env.pop("PLAIT_STORAGE", None)
    listed = subprocess.run(
        [sys.executable, "-m", "plait.cli", "runs", "list", "--json", "--storage", url],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    run_id = __import__("json").loads(listed.stdout)[0]["run_id"]
    shown = subprocess.run(
        [sys.executable, "-m", "plait.cli", "runs", "show", run_id, "--storage", url],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    lines = [re.sub(r"\s+\d+\.\d+s", "", line.rstrip()) for line in shown.stdout.splitlines()]
    assert lines[1:] == [
        "├── ✓ refine  Loop",
        "│   ├── ✓ ↻ iteration 1",
        "│   │   └── ✓ edit  Step",
        "│   └── ✓ ↻ iteration 2",
        "│       └── ✓ edit  Step",
        "└── ✗ explode  ValueError: bad input",
    ], shown.stdout
    assert "unfinished" not in shown.stdout


def test_runs_show_step_gives_its_input_output_and_state_change(tmp_path: Path) -> None:
    def count(step_input, session_state):  # type: ignore[no-untyped-def]
        session_state["n"] = session_state.get("n", 0) + 1
        return f"n={session_state['n']}"

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    workflow = Workflow(
        name="Count",
        storage=url,
        session_state={"n": 0, "keep": 1},
        steps=[
            Step(name="first", executor=lambda step_input: "hello"),
            Loop(name="refine", steps=[Step(name="edit", executor=count)], max_iterations=2),
        ],
    )
    run_id = workflow.run("the input").run_id
    workflow.close()
    env = {**os.environ, "COLUMNS": "120"}
    env.pop("PLAIT_STORAGE", None)

    def show(step: str) -> subprocess.CompletedProcess[str]:
        command = [
            sys.executable,
            "-m",
            "plait.cli",
            "runs",
            "show",
            run_id,
            "--storage",
            url,
            "--step",
            step,
        ]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)

    shown = show("refine[2]/edit")
    assert shown.returncode == 0, shown.stderr
    rows = {
        line.split("  ", 1)[0]: line.split("  ", 1)[1].strip()
        for line in shown.stdout.splitlines()
        if line[:1] != " "
    }
    assert rows["step"] == "refine[2]/edit  (Step, count)"
    assert (
        rows["run input"] == "'the input'" and rows["previous content"] == "n=1" and rows["output"] == "n=2"
    )
    assert rows["state change"] == "{'n': 2}"
    ambiguous = show("edit")
    assert ambiguous.returncode == 1 and "Traceback" not in ambiguous.stderr
    assert (
        ambiguous.stderr.strip()
        == "plait: step 'edit' is ambiguous; it may be: refine[1]/edit, refine[2]/edit"
    )
