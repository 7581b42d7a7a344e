"""The ``postgres`` entry point: registers its storage URL schemes, importing the driver lazily."""

from __future__ import annotations

from typing import Any

from plait.hookspecs import hookimpl

__all__ = ["register_storage"]


def create(url: str, **options: Any) -> Any:
    """Build the storage for ``url`` (the driver is imported here, on first use)."""
    from plait_postgres._storage import PostgresStorage

    return PostgresStorage(url, **options)


@hookimpl
def register_storage(register: Any) -> None:
    for scheme in ("postgresql", "postgres"):
        register(scheme, create)
