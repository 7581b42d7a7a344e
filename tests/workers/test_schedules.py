"""Schedules (issue #19, item 2): a schedule ticking every second across two worker processes
starts one run per tick; missed ticks are skipped or caught up; ``plait schedule list``."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from plait import Step, StepInput, Workflow
from plait._schedule import start_due
from plait.errors import DefinitionError
from plait.storage import resolve_storage
from tests.workers.helpers import APP, environment, executions, start_worker, stop, wait_for


async def _scheduled_runs(url: str, workflow_id: str) -> list[tuple[str, str]]:
    storage = resolve_storage(url)
    assert storage is not None
    await storage.setup()
    try:
        return [(r.run_id, r.status) for r in await storage.list_runs(workflow_id=workflow_id, limit=1000)]
    finally:
        await storage.close()


@pytest.mark.slow
def test_two_workers_start_one_run_per_tick(storage_url: str, workflow_name: str, tmp_path: Path) -> None:
    log = tmp_path / "effects.log"
    env = environment(workflow_name, storage_url, log, PLAIT_TEST_SCHEDULE="* * * * * *")
    workers = [start_worker(env, "--poll", "50ms") for _ in range(2)]
    try:
        wait_for(lambda: len(executions(log, "b")) >= 6, "six ticks' runs", 60, tuple(workers))
    finally:
        results = [stop(w) for w in workers]
    for worker, (_, err) in zip(workers, results, strict=True):
        assert worker.returncode == 0, err
    time.sleep(0.1)
    runs = asyncio.run(_scheduled_runs(storage_url, workflow_name))
    ticks = sorted(run_id.rpartition(":")[2] for run_id, _ in runs)
    assert len(ticks) >= 6, runs
    assert len(set(ticks)) == len(ticks)
    seconds = [dt.datetime.strptime(t, "%Y%m%dT%H%M%SZ").timestamp() for t in ticks]
    assert all(b - a == 1 for a, b in itertools.pairwise(seconds)), ticks  # no tick missed
    done = [run_id for run_id, status in runs if status == "COMPLETED"]
    assert set(executions(log, "b")) == set(done) and set(Counter(executions(log, "b")).values()) <= {1}
    assert len(done) >= len(runs) - 2  # the last tick or two may still wait for a worker
    # each tick was queued by one of the two workers, once
    queued = [
        line.split("queued run ")[1].split()[0]
        for _, err in results
        for line in err.splitlines()
        if "queued run" in line
    ]
    assert sorted(queued) == sorted(run_id for run_id, _ in runs)


async def _noop(step_input: StepInput) -> str:
    return "ok"


def test_missed_ticks_are_skipped_or_caught_up(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/r.db"

    async def scenario(catch_up: bool) -> list[str]:
        workflow = Workflow(
            name=f"every-minute-{catch_up}",
            steps=[Step(name="s", executor=_noop)],
            storage=url,
            schedule="* * * * *",
            timezone="Europe/Paris",
            catch_up=catch_up,
        )
        storage = await workflow._ready_storage()
        assert storage is not None
        start = 1_800_000_000.0  # a round minute
        assert await start_due(workflow, storage, start) == []  # first seen: counts from here
        # no worker ran for five minutes
        started = await start_due(workflow, storage, start + 5 * 60 + 1)
        assert await start_due(workflow, storage, start + 5 * 60 + 2) == []  # each tick once
        await workflow.aclose()
        return [run_id.rpartition(":")[2] for run_id in started]

    assert asyncio.run(scenario(False)) == ["20270115T080500Z"]
    assert asyncio.run(scenario(True)) == [f"20270115T08{m:02}00Z" for m in range(1, 6)]


def test_schedule_options_are_checked_and_listed(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="schedule must be a cron expression such as"):
        Workflow(name="w", steps=[Step(name="s", executor=_noop)], schedule="every day")
    with pytest.raises(DefinitionError, match=r"timezone must be an IANA time zone.*got 'Mars/Olympus'"):
        Workflow(
            name="w", steps=[Step(name="s", executor=_noop)], schedule="0 * * * *", timezone="Mars/Olympus"
        )
    with pytest.raises(DefinitionError, match="catch_up must be True or False"):
        Workflow(name="w", steps=[Step(name="s", executor=_noop)], schedule="0 * * * *", catch_up="yes")  # type: ignore[arg-type]
    env = environment(
        "listed", f"sqlite:///{tmp_path}/r.db", tmp_path / "log", PLAIT_TEST_SCHEDULE="*/5 * * * *"
    )
    command = [sys.executable, "-m", "plait", "schedule", "list", f"{APP}:workflow"]
    shown = subprocess.run([*command, "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    (row,) = json.loads(shown.stdout)
    assert row["workflow"] == "listed" and row["schedule"] == "*/5 * * * *" and row["timezone"] == "UTC"
    next_tick = dt.datetime.strptime(row["next_tick"], "%Y%m%dT%H%M%SZ")
    assert row["last_tick"] is None and next_tick.minute % 5 == 0 and next_tick.second == 0
    text = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert text.returncode == 0 and "listed  */5 * * * *  UTC  skip missed  last -  next " in text.stdout, (
        text
    )


def test_schedule_help_says_schedules_are_declared_in_code() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "plait", "schedule", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "declared in code" in shown and "Workflow(schedule=" in shown and "no `schedule add`" in shown
