"""`plait run` stores runs; `plait runs list|show|resume|approve` work on them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

WORKFLOW = """
from plait import Approval, Parallel, Workflow

def a(step_input):
    return f"a({step_input.input})"

def b(step_input):
    return f"b({step_input.message})"

def flaky(step_input):
    import os
    if os.environ.get("FAIL_ONCE"):
        raise RuntimeError("the service is down")
    return "recovered"

workflow = Workflow(name="cli demo", steps=[a, Parallel(b, Approval(name="ok", prompt="Ship it?"), name="p")])
failing = Workflow(name="failing", steps=[a, flaky])
"""


def plait(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "COLUMNS": "200", **env}
    environment.pop("PLAIT_STORAGE", None)
    return subprocess.run(
        [sys.executable, "-m", "plait.cli", *args],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_run_pause_show_approve(tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(WORKFLOW)
    ran = plait(tmp_path, "run", "flows.py:workflow", "hello")
    assert ran.returncode == 0, ran.stderr
    assert "Waiting for a person" in ran.stdout and (tmp_path / ".plait" / "plait.db").exists()
    runs = json.loads(plait(tmp_path, "runs", "list", "--json").stdout)
    assert [(r["workflow_name"], r["status"]) for r in runs] == [("cli demo", "PAUSED")]
    run_id = runs[0]["run_id"]
    assert runs[0]["target"] == f"{tmp_path / 'flows.py'}:workflow"
    shown = plait(tmp_path, "runs", "show", run_id)
    assert (
        "waiting at p/ok: Ship it?" in shown.stdout and "⏸ p  paused" in shown.stdout
    )  # the paused Parallel waits too
    approved = plait(tmp_path, "runs", "approve", run_id, "--json")
    assert approved.returncode == 0, approved.stderr
    assert json.loads(approved.stdout) == {
        "run_id": run_id,
        "status": "COMPLETED",
        "content": {"b": "b(a(hello))", "ok": "a(hello)"},
    }
    detail = json.loads(plait(tmp_path, "runs", "show", run_id, "--json").stdout)
    assert detail["status"] == "COMPLETED"
    assert sorted(step["step_id"] for step in detail["steps"]) == ["a", "p", "p/b", "p/ok"]


def test_user_id_is_stored_shown_and_filtered(tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(WORKFLOW)
    assert plait(tmp_path, "run", "flows.py:failing", "x", "--user-id", "ada").returncode == 0
    assert plait(tmp_path, "run", "flows.py:failing", "y", "--user-id", "bob").returncode == 0
    assert plait(tmp_path, "run", "flows.py:failing", "z").returncode == 0
    runs = json.loads(plait(tmp_path, "runs", "list", "--json").stdout)
    assert [r["user_id"] for r in runs] == [None, "bob", "ada"]
    mine = json.loads(plait(tmp_path, "runs", "list", "--json", "--user-id", "ada").stdout)
    assert [(r["input"], r["user_id"]) for r in mine] == [("x", "ada")]
    table = plait(tmp_path, "runs", "list", "--user-id", "bob").stdout
    assert "bob" in table and "ada" not in table
    shown = plait(tmp_path, "runs", "show", mine[0]["run_id"])
    assert "user ada" in shown.stdout, shown.stdout


def test_runs_cancel(tmp_path: Path) -> None:
    import asyncio

    from plait.storage import RunRecord, resolve_storage

    (tmp_path / "flows.py").write_text(WORKFLOW)
    assert plait(tmp_path, "run", "flows.py:failing", "x").returncode == 0
    done = json.loads(plait(tmp_path, "runs", "list", "--json").stdout)[0]["run_id"]
    refused = plait(tmp_path, "runs", "cancel", done)
    assert refused.returncode == 1 and "is not running (it is COMPLETED)" in refused.stderr

    async def orphan() -> None:  # left RUNNING by a process that died
        storage = resolve_storage(f"sqlite:///{tmp_path / '.plait' / 'plait.db'}")
        assert storage is not None
        await storage.setup()
        await storage.save_run(
            RunRecord(
                run_id="orphan",
                workflow_id="failing",
                workflow_name="failing",
                session_id="s",
                status="RUNNING",
            )
        )
        await storage.close()

    asyncio.run(orphan())
    cancelled = plait(tmp_path, "runs", "cancel", "orphan", "--json")
    assert cancelled.returncode == 0, cancelled.stderr
    assert json.loads(cancelled.stdout) == {"run_id": "orphan", "cancelled": True}
    shown = json.loads(plait(tmp_path, "runs", "show", "orphan", "--json").stdout)
    assert shown["status"] == "CANCELLED"


def test_resume_a_failed_run(tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(WORKFLOW)
    failed = plait(tmp_path, "run", "flows.py:failing", "x", FAIL_ONCE="1")
    assert failed.returncode == 1 and "the service is down" in failed.stderr
    run_id = json.loads(plait(tmp_path, "runs", "list", "--json", "--status", "error").stdout)[0]["run_id"]
    resumed = plait(tmp_path, "runs", "resume", run_id, "--json")
    assert json.loads(resumed.stdout)["content"] == "recovered"
    missing = plait(tmp_path, "runs", "show", "nope")
    assert missing.returncode == 1 and "no run 'nope'" in missing.stderr
