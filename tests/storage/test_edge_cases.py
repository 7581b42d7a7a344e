"""Storage edge cases: odd names, bad URLs, unreachable stores, each a clear error up front."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from plait import RunContext, Step, StepInput, Workflow
from plait.errors import DefinitionError
from plait.storage import StorageError, resolve_storage
from tests.services import require_package, require_service
from tests.storage.conftest import BACKENDS


def _count(step_input: StepInput, run_context: RunContext) -> str:
    run_context.session_state["n"] = run_context.session_state.get("n", 0) + 1
    return "ok"


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_a_nul_in_a_step_name_and_session_id_is_stored(name: str, tmp_path: Path) -> None:
    storage = BACKENDS[name](tmp_path)
    workflow = Workflow(name="nul", steps=[Step(name="a\x00b", executor=_count)], storage=storage)
    try:
        output = workflow.run("x", session_id="s\x00")
        assert output.status.value == "COMPLETED", output.error
        assert workflow.get_session_state("s\x00") == {"n": 1}
        assert workflow.get_session_state("s") is None
        checkpoints = asyncio.run(storage.load_checkpoints(output.run_id))
        assert [c.step_id for c in checkpoints] == ["a\x00b"]
    finally:
        drop = getattr(storage, "drop", None)

        async def cleanup() -> None:
            if drop is not None:
                await drop()
            await storage.close()

        asyncio.run(cleanup())


def test_a_url_without_slashes_does_not_echo_its_password() -> None:
    with pytest.raises(DefinitionError) as caught:
        resolve_storage("postgres:hunter2@db.internal/plait")
    assert "hunter2" not in str(caught.value)
    assert "postgres:***" in str(caught.value)


def test_a_redis_url_naming_no_database_number_is_refused() -> None:
    require_package("plait_redis", "plait-redis")
    from plait_redis import RedisStorage

    with pytest.raises(DefinitionError, match=r"database number.*'notadb'"):
        RedisStorage("redis://:secret@127.0.0.1:6379/notadb")
    RedisStorage("redis://127.0.0.1:6379/3")  # a number is fine
    RedisStorage("redis://127.0.0.1:6379")  # and so is none (database 0)


def test_a_sqlite_file_that_cannot_be_created_is_a_storage_error() -> None:
    storage = resolve_storage("sqlite:////proc/plait-no-such/dir/runs.db")
    assert storage is not None
    with pytest.raises(StorageError, match=r"/proc/plait-no-such/dir/runs\.db.*cannot create its directory"):
        asyncio.run(storage.setup())


def test_runs_list_against_an_unreachable_store_prints_one_line() -> None:
    require_service("postgresql")
    require_package("plait_postgres", "plait-postgres")
    # port 9 on loopback: nothing listens, the connection is refused at once
    url = "postgresql://plait:hunter2@127.0.0.1:9/nothing"
    done = subprocess.run(
        [sys.executable, "-m", "plait.cli", "runs", "list", "--storage", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "127.0.0.1:9" in lines[0] and "hunter2" not in lines[0]


@pytest.mark.parametrize("url", ["memory://", "sqlite"])
def test_a_lone_surrogate_in_content_is_a_storage_error_naming_the_step(url: str, tmp_path: Path) -> None:
    def broken(step_input: object) -> str:
        return "half a pair: \udc80"

    storage = f"sqlite:///{tmp_path / 'runs.db'}" if url == "sqlite" else url
    wf = Workflow(name="w", steps=[Step(name="surrogate", executor=broken)], storage=storage)
    with pytest.raises(StorageError, match="step 'surrogate' cannot be stored as JSON"):
        wf.run("x")
