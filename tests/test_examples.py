"""Every example runs, offline, and prints what it should."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# example file -> text its output must contain
EXPECTED = {
    "mcp_tools.py": [
        "calls notes_add_note({'text': 'buy tea'})",
        "notes_add_note -> saved note 2",
        "notes_list_notes -> 1. ",  # the shared server kept the first run's notes
        "notes_list_notes -> no notes yet",  # a run of its own started a fresh one
    ],
    "images.py": [
        "Attached: image (image/png, 75 bytes); file (text/plain, 38 bytes).",
        "the user message held: text, image, file",
        "stored image sha256: e6d66889131220f9",
        "status: COMPLETED",
        "a run's images reach its agent step: True",
    ],
    "queued_runs.py": [
        "queued: QUEUED, QUEUED, QUEUED",
        "COMPLETED: summary of an urgent ticket",
        "executed in this order: urgent, weekly, changelog",
    ],
    "agent_history.py": ["the last request carried 3 user turns", "kept: 6 messages"],
    "workflow_history.py": [
        "> cocoa: Write about cocoa (already covered: tea, coffee).",
        "the writer's last message starts with: <workflow_history_context>",
        "runs it was given: 2",
    ],
    "research_and_write.py": ["Research Workflow  nested workflow · depth 1", "writing_phase", "COMPLETED"],
    "sequential_workflow.py": ["Mixed Execution Pipeline", "COMPLETED"],
    "fully_python_workflow.py": ["Final:", "COMPLETED"],
    "step_based_workflow.py": ["Content Creation Pipeline", "COMPLETED"],
    "custom_function_steps.py": ["Published plan for", "Strategic Content Plan"],
    "custom_function_async_stream.py": [
        "[StepStarted] Content Planning Step (depth 0)",
        "Final:",
        "Strategic Content Plan",
    ],
    "conditional_workflow.py": ["Conditional Research", "COMPLETED"],
    "parallel_workflow.py": ["session state: {'sources': 1}"],
    "iterative_workflow.py": ["iteration 3/3", "Final Analysis", "COMPLETED"],
    "branching_workflow.py": ["Expert Routing", "COMPLETED"],
    "grouped_steps_workflow.py": ["Article Creation Workflow", "COMPLETED"],
    "steps_with_router.py": ["magical forest", "city timelapse"],
    "human_approval.py": [
        "status: PAUSED; waiting at ['reviews/legal']",
        "status: COMPLETED; content: Published after: fact check, legal",
    ],
    "retention.py": [
        "checkpoints of the first run: 1",
        "pruned: 1 run",
        "first run kept: False",
        "second run kept: True",
        "checkpoints of the first run now: 0",
        "session listed: True",
        "session deleted: True",
    ],
    "budget_pause.py": ["status: PAUSED; waiting at edit: max_requests 1 of 1 used", "status: COMPLETED"],
    "serve_and_watch.py": [
        "WorkflowPaused",
        "status: PAUSED; waiting at ['reviews/legal']",
        "status: COMPLETED; content: Published after: fact check, legal",
        "replay: PAUSED, waiting for legal again",
    ],
    "deep_nested_workflow.py": [
        "[depth=2] WorkflowStartedEvent from Data Collection",
        "[depth=1] StepStartedEvent from Comprehensive Research: research/merge",
    ],
}


def example_files() -> list[str]:
    # demo_models.py is the examples' helper, mcp_notes_server.py the server mcp_tools.py starts
    helpers = ("demo_models.py", "mcp_notes_server.py")
    return sorted(p.name for p in EXAMPLES.glob("*.py") if p.name not in helpers)


def test_every_example_is_checked() -> None:
    assert example_files() == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_offline(name: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "PLAIT_EXAMPLE_MODEL"}
    env["COLUMNS"] = "200"
    env["PLAIT_OFFLINE_DELAY"] = "0"
    env["PLAIT_STORAGE"] = f"sqlite:///{tmp_path}/runs.db"  # the storing examples stay out of the repository
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=EXAMPLES,
    )
    assert result.returncode == 0, result.stderr
    for text in EXPECTED[name]:
        assert text in result.stdout, f"{text!r} not in output of {name}:\n{result.stdout}"
