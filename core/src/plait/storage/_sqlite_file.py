"""One SQLite file's connections, for :class:`~plait.storage._sqlite.SQLiteStorage`.

A statement takes tens of microseconds, less than handing it to a thread, so it runs on the
event loop, on a connection of its own that never waits for a lock: when the file is locked, or
another task is using that connection, the work goes to the worker thread, whose connection
waits up to ``timeout``. The WAL is checkpointed in the worker thread too (see
:meth:`SQLiteFile.checkpoint_later`).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from plait.storage._errors import StorageError

__all__ = ["SQLiteFile", "transaction"]

T = TypeVar("T")

#: the loop's connection has the worker thread checkpoint the WAL every this many calls ...
_CHECKPOINT_EVERY = 64
#: ... and checkpoints it itself (SQLite's automatic checkpoint) only past this many pages
#: (SQLite's default is 1000): when writes come so close together that the worker's
#: checkpoints never catch up
_INLINE_CHECKPOINT_PAGES = 4000


class SQLiteFile:
    """The connections to the file at ``path`` (``":memory:"``: the worker's only)."""

    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        #: set once the schema is there: until then everything runs in the worker thread
        self.ready = False
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="plait-sqlite")
        self._connection: sqlite3.Connection | None = None
        #: the event loop's own connection (no busy wait), see call
        self.inline: sqlite3.Connection | None = None
        self._inline_lock = threading.Lock()
        #: the loop's calls since the WAL's size was last looked at, and the checkpoint
        #: running in the worker thread (see checkpoint_later)
        self._calls = 0
        self._checkpoint: Future[Any] | None = None

    def open(self, timeout: float) -> sqlite3.Connection:
        if self.path != ":memory:":
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(
                    f"SQLite storage {self.path!r}: cannot create its directory: {exc.strerror or exc}"
                ) from None
        connection = sqlite3.connect(
            self.path, timeout=timeout, isolation_level=None, check_same_thread=False
        )
        if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            # Switching to WAL takes the file's write lock without waiting for the busy handler:
            # two processes creating one database at once retry here instead of failing.
            deadline = time.monotonic() + max(timeout, 1.0)
            while True:
                try:
                    connection.execute("PRAGMA journal_mode=WAL")
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        return connection

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self._connection = self.open(self.timeout)
        return self._connection

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn`` on the loop's connection, or in the worker thread when that cannot run it now."""
        if self.ready and self.path != ":memory:" and self._inline_lock.acquire(blocking=False):
            try:
                if self.inline is None:
                    self.inline = self.open(0.0)
                    # its commits leave checkpoints to the worker (checkpoint_later)
                    self.inline.execute(f"PRAGMA wal_autocheckpoint={_INLINE_CHECKPOINT_PAGES}")
                result = fn(self.inline)
                self._calls += 1
                if self._calls >= _CHECKPOINT_EVERY:
                    self.checkpoint_later()
                return result
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise StorageError(f"SQLite storage {self.path!r}: {exc}") from exc
            except sqlite3.Error as exc:
                raise StorageError(f"SQLite storage {self.path!r}: {exc}") from exc
            finally:
                self._inline_lock.release()

        def work() -> T:
            try:
                return fn(self._connect())
            except sqlite3.Error as exc:
                raise StorageError(f"SQLite storage {self.path!r}: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._worker, work)

    def checkpoint_later(self) -> None:
        """Have the worker thread copy the WAL's new pages into the database (a PASSIVE
        checkpoint: it takes no lock a writer needs), unless it is still at the last one.
        SQLite does it in the commit that takes the WAL past 1000 pages: on the event loop,
        for tens of milliseconds on a slow disk (two fsyncs and a few MB written), which a run
        paid every few hundred transactions. Once the worker has caught up, the next write
        starts the WAL from its beginning, so it stays small."""
        self._calls = 0
        if self._checkpoint is not None and not self._checkpoint.done():
            return

        def checkpoint() -> None:
            with contextlib.suppress(sqlite3.Error):  # closing: the last connection's close does it
                self._connect().execute("PRAGMA wal_checkpoint(PASSIVE)")

        try:
            self._checkpoint = self._worker.submit(checkpoint)
        except RuntimeError:  # the storage is closing
            pass

    async def close(self) -> None:
        self.ready = False
        with self._inline_lock:
            if self.inline is not None:
                self.inline.close()
                self.inline = None
        if self._checkpoint is not None:  # it may open the worker's connection: let it end first
            await asyncio.wrap_future(self._checkpoint)
        connection, self._connection = self._connection, None
        if connection is not None:
            await asyncio.get_running_loop().run_in_executor(self._worker, connection.close)
        self._worker.shutdown(wait=True)


def transaction(connection: sqlite3.Connection, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
    """Run ``statements`` in one write transaction."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        for sql, params in statements:
            connection.execute(sql, params)
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
