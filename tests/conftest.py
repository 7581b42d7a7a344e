"""Suite-wide settings and fixtures.

The offline demo model streams without its per-word delay (a person watching the demo
wants it; the suite does not), in this process and the ones it starts.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plait.storage import Storage
from tests.storage.conftest import BACKENDS

os.environ.setdefault("PLAIT_OFFLINE_DELAY", "0")


@pytest.fixture(params=sorted(BACKENDS))
def shared(request: Any, tmp_path: Path) -> Iterator[Storage]:
    """A storage object that no event loop owns (unlike tests/storage's ``storage``), for
    tests whose threads and event loops share it, as a threaded web server would."""
    storage = BACKENDS[request.param](tmp_path)
    yield storage

    async def cleanup() -> None:
        drop = getattr(storage, "drop", None)
        if drop is not None:
            await drop()
        await storage.close()

    asyncio.run(cleanup())
