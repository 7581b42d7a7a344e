"""Storage backends under test: every backend runs the same contract suite.

A backend is a fixture factory in BACKENDS; plugin backends (PostgreSQL, Redis)
need their real servers (see tests/services.py).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from plait.storage import MemoryStorage, Storage
from tests.services import require_package, require_service


def _memory(tmp_path: Path) -> Storage:
    return MemoryStorage()


def _sqlite(tmp_path: Path) -> Storage:
    from plait.storage import resolve_storage

    storage = resolve_storage(f"sqlite:///{tmp_path / 'runs.db'}")
    assert storage is not None
    return storage


def _postgres(tmp_path: Path) -> Storage:
    require_service("postgresql")
    require_package("plait_postgres", "plait-postgres")
    from plait_postgres import PostgresStorage

    # a schema of its own per test keeps tests independent on one database
    return PostgresStorage("postgresql://127.0.0.1:5432/test", schema=f"plait_test_{uuid.uuid4().hex[:10]}")


def _redis(tmp_path: Path) -> Storage:
    require_service("redis")
    require_package("plait_redis", "plait-redis")
    from plait_redis import RedisStorage

    return RedisStorage("redis://127.0.0.1:6379/0", prefix=f"plait-test-{uuid.uuid4().hex[:10]}")


BACKENDS: dict[str, Callable[[Path], Storage]] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "postgres": _postgres,
    "redis": _redis,
}


@pytest.fixture(params=sorted(BACKENDS))
async def storage(request: Any, tmp_path: Path) -> AsyncIterator[Storage]:
    backend = BACKENDS[request.param](tmp_path)
    await backend.setup()
    try:
        yield backend
    finally:
        drop = getattr(backend, "drop", None)  # test-only cleanup hook of server backends
        if drop is not None:
            await drop()
        await backend.close()
