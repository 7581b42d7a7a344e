"""Agno's database classes under their names, as plait storages: ``Workflow(db=SqliteDb(...))``.

Agno code passes ``db=SqliteDb(db_file="tmp.db")`` or ``db=InMemoryDb()``; these are
plait's SQLite and in-memory storages built from Agno's arguments. Agno's table-name
options change nothing (plait keeps its own tables) and are warned about; an
SQLAlchemy ``db_engine`` cannot be used and is an error. For PostgreSQL or Redis give
the URL: ``Workflow(storage="postgresql://...")``.
"""

from __future__ import annotations

import warnings
from typing import Any

from plait.errors import DefinitionError
from plait.storage._memory import MemoryStorage
from plait.storage._sqlite import SQLiteStorage

__all__ = ["InMemoryDb", "SqliteDb"]


def _check_tables(cls: str, options: dict[str, Any]) -> None:
    for option in options:
        if not option.endswith("_table"):
            raise DefinitionError(f"{cls}: unknown option {option}= (plait takes db_file= or db_url=)")
    if any(value is not None for value in options.values()):
        warnings.warn(
            f"{cls}: {', '.join(sorted(options))} change nothing in plait, which keeps its own tables",
            UserWarning,
            stacklevel=3,
        )


class SqliteDb(SQLiteStorage):
    """Agno's ``SqliteDb``: plait's SQLite storage in ``db_file`` (or at ``db_url``,
    ``sqlite:///path.db``); with neither, ``agno.db`` in the current directory as in Agno."""

    def __init__(
        self,
        db_file: str | None = None,
        db_url: str | None = None,
        *,
        db_engine: Any = None,
        id: str | None = None,
        **tables: Any,
    ) -> None:
        if db_engine is not None:
            raise DefinitionError(
                "SqliteDb: plait opens the file itself and cannot use an SQLAlchemy db_engine; "
                "give db_file= or db_url="
            )
        if db_file is not None and db_url is not None:
            raise DefinitionError(
                f"SqliteDb: give db_file= or db_url=, not both (got {db_file!r} and {db_url!r})"
            )
        _check_tables("SqliteDb", tables)
        if db_url is not None:
            if not db_url.startswith("sqlite:///"):
                raise DefinitionError(f"SqliteDb: expected a sqlite:/// URL for db_url, got {db_url!r}")
            url = db_url
        else:
            url = f"sqlite:///{db_file or 'agno.db'}"
        super().__init__(url)
        self.id = id


class InMemoryDb(MemoryStorage):
    """Agno's ``InMemoryDb``: plait's in-memory storage (gone when the process ends)."""

    def __init__(self, **tables: Any) -> None:
        _check_tables("InMemoryDb", tables)
        super().__init__()
