"""Resume across code changes (issue #19 item 5): a stored run keeps the definition it ran,
and a resume whose code changed a step that already ran refuses with a diff, unless the
caller gives ``on_changed=``; steps that have not run yet may change freely. From Python
and from the CLI, with the workflow run as a script and resumed by the CLI (two module
names for one file)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plait import Approval, Loop, Step, StepOutput, Workflow
from plait._io import RunStatus
from plait.errors import DefinitionChangedError, DefinitionError


def first(step_input: Any) -> str:
    return f"first({step_input.input})"


def first_fixed(step_input: Any) -> str:
    return f"FIRST({step_input.input})"


def last(step_input: Any) -> str:
    return f"last({step_input.previous_step_content})"


def last_fixed(step_input: Any) -> str:
    return f"LAST({step_input.previous_step_content})"


def extra(step_input: Any) -> str:
    return "extra"


_OPENED: list[Workflow] = []


@pytest.fixture(autouse=True)
def _close_workflows() -> Iterator[None]:
    yield
    while _OPENED:
        _OPENED.pop().close()


def gated(url: str, *steps: Any) -> Workflow:
    workflow = Workflow(name="gated", storage=url, steps=list(steps))
    _OPENED.append(workflow)
    return workflow


def paused_run(url: str) -> str:
    """A run of ``first, ok?, last`` that waits at the approval: ``first`` ran."""
    output = gated(
        url, Step(name="first", executor=first), Approval(name="ok"), Step(name="last", executor=last)
    ).run("x")
    assert output.status is RunStatus.PAUSED
    return output.run_id


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


def test_a_step_that_has_not_run_yet_may_change(url: str) -> None:
    run_id = paused_run(url)
    fixed = gated(
        url, Step(name="first", executor=first), Approval(name="ok"), Step(name="last", executor=last_fixed)
    )
    output = fixed.continue_run(run_id, approve=True)
    assert output.status is RunStatus.COMPLETED
    assert output.content.startswith("LAST(")


def test_a_changed_step_that_ran_refuses_the_resume_with_what_changed(url: str) -> None:
    run_id = paused_run(url)
    changed = gated(
        url, Step(name="first", executor=first_fixed), Approval(name="ok"), Step(name="last", executor=last)
    )
    with pytest.raises(DefinitionChangedError) as caught:
        changed.continue_run(run_id, approve=True)
    assert caught.value.changes == ["first: changed"]
    assert "on_changed='continue'" in str(caught.value) and run_id in str(caught.value)
    # nothing was spent: the run still waits, and resumes once the change is reverted
    same = gated(
        url, Step(name="first", executor=first), Approval(name="ok"), Step(name="last", executor=last)
    )
    assert same.continue_run(run_id, approve=True).status is RunStatus.COMPLETED


def test_every_backend_keeps_the_definition_with_the_run(storage_url: str) -> None:
    run_id = paused_run(storage_url)
    changed = gated(
        storage_url,
        Step(name="first", executor=first_fixed),
        Approval(name="ok"),
        Step(name="last", executor=last),
    )
    with pytest.raises(DefinitionChangedError, match="first: changed"):
        changed.continue_run(run_id, approve=True)
    output = changed.continue_run(run_id, approve=True, on_changed="restart_step")
    assert output.status is RunStatus.COMPLETED
    assert output.step_outputs[0].content == "FIRST(x)"


def test_on_changed_continue_keeps_the_stored_result(url: str) -> None:
    run_id = paused_run(url)
    changed = gated(
        url, Step(name="first", executor=first_fixed), Approval(name="ok"), Step(name="last", executor=last)
    )
    output = changed.continue_run(run_id, approve=True, on_changed="continue")
    assert output.status is RunStatus.COMPLETED
    assert output.step_outputs[0].content == "first(x)"


def test_on_changed_restart_step_runs_the_changed_step_again(url: str) -> None:
    run_id = paused_run(url)
    changed = gated(
        url, Step(name="first", executor=first_fixed), Approval(name="ok"), Step(name="last", executor=last)
    )
    output = changed.continue_run(run_id, approve=True, on_changed="restart_step")
    assert output.status is RunStatus.COMPLETED
    assert output.step_outputs[0].content == "FIRST(x)"
    # the run now holds the new definition: resuming it again with the new code is no change
    record = _record(changed, run_id)
    assert record.definition is not None and record.definition["steps"]["first"] != _stored_first(url)


def _record(workflow: Workflow, run_id: str) -> Any:
    import asyncio

    async def get() -> Any:
        storage = await workflow._ready_storage()
        assert storage is not None
        return await storage.get_run(run_id)

    return asyncio.run(get())


def _stored_first(url: str) -> str:
    from plait._definition import fingerprint

    original = gated(
        url, Step(name="first", executor=first), Approval(name="ok"), Step(name="last", executor=last)
    )
    return str(fingerprint(original)["steps"]["first"])


def test_a_removed_or_moved_step_that_ran_refuses(url: str) -> None:
    run_id = paused_run(url)
    removed = gated(url, Approval(name="ok"), Step(name="last", executor=last))
    with pytest.raises(DefinitionChangedError) as caught:
        removed.continue_run(run_id, approve=True)
    assert caught.value.changes == ["first: removed"]
    moved = gated(
        url,
        Step(name="extra", executor=extra),
        Step(name="first", executor=first),
        Approval(name="ok"),
        Step(name="last", executor=last),
    )
    with pytest.raises(DefinitionChangedError) as caught:
        moved.continue_run(run_id, approve=True)
    assert caught.value.changes == ["first: moved (after nothing then, after 'extra' now)"]
    # a step added after what ran is fine
    added = gated(
        url,
        Step(name="first", executor=first),
        Approval(name="ok"),
        Step(name="extra", executor=extra),
        Step(name="last", executor=last),
    )
    assert added.continue_run(run_id, approve=True).content == "last(extra)"


def test_a_change_inside_a_loop_that_ran_refuses(url: str) -> None:
    def body(step_input: Any) -> StepOutput:
        return StepOutput(content=(step_input.previous_step_content or 0) + 1)

    def body_fixed(step_input: Any) -> StepOutput:
        return StepOutput(content=(step_input.previous_step_content or 0) + 10)

    def loop(executor: Any) -> Workflow:
        return gated(
            url,
            Loop(name="count", steps=[Step(name="add", executor=executor)], max_iterations=2),
            Approval(name="ok"),
        )

    run_id = loop(body).run(0).run_id
    with pytest.raises(DefinitionChangedError) as caught:
        loop(body_fixed).continue_run(run_id, approve=True)
    assert caught.value.changes == ["count[*]/add: changed"]


def test_a_run_stored_without_a_definition_is_not_checked(url: str) -> None:
    import asyncio

    run_id = paused_run(url)
    changed = gated(
        url, Step(name="first", executor=first_fixed), Approval(name="ok"), Step(name="last", executor=last)
    )

    async def forget() -> None:  # as an older plait stored it
        storage = await changed._ready_storage()
        assert storage is not None
        record = await storage.get_run(run_id)
        assert record is not None and record.definition is not None
        record.definition = None
        await storage.save_run(record)

    asyncio.run(forget())
    assert changed.continue_run(run_id, approve=True).status is RunStatus.COMPLETED


def test_a_bad_policy_is_refused(url: str) -> None:
    run_id = paused_run(url)
    same = gated(
        url, Step(name="first", executor=first), Approval(name="ok"), Step(name="last", executor=last)
    )
    with pytest.raises(
        DefinitionError, match="on_changed= expects one of 'refuse', 'continue', 'restart_step'"
    ):
        same.continue_run(run_id, approve=True, on_changed="later")  # type: ignore[arg-type]


FLOW = """
import sys
from plait import Approval, Workflow

def first(step_input):
    return "first({})".format(step_input.input)

def last(step_input):
    return "last"

workflow = Workflow(name="deploy", storage=sys.argv[1] if __name__ == "__main__" else None,
                    steps=[first, Approval(name="ok"), last])

if __name__ == "__main__":
    print(workflow.run("x").run_id)
"""


def plait(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("PLAIT_STORAGE", None)
    return subprocess.run(
        [sys.executable, "-m", "plait", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_cli_checks_and_resumes_a_script_run(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    flow = tmp_path / "deploy.py"
    flow.write_text(FLOW)
    started = subprocess.run(
        [sys.executable, str(flow), url],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    run_id = started.stdout.strip().splitlines()[-1]
    target = f"{flow}:workflow"
    # the same code, loaded under another module name: nothing to report
    check = plait(tmp_path, "runs", "check", target, "--storage", url, "--json")
    assert check.returncode == 0, check.stderr
    assert json.loads(check.stdout) == [{"run_id": run_id, "status": "PAUSED", "changes": []}]
    # a deploy that changes the step that ran
    flow.write_text(FLOW.replace('"first({})"', '"FIRST({})"'))
    check = plait(tmp_path, "runs", "check", target, "--storage", url)
    assert check.returncode == 1
    assert "first: changed" in check.stdout and run_id[:8] in check.stdout
    refused = plait(tmp_path, "runs", "approve", run_id, "--storage", url, "--workflow", target)
    assert refused.returncode != 0
    assert "first: changed" in refused.stderr and "Traceback" not in refused.stderr
    resumed = plait(
        tmp_path,
        "runs",
        "approve",
        run_id,
        "--storage",
        url,
        "--workflow",
        target,
        "--on-changed",
        "continue",
    )
    assert resumed.returncode == 0, resumed.stderr
    shown = plait(tmp_path, "runs", "show", run_id, "--storage", url, "--json")
    assert json.loads(shown.stdout)["status"] == "COMPLETED"
