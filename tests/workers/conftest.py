"""Storage URLs for worker tests (SQLite file, PostgreSQL, Redis, as tests/durability's) and a
workflow name of each test's own, so runs queued by other tests in a shared database are never
claimed here."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.durability.conftest import _url


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return _url(request.param, tmp_path)


@pytest.fixture
def workflow_name() -> str:
    return f"queue-{uuid.uuid4().hex[:12]}"
