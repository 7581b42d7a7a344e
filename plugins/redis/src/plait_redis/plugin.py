"""The ``redis`` entry point: registers its storage URL schemes, importing the driver lazily."""

from __future__ import annotations

from typing import Any

from plait.hookspecs import hookimpl

__all__ = ["register_storage"]


def create(url: str, **options: Any) -> Any:
    """Build the storage for ``url`` (the driver is imported here, on first use)."""
    from plait_redis._storage import RedisStorage

    return RedisStorage(url, **options)


@hookimpl
def register_storage(register: Any) -> None:
    for scheme in ("redis", "rediss"):
        register(scheme, create)
