"""The human-approval walk-through, command by command, as a newcomer types it.

Each command is its own process, in a fresh directory (so `.plait/plait.db` is
this test's own), with no PLAIT_STORAGE: the pause panel must name the store and
print an approve command that works as pasted.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from plait import Approval, Step, Workflow
from plait.errors import DefinitionError
from tests.test_readme import offline_env

ROOT = Path(__file__).resolve().parents[2]
PLAIT = str(Path(sys.executable).with_name("plait"))
APPROVE = re.compile(r"plait runs approve [^\s│]+(?: --storage [^\s│]+)?")


def plait(cwd: Path, command: str) -> subprocess.CompletedProcess[str]:
    """Run a `plait ...` command line as a shell would split it."""
    argv = shlex.split(command)
    assert argv[0] == "plait", command
    return subprocess.run(
        [PLAIT, *argv[1:]], cwd=cwd, capture_output=True, text=True, timeout=120, env=offline_env()
    )


@pytest.fixture
def newcomer_dir(tmp_path: Path) -> Path:
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    return tmp_path


def test_the_printed_approve_command_continues_the_run(newcomer_dir: Path) -> None:
    paused = plait(newcomer_dir, 'plait run examples/human_approval.py:workflow "plait 1.0 is out"')
    assert paused.returncode == 0, paused.stderr
    assert "Waiting for a person" in paused.stdout
    assert "sqlite:///.plait/plait.db" in paused.stdout  # the store that holds the run
    printed = APPROVE.findall(paused.stdout)
    assert len(printed) == 1 and "--storage" not in printed[0]  # the default store: no option needed
    done = plait(newcomer_dir, printed[0])
    assert done.returncode == 0, done.stderr
    assert "Published after: fact check, legal" in done.stdout and "COMPLETED" in done.stdout


def test_a_run_in_another_store_prints_the_storage_option(newcomer_dir: Path) -> None:
    url = f"sqlite:///{newcomer_dir / 'elsewhere.db'}"
    paused = plait(
        newcomer_dir, f'plait run --storage {url} examples/human_approval.py:workflow "hi there you all"'
    )
    assert paused.returncode == 0, paused.stderr
    printed = APPROVE.findall(paused.stdout)
    assert printed == [printed[0]] and f"--storage {url}" in printed[0]
    done = plait(newcomer_dir, printed[0])
    assert done.returncode == 0, done.stderr
    assert "COMPLETED" in done.stdout


def test_no_run_names_the_store_searched(newcomer_dir: Path) -> None:
    for command in ("plait runs approve nope", "plait runs show nope", "plait runs resume nope"):
        result = plait(newcomer_dir, command)
        assert result.returncode == 1
        assert "no run 'nope' in sqlite:///.plait/plait.db" in result.stderr, (command, result.stderr)
        assert "--storage" in result.stderr and "$PLAIT_STORAGE" in result.stderr


def test_continue_run_names_the_store_without_its_password() -> None:
    workflow = Workflow(
        name="w", steps=[Approval(name="ok", prompt="ok?"), Step(name="s", executor=lambda i: "x")]
    )
    workflow.storage = "memory://admin:hunter2@127.0.0.1/runs"
    with pytest.raises(DefinitionError) as caught:
        workflow.continue_run("nope", approve=True)
    message = str(caught.value)
    assert "no run 'nope'" in message and "127.0.0.1/runs" in message and "hunter2" not in message


def test_the_approval_walkthrough_as_printed(newcomer_dir: Path) -> None:
    """The human-approval page's walkthrough (it was the README's), as a newcomer types it."""
    page = (ROOT / "docs" / "how-to" / "human-approval.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```bash\n(.*?)```", page, re.S) if "plait run " in b)
    commands = [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]
    assert commands[0].startswith("plait run examples/human_approval.py:workflow")
    first = plait(newcomer_dir, commands[0])
    assert first.returncode == 0, first.stderr
    match = re.search(r"plait runs approve (\S+)", first.stdout)
    assert match, first.stdout
    run_id = match.group(1)
    outputs = []
    for command in commands[1:]:
        result = plait(newcomer_dir, command.replace("RUN_ID", run_id))
        assert result.returncode == 0, (command, result.stderr)
        outputs.append(result.stdout)
    assert "PAUSED" in outputs[0]
    assert "Published after: fact check, legal" in outputs[-1] and "COMPLETED" in outputs[-1]
    assert not os.path.exists(ROOT / "examples" / ".plait")
