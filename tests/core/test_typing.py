"""A type checker knows what a run returns: ``run(x)`` a WorkflowRunOutput, ``run(x, stream=True)``
an iterator of events, ``await arun(x)`` a WorkflowRunOutput, ``arun(x, stream=True)`` an async
iterator (mypy on a small typed example)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = """
from collections.abc import AsyncIterator, Iterator
from typing import assert_type

from plait import Workflow, WorkflowRunOutput
from plait.events import Event

workflow = Workflow(name="typed", steps=[lambda step_input: 1])
assert_type(workflow.run(1), WorkflowRunOutput)
assert_type(workflow.run(1, stream=True), Iterator[Event])
assert_type(workflow.run(1, stream_events=True), Iterator[Event])


async def main(flag: bool) -> None:
    assert_type(await workflow.arun(1), WorkflowRunOutput)
    assert_type(workflow.arun(1, stream=True), AsyncIterator[Event])
    for event in workflow.run(1, stream=flag) if flag else ():
        assert_type(event, Event)
"""


def test_run_and_arun_are_typed_by_stream(tmp_path: Path) -> None:
    example = tmp_path / "typed_example.py"
    example.write_text(EXAMPLE)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"), str(example)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
