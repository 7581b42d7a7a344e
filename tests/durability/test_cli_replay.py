"""`plait runs replay RUN_ID`: a stored run again, its model and tool calls answered from its record."""

from __future__ import annotations

import json
from pathlib import Path

from tests.durability.test_cli_runs import plait

WORKFLOW = """
import os
from pathlib import Path
from plait import Agent, Step, Workflow
from plait.models import ToolCall
from plait.testing import FunctionModel

def reply(messages):
    log = Path("model.log")
    log.write_text(log.read_text() + "x" if log.exists() else "x")
    if messages[-1].role != "tool":
        return ToolCall("c1", "add", {"a": 2, "b": 3})
    return f"The sum is {messages[-1].content}"

def add(a: int, b: int) -> int:
    return a + b

agent = Agent(name="Calc", model=FunctionModel(reply), tools=[add], instructions=os.environ.get("PROMPT", "Add."))
workflow = Workflow(name="sums", steps=[Step(name="calc", agent=agent)])
"""


def test_runs_replay_answers_from_the_record_and_reports_a_divergence(tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(WORKFLOW)
    ran = plait(tmp_path, "run", "flows.py:workflow", "add")
    assert ran.returncode == 0, ran.stderr
    assert (tmp_path / "model.log").read_text() == "xx"
    run_id = json.loads(plait(tmp_path, "runs", "list", "--json").stdout)[0]["run_id"]

    replayed = plait(tmp_path, "runs", "replay", run_id, "--json")
    assert replayed.returncode == 0, replayed.stderr
    data = json.loads(replayed.stdout)
    assert data["replay_of"] == run_id and data["run_id"] != run_id
    assert (data["status"], data["content"], data["differences"]) == ("COMPLETED", "The sum is 5", [])
    assert (tmp_path / "model.log").read_text() == "xx"  # no model call

    shown = plait(tmp_path, "runs", "replay", run_id)
    assert "every step's output is the same as the original's" in shown.stdout

    diverged = plait(tmp_path, "runs", "replay", run_id, PROMPT="Add twice.")
    assert diverged.returncode == 1
    assert "the replay diverged at step 'calc'" in diverged.stderr
    assert '+      "content": "Add twice.",' in diverged.stderr

    live = plait(tmp_path, "runs", "replay", run_id, "--live", "--json", PROMPT="Add twice.")
    assert live.returncode == 0, live.stderr
    assert (tmp_path / "model.log").read_text() == "xxxx"
    assert plait(tmp_path, "runs", "replay", "nope").returncode == 1
