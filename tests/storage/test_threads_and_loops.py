"""One storage object shared by many threads and event loops, as a threaded web server
shares it: every run completes, nothing hangs (every wait here is bounded), and the
storage keeps working after the event loop that first used it has closed."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any

import pytest

from plait import Step, StepInput, StepOutput, Workflow
from plait.storage import Storage

BOUND = 60  # seconds: a hang fails the test instead of stalling the suite


def step(step_input: StepInput) -> StepOutput:
    return StepOutput(content=f"done {step_input.input}")


def workflow(storage: Storage) -> Workflow:
    return Workflow(
        name="threads",
        steps=[Step(name="one", executor=step), Step(name="two", executor=step)],
        storage=storage,
    )


def in_daemon_threads(fn: Any, args: list[Any], workers: int) -> list[concurrent.futures.Future[Any]]:
    """``fn(arg)`` for every arg on ``workers`` daemon threads (a hung call cannot keep
    the test process alive, as a ThreadPoolExecutor's threads would)."""
    futures: list[concurrent.futures.Future[Any]] = [concurrent.futures.Future() for _ in args]
    jobs = iter(list(zip(args, futures, strict=True)))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                job = next(jobs, None)
            if job is None:
                return
            arg, future = job
            try:
                future.set_result(fn(arg))
            except BaseException as exc:
                future.set_exception(exc)

    for _ in range(workers):
        threading.Thread(target=work, daemon=True).start()
    return futures


def test_run_from_a_thread_pool(shared: Storage) -> None:
    wf = workflow(shared)
    futures = in_daemon_threads(wf.run, [f"r{i}" for i in range(160)], 32)
    _, pending = concurrent.futures.wait(futures, timeout=BOUND)
    assert not pending, f"{len(pending)} runs hung"
    outputs = [f.result() for f in futures]
    assert [o.status for o in outputs] == ["COMPLETED"] * 160
    stored = asyncio.run(asyncio.wait_for(shared.list_runs(limit=500), BOUND))
    assert {r.run_id for r in stored} >= {o.run_id for o in outputs}


def test_asyncio_run_twice_and_in_threads_with_their_own_loops(shared: Storage) -> None:
    wf = workflow(shared)
    for i in range(2):  # a second loop after the first one closed
        out = asyncio.run(asyncio.wait_for(wf.arun(f"loop{i}"), BOUND))
        assert out.status == "COMPLETED"

    errors: list[BaseException] = []

    def in_own_loop(i: int) -> None:
        async def many() -> None:
            outs = await asyncio.gather(*(wf.arun(f"t{i}-{j}") for j in range(10)))
            assert all(o.status == "COMPLETED" for o in outs)

        try:
            asyncio.run(asyncio.wait_for(many(), BOUND))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=in_own_loop, args=(i,), daemon=True) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(BOUND)
    assert not [t for t in threads if t.is_alive()], "a thread's runs hung"
    assert not errors, errors[0]


@pytest.mark.parametrize(
    ("service", "url"),
    [("postgresql", "postgresql://127.0.0.1:5432/test"), ("redis", "redis://127.0.0.1:6379/0")],
)
def test_a_program_that_never_closes_its_storage_exits_cleanly(service: str, url: str) -> None:
    # a user's script: runs a workflow on a server backend and ends without close(); the
    # storage's own loop is closed at exit, so its driver's tasks end (no "Task was destroyed")
    import subprocess
    import sys
    import uuid

    from tests.services import require_service

    require_service(service)
    script = (
        "from plait import Workflow\n"
        "def a(step_input):\n"
        "    return 'x'\n"
        f"wf = Workflow(name='exit-{uuid.uuid4().hex[:8]}', steps=[a], storage={url!r})\n"
        "print(wf.run('go').status, wf.run('again').status)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["COMPLETED", "COMPLETED"]
    assert done.stderr == "", done.stderr
