"""PostgreSQL storage for plait: ``Workflow(storage="postgresql://user@host/db")``.

Installing ``plait-postgres`` registers the ``postgresql://`` and ``postgres://``
storage URLs; :class:`PostgresStorage` takes the options a URL cannot carry.
psycopg is imported on first use, never when plait loads its plugins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plait_postgres._storage import PostgresStorage

__all__ = ["PostgresStorage"]


def __getattr__(name: str) -> Any:
    if name == "PostgresStorage":
        from plait_postgres._storage import PostgresStorage

        return PostgresStorage
    raise AttributeError(f"module 'plait_postgres' has no attribute {name!r}")
