"""Storage URLs for durability tests: the same tests against SQLite, PostgreSQL and Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import require_package, require_service


def _url(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'runs.db'}"
    if backend == "postgres":
        require_service("postgresql")
        require_package("plait_postgres", "plait-postgres")
        return "postgresql://127.0.0.1:5432/test"
    require_service("redis")
    require_package("plait_redis", "plait-redis")
    return "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield _url(request.param, tmp_path)


@pytest.fixture
def run_id() -> str:
    return f"test-{uuid.uuid4()}"
