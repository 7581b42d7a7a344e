"""What only RayRunner has: dying workers, a wide fan-out through the actor pool,
steps that cannot be shipped, per-step resources, registration and a loopback-only cluster."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from plait import Parallel, RetryPolicy, Step, StepInput, Workflow
from plait.errors import StepError
from plait.runners import InProcessRunner
from tests.services import require_package

pytestmark = pytest.mark.slow


class DieOnce:
    """Kills its own worker process the first time (``marker`` absent), then succeeds."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __call__(self, step_input: StepInput) -> str:
        if not Path(self.marker).exists():
            Path(self.marker).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return "survived"


async def io_bound(step_input: StepInput) -> int:
    await asyncio.sleep(0.01)
    return os.getpid()


class Locked:
    """A callable step that holds a lock: it cannot be pickled."""

    def __init__(self) -> None:
        self.guard = threading.Lock()

    def __call__(self, step_input: StepInput) -> str:
        with self.guard:
            return "locked"


def assigned_resources(step_input: StepInput) -> dict[str, float]:
    import ray

    return dict(ray.get_runtime_context().get_assigned_resources())  # type: ignore[no-untyped-call]


def where_am_i(step_input: StepInput) -> str:
    import ray

    return "actor" if ray.get_runtime_context().get_actor_id() else "task"


def test_worker_killed_mid_branch_fails_the_run_without_hanging(ray_runner: Any, tmp_path: Path) -> None:
    from plait_ray import RayBranchError

    marker = tmp_path / "killed"
    workflow = Workflow(
        name="killed",
        steps=[
            Parallel(
                Step(name="doomed", executor=DieOnce(str(marker))),
                Step(name="other", executor=io_bound),
                name="p",
            )
        ],
        runner=ray_runner,
    )
    started = time.monotonic()
    with pytest.raises(StepError) as caught:
        workflow.run("go")
    assert time.monotonic() - started < 60
    error = caught.value
    assert error.step_path == "p/doomed"
    assert isinstance(error.__cause__, RayBranchError) and error.__cause__.worker_lost
    assert "died" in str(error)
    # The dead actor is replaced: the next run works.
    assert workflow.run("go").content["doomed"] == "survived"


def test_worker_killed_mid_branch_is_retried_by_the_containers_policy(
    ray_runner: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "killed"
    workflow = Workflow(
        name="retried",
        steps=[
            Parallel(
                Step(name="doomed", executor=DieOnce(str(marker))),
                name="p",
                retry=RetryPolicy(max_attempts=2, initial_delay=0.01),
            )
        ],
        runner=ray_runner,
    )
    output = workflow.run("go")
    assert output.content == {"doomed": "survived"}
    assert output.step_outputs[0].metrics.attempts == 2


def test_a_thousand_io_bound_branches_through_the_actor_pool(
    ray_runner: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from plait_ray import RayRunner

    branches = [Step(name=f"b{i}", executor=io_bound) for i in range(1000)]
    local = InProcessRunner()
    pool = RayRunner(actors=4, max_concurrency_per_actor=100)  # joins the session's cluster
    try:
        started = time.perf_counter()
        Workflow(name="wide", steps=[Parallel(*branches, name="p")], runner=local).run("go")
        in_process = time.perf_counter() - started
        timings = []
        for _ in range(2):  # the first run also starts the actors
            started = time.perf_counter()
            output = Workflow(name="wide", steps=[Parallel(*branches, name="p")], runner=pool).run("go")
            timings.append(time.perf_counter() - started)
        assert len(output.content) == 1000
        assert len(set(output.content.values())) <= 4  # a few processes, not one per branch
    finally:
        pool.close()
        local.shutdown()
    with capsys.disabled():
        print(
            f"\n1000 branches of asyncio.sleep(0.01): in process {in_process:.2f}s, "
            f"Ray actor pool {timings[0]:.2f}s cold, {timings[1]:.2f}s warm"
        )


def test_an_unpicklable_step_fails_early_naming_the_step(ray_runner: Any, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    from tests.runners.test_contract import Sleeper

    workflow = Workflow(
        name="unpicklable",
        steps=[
            Parallel(
                Step(name="fine", executor=Sleeper(str(marker), 0)),
                Step(name="locked", executor=Locked()),
                name="p",
            )
        ],
        runner=ray_runner,
    )
    with pytest.raises(StepError) as caught:
        workflow.run("go")
    message = str(caught.value)
    assert "Step 'locked' cannot be shipped to a Ray worker" in message
    assert re.search(r"'locked'\..*guard \(a _thread\.lock\)", message), message
    assert not marker.exists()  # nothing was submitted


def test_per_step_resources_run_as_tasks(ray_runner: Any) -> None:
    from plait_ray import ray_options

    workflow = Workflow(
        name="resources",
        steps=[
            Parallel(
                ray_options(Step(name="gpu", executor=assigned_resources), num_gpus=1, num_cpus=1),
                ray_options(Step(name="slot", executor=assigned_resources), resources={"plait_test_slot": 1}),
                Step(name="pooled", executor=where_am_i),
                name="p",
            )
        ],
        runner=ray_runner,
    )
    output = workflow.run("go").content
    assert output["gpu"]["GPU"] == 1 and output["gpu"]["CPU"] == 1
    assert output["slot"]["plait_test_slot"] == 1
    assert output["pooled"] == "actor"


def test_runner_wide_task_options(ray_runner: Any) -> None:
    from plait_ray import RayRunner

    tasks = RayRunner(task_options={"resources": {"plait_test_slot": 1}})  # joins the session's cluster
    try:
        workflow = Workflow(
            name="task-options",
            steps=[
                Parallel(
                    Step(name="a", executor=where_am_i), Step(name="b", executor=assigned_resources), name="p"
                )
            ],
            runner=tasks,
        )
        output = workflow.run("go").content
        assert output["a"] == "task"
        assert output["b"]["plait_test_slot"] == 1
    finally:
        tasks.close()


def test_ray_retries_cannot_be_turned_on() -> None:
    require_package("plait_ray", "plait-ray")
    from plait.errors import DefinitionError
    from plait_ray import RayRunner, ray_options

    with pytest.raises(DefinitionError, match="RetryPolicy"):
        ray_options(Step(name="s", executor=where_am_i), max_retries=3)
    with pytest.raises(DefinitionError, match="RetryPolicy"):
        RayRunner(task_options={"max_retries": 2})


def test_a_nested_ray_parallel_runs_inside_the_worker(ray_runner: Any) -> None:
    inner = Parallel(
        Step(name="x", executor=where_am_i),
        Step(name="y", executor=where_am_i),
        name="inner",
        runner=ray_runner,
    )
    workflow = Workflow(
        name="nested",
        steps=[Parallel(inner, Step(name="z", executor=where_am_i), name="p")],
        runner=ray_runner,
    )
    assert workflow.run("go").content == {"inner": {"x": "actor", "y": "actor"}, "z": "actor"}


def test_registered_as_ray(ray_runner: Any) -> None:
    from plait_ray import shared_runner

    workflow = Workflow(
        name="by-name", steps=[Parallel(Step(name="a", executor=where_am_i), name="p")], runner="ray"
    )
    try:
        assert workflow.run("go").content == {"a": "actor"}
        assert workflow._resolve_runner() is shared_runner()
    finally:
        shared_runner().close()


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        found.add(current)
        todo.extend(children.get(current, []))
    return found


def test_the_local_cluster_listens_on_loopback_only(ray_runner: Any) -> None:
    if shutil.which("ss") is None:
        pytest.skip("ss (iproute2) is not installed")
    ours = _descendants(os.getpid())
    listening = subprocess.run(
        ["ss", "-ltnpH"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    checked = []
    for line in listening:
        pids = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        if pids & ours:
            local = line.split()[3]
            checked.append(local)
            assert local.startswith(("127.0.0.1:", "[::1]:", "[::ffff:127.0.0.1]:")), line
    assert checked, "found no listening socket of the Ray cluster"


FRESH_PROCESS = textwrap.dedent(
    """
    import json, os, re, subprocess, sys
    from plait import Parallel, Step, Workflow
    from plait_ray import RayRunner

    def pid(step_input):
        return os.getpid()

    runner = RayRunner(num_cpus=1, object_store_memory=80 * 1024 * 1024, actors=1)
    output = Workflow(name="lazy", steps=[Parallel(Step(name="a", executor=pid), name="p")], runner=runner).run("go")
    import ray
    session = ray._private.worker._global_node.get_session_dir_path()
    listening = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout.splitlines()
    temp = runner._own_temp_dir
    runner.close()
    print(json.dumps({
        "worker": output.content["a"], "driver": os.getpid(), "session": session, "temp": temp,
        "temp_left": os.path.exists(temp), "listening": listening, "initialized": ray.is_initialized(),
    }))
    """
)


def test_a_lazily_started_local_cluster_in_a_fresh_process(tmp_path: Path) -> None:
    """The real first-use path: Ray not yet imported, cluster started by the first Parallel,
    loopback only, nothing written to ~/.ray, everything removed by close()."""
    require_package("plait_ray", "plait-ray")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["HOME"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["worker"] != report["driver"]
    assert report["session"].startswith(report["temp"])
    assert not report["temp_left"] and not report["initialized"]
    assert not (tmp_path / ".ray").exists()
    for line in report["listening"]:
        if re.search(r'"(raylet|gcs_server|ray::[^"]*)"', line):
            assert line.split()[3].startswith(("127.0.0.1:", "[::1]:", "[::ffff:127.0.0.1]:")), line
