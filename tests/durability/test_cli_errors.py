"""The ``plait`` command line as a person meets it (issue #17 items 3 and 4): short ids and
unique prefixes, a list readable at 80 columns, and every expected failure in one or two
lines without a traceback (``--traceback`` shows it), Ctrl-C, a closed pipe, ``--version``,
``--strict`` and options after the input. Each runs the CLI as a subprocess
(``python -m plait``), as a person does."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from plait.storage import RunRecord, resolve_storage

FLOWS = """
import time

from pydantic import BaseModel

from plait import Agent, Approval, Step, Workflow
from plait.testing import FunctionModel

def a(step_input):
    return f"a({step_input.input})"

def boom(step_input):
    raise RuntimeError("the service is down")

def slow(step_input):
    open("started", "w").close()
    time.sleep(30)
    return "late"

def many(step_input):
    return "line " * 20

class Order(BaseModel):
    item: str
    qty: int

writer = Agent(name="writer", model=FunctionModel(lambda messages: "a short draft about tea"))

echo = Workflow(name="echo", steps=[a])
failing = Workflow(name="failing", steps=[a, boom])
sleepy = Workflow(name="sleepy", steps=[a, slow])
typed = Workflow(name="typed", steps=[a], input_schema=Order)
waits = Workflow(name="waits", steps=[Step(name="draft", agent=writer), Approval(name="ok", prompt="Ship it?")])
skipping = Workflow(name="skipping", steps=[a, Step(name="boom", executor=boom, skip_on_failure=True)])
chatty = Workflow(name="chatty", steps=[Step(name=f"s{i}", executor=many) for i in range(200)])
"""


def plait(cwd: Path, *args: str, columns: int = 200, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "COLUMNS": str(columns), **env}
    environment.pop("PLAIT_STORAGE", None)
    return subprocess.run(
        [sys.executable, "-m", "plait", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_or_two_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout, done.stderr
    lines = done.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2, done.stderr
    assert all(line.startswith("plait: ") for line in lines), done.stderr
    return lines


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    (tmp_path / "flows.py").write_text(FLOWS)
    return tmp_path


def stored(cwd: Path, *, status: str | None = None) -> list[dict[str, object]]:
    args = ["runs", "list", "--json", *(["--status", status] if status else [])]
    return json.loads(plait(cwd, *args).stdout)  # type: ignore[no-any-return]


def test_version() -> None:
    done = subprocess.run([sys.executable, "-m", "plait", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("plait ") and done.stdout.split()[1][0].isdigit()


def test_a_module_that_is_not_there(flows: Path) -> None:
    done = plait(flows, "run", "nosuchmod:workflow", "x")
    assert done.returncode == 1
    (line,) = one_or_two_lines(done)
    assert "no module named 'nosuchmod'" in line and "path/to/file.py:NAME" in line


def test_a_failed_step_says_how_to_resume_and_traceback_shows_where(flows: Path) -> None:
    done = plait(flows, "run", "flows.py:failing", "x")
    assert done.returncode == 1
    failure, hint = one_or_two_lines(done)
    assert failure == "plait: run failed: Step 'boom' failed: RuntimeError: the service is down"
    (run,) = stored(flows, status="error")
    assert hint == (
        f"plait: once fixed, resume with `plait runs resume {str(run['run_id'])[:8]}`;"
        " --traceback shows where it failed"
    )
    shown = plait(flows, "run", "flows.py:failing", "x", "--traceback")  # anywhere on the line
    assert shown.returncode == 1
    assert "Traceback" in shown.stderr and 'flows.py", line' in shown.stderr and "in boom" in shown.stderr
    assert shown.stderr.strip().splitlines()[-2] == failure


def test_an_input_that_does_not_validate(flows: Path) -> None:
    done = plait(flows, "run", "flows.py:typed", '{"item": "tea"}')
    assert done.returncode == 1
    (line,) = one_or_two_lines(done)
    assert "Workflow 'typed': input does not match Order" in line and "qty" in line


@pytest.mark.parametrize(
    ("storage", "env", "expected"),
    [
        ("nonsense", {}, "a URL such as 'sqlite:///runs.db', got 'nonsense'"),
        (
            "postgresql://plait:hunter2@127.0.0.1:5432/test",
            {"PLAIT_DISABLE_PLUGINS": "postgres"},
            "pip install plait-postgres",
        ),
        ("postgresql://plait:hunter2@127.0.0.1:9/nothing", {}, "127.0.0.1:9"),
    ],
    ids=["bad-url", "missing-plugin", "server-down"],
)
def test_storage_failures_are_one_line(flows: Path, storage: str, env: dict[str, str], expected: str) -> None:
    if "@127.0.0.1:9/" in storage:
        pytest.importorskip("plait_postgres")
    for args in (["run", "flows.py:echo", "x"], ["runs", "list"], ["runs", "show", "abc"]):
        done = plait(flows, *args, "--storage", storage, **env)
        assert done.returncode == 1, done.stderr
        (line,) = one_or_two_lines(done)
        assert expected in line and "hunter2" not in line, line


def test_ctrl_c_during_a_run_cancels_it_and_says_how_to_resume(flows: Path) -> None:
    environment = {**os.environ}
    environment.pop("PLAIT_STORAGE", None)
    running = subprocess.Popen(
        [sys.executable, "-m", "plait", "run", "flows.py:sleepy", "x"],
        cwd=flows,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not (flows / "started").exists():  # the slow step is running
        assert running.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.2)
    running.send_signal(signal.SIGINT)
    _out, err = running.communicate(timeout=30)
    assert running.returncode == 130
    (run,) = stored(flows)
    assert err.strip() == f"plait: cancelled; resume with `plait runs resume {str(run['run_id'])[:8]}`"
    assert run["status"] == "CANCELLED" and run["error"] == "interrupted (Ctrl-C)"


def test_a_closed_pipe_ends_quietly(flows: Path) -> None:
    environment = {**os.environ}
    environment.pop("PLAIT_STORAGE", None)
    reading = subprocess.Popen(
        [sys.executable, "-m", "plait", "run", "flows.py:chatty", "x", "--json"],
        cwd=flows,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert reading.stdout is not None and reading.stderr is not None
    first = reading.stdout.readline()  # `| head -1`
    reading.stdout.close()
    assert json.loads(first)["event"] == "WorkflowStarted"
    err = reading.stderr.read().decode()
    reading.stderr.close()
    assert reading.wait(timeout=60) == 141
    assert err == "", err


def test_strict_fails_a_run_that_completed_with_errors(flows: Path) -> None:
    assert plait(flows, "run", "flows.py:skipping", "x").returncode == 0
    done = plait(flows, "run", "flows.py:skipping", "x", "--strict")
    assert done.returncode == 1 and done.stderr.strip().endswith("the run completed with errors (--strict)")
    assert plait(flows, "run", "flows.py:skipping", "--json", "x", "--strict").returncode == 1
    assert plait(flows, "run", "flows.py:echo", "x", "--strict").returncode == 0


def test_the_input_may_follow_the_options(flows: Path) -> None:
    done = plait(flows, "run", "flows.py:echo", "--json", '{"a": 1}')
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[-1]["event"] == "WorkflowCompleted" and events[-1]["content"] == 'a({"a": 1})'
    extra = plait(flows, "run", "flows.py:echo", "x", "y")
    assert extra.returncode == 2 and "unrecognized arguments: y" in extra.stderr


def _save(cwd: Path, *run_ids: str) -> None:
    async def save() -> None:
        storage = resolve_storage(f"sqlite:///{cwd / '.plait' / 'plait.db'}")
        assert storage is not None
        await storage.setup()
        for run_id in run_ids:
            await storage.save_run(
                RunRecord(run_id=run_id, workflow_id="w", workflow_name="w", session_id="s", status="RUNNING")
            )
        await storage.close()

    asyncio.run(save())


def test_run_ids_by_unique_prefix(flows: Path) -> None:
    assert plait(flows, "run", "flows.py:waits", "x").returncode == 0
    (run,) = stored(flows)
    run_id = str(run["run_id"])
    _save(flows, "abc10000-0000-4000-8000-000000000000", "abc20000-0000-4000-8000-000000000000")
    shown = plait(flows, "runs", "show", run_id[:5], "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["run_id"] == run_id
    ambiguous = plait(flows, "runs", "show", "abc")
    assert ambiguous.returncode == 2
    first, second = one_or_two_lines(ambiguous)
    assert (
        first.startswith("plait: 2 runs start with 'abc': ") and "abc10000" in first and "abc20000" in first
    )
    assert second == "plait: give more characters of the run id"
    for command in ("show", "resume", "approve", "cancel", "fork", "replay"):
        extra = ["--at", "draft"] if command == "fork" else []
        unknown = plait(flows, "runs", command, "zzz", *extra)
        assert unknown.returncode == 1
        assert one_or_two_lines(unknown)[0].startswith("plait: no run 'zzz' in sqlite:///.plait/plait.db")
        assert plait(flows, "runs", command, "abc", *extra).returncode == 2
    assert plait(flows, "runs", "diff", run_id[:6], "abc").returncode == 2
    assert plait(flows, "runs", "diff", run_id[:6], run_id[:7]).returncode == 0
    cancelled = plait(flows, "runs", "cancel", "abc1")
    assert cancelled.returncode == 0 and cancelled.stdout.strip() == (
        "cancel requested: run abc10000 stops before its next step"
    )
    approved = plait(flows, "runs", "approve", run_id[:8], "--json")
    assert approved.returncode == 0 and json.loads(approved.stdout)["status"] == "COMPLETED"
    again = plait(flows, "runs", "approve", run_id[:8])
    assert again.returncode == 1
    assert one_or_two_lines(again) == [f"plait: run {run_id[:8]} already completed: it waits for no answer"]


def test_runs_list_at_80_columns(flows: Path) -> None:
    assert plait(flows, "run", "flows.py:waits", "x").returncode == 0
    assert plait(flows, "run", "flows.py:failing", "x", "--user-id", "ada").returncode == 1
    runs = stored(flows)
    listed = plait(flows, "runs", "list", columns=80)
    assert listed.returncode == 0
    lines = listed.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    for run in runs:  # whole short ids, never a full or a cut one
        assert str(run["run_id"])[:8] in listed.stdout and str(run["run_id"]) not in listed.stdout
    assert "…" not in listed.stdout
    paused = next(line for line in lines if str(runs[1]["run_id"])[:8] in line)
    assert "PAUSED" in paused and "ada" not in paused
    # the tokens a paused run used, as `plait runs show` counts them
    show = plait(flows, "runs", "show", str(runs[1]["run_id"])).stdout
    tokens = int(show.split(" tokens")[0].split()[-1])
    assert tokens > 0 and paused.split("│")[-2].strip() == str(tokens)
    assert "ada" in next(line for line in lines if str(runs[0]["run_id"])[:8] in line)


def test_an_unknown_status_lists_the_valid_ones(flows: Path) -> None:
    done = plait(flows, "runs", "list", "--status", "bogus")
    assert done.returncode == 2
    (line,) = one_or_two_lines(done)
    assert line == (
        "plait: no status 'bogus'; the statuses are: cancelled, completed, completed_with_errors,"
        " error, paused, pending, queued, running"
    )
    assert plait(flows, "runs", "list", "--status", "Paused").returncode == 0


def test_an_error_in_the_users_module_is_one_line_and_traceback_shows_it(flows: Path) -> None:
    (flows / "broken.py").write_text("import nosuchdependency\n")
    (flows / "raising.py").write_text("ratio = 1 / 0\n")
    missing = plait(flows, "run", "broken:workflow", "x")  # the module is there, what it imports is not
    assert missing.returncode == 1
    assert one_or_two_lines(missing) == [
        "plait: ModuleNotFoundError: No module named 'nosuchdependency'",
        "plait: run it again with --traceback to see where",
    ]
    raising = plait(flows, "run", "raising.py:workflow", "x")
    assert raising.returncode == 1
    assert one_or_two_lines(raising)[0] == "plait: ZeroDivisionError: division by zero"
    shown = plait(flows, "--traceback", "run", "raising.py:workflow", "x")
    assert shown.returncode == 1 and "Traceback" in shown.stderr and 'raising.py", line 1' in shown.stderr
