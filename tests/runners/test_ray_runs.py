"""Whole runs on Ray (plait_ray.submit): a run submitted to a local cluster completes there; a
run whose Ray worker is killed (SIGKILL) mid-run is retried by Ray and continued from its
checkpoints, on SQLite, PostgreSQL and Redis, so the steps it had completed do not run again."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from plait import RunStatus, Workflow
from plait.errors import DefinitionError
from plait.storage import resolve_storage
from tests.services import require_package, require_service

pytestmark = pytest.mark.slow

TARGET = "tests.runners.whole_run:workflow"


def _storage(kind: str, tmp_path: Path) -> dict[str, str]:
    """The task environment that gives tests.runners.whole_run its storage."""
    if kind == "postgres":
        require_service("postgresql")
        require_package("plait_postgres", "plait-postgres")
        schema = f"plait_test_{uuid.uuid4().hex[:10]}"
        return {
            "PLAIT_WHOLE_RUN_STORAGE": "postgresql://127.0.0.1:5432/test",
            "PLAIT_WHOLE_RUN_SCHEMA": schema,
        }
    if kind == "redis":
        require_service("redis")
        require_package("plait_redis", "plait-redis")
        prefix = f"plait_test_{uuid.uuid4().hex[:10]}"
        return {"PLAIT_WHOLE_RUN_STORAGE": "redis://127.0.0.1:6379/0", "PLAIT_WHOLE_RUN_PREFIX": prefix}
    return {"PLAIT_WHOLE_RUN_STORAGE": f"sqlite:///{tmp_path / 'runs.db'}"}


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "redis"])
def test_a_whole_run_survives_the_loss_of_its_ray_worker(ray_runner: Any, tmp_path: Path, kind: str) -> None:
    from plait_ray import submit

    env = {"PLAIT_WHOLE_RUN_DIR": str(tmp_path), "PLAIT_WHOLE_RUN_DIE": "1", **_storage(kind, tmp_path)}
    run = submit(TARGET, "tea", env=env, runner=ray_runner)
    output = run.result(timeout=240)
    assert output.run_id == run.run_id
    assert output.status == RunStatus.COMPLETED
    assert output.content.startswith("prepared tea, survived, finished in ")
    died = int((tmp_path / "died").read_text())
    assert not output.content.endswith(f" {died}")  # the second attempt ran in another process
    assert (tmp_path / "prepared").read_text().count("\n") == 1  # restored, not run again
    record = asyncio.run(_stored(env, run.run_id))
    assert record is not None and record.status == RunStatus.COMPLETED.value


async def _stored(env: dict[str, str], run_id: str) -> Any:
    """The stored run (the schema of a PostgreSQL test dropped after)."""
    schema, prefix = env.get("PLAIT_WHOLE_RUN_SCHEMA"), env.get("PLAIT_WHOLE_RUN_PREFIX")
    url = env["PLAIT_WHOLE_RUN_STORAGE"]
    if schema:
        from plait_postgres import PostgresStorage

        storage: Any = PostgresStorage(url, schema=schema)
    elif prefix:
        from plait_redis import RedisStorage

        storage = RedisStorage(url, prefix=prefix)
    else:
        storage = resolve_storage(url)
    try:
        await storage.setup()
        return await storage.get_run(run_id)
    finally:
        if schema or prefix:
            await storage.drop()
        await storage.close()


def test_a_run_on_ray_without_a_loss_runs_once(ray_runner: Any, tmp_path: Path) -> None:
    from plait_ray import submit

    env = {"PLAIT_WHOLE_RUN_DIR": str(tmp_path), **_storage("sqlite", tmp_path)}
    runs = [submit(TARGET, topic, env=env, runner=ray_runner) for topic in ("tea", "coffee", "cocoa")]
    contents = [run.result(timeout=240).content for run in runs]
    assert [c.split(", finished")[0] for c in contents] == [
        "prepared tea, survived",
        "prepared coffee, survived",
        "prepared cocoa, survived",
    ]
    assert (tmp_path / "prepared").read_text().count("\n") == 3


def test_bad_submissions_are_clear_errors() -> None:
    require_package("plait_ray", "plait-ray")
    from plait_ray import submit

    with pytest.raises(DefinitionError, match="'module:name' target"):
        submit(Workflow(name="w", steps=[lambda step_input: 1]))
    with pytest.raises(DefinitionError, match="'module:name' target"):
        submit("examples/x.py:workflow")
    with pytest.raises(DefinitionError, match="max_retries must be an int"):
        submit(TARGET, max_retries=-1)
    with pytest.raises(DefinitionError, match="retry_exceptions cannot be set"):
        submit(TARGET, retry_exceptions=True)
