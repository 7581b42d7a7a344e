"""Session state shared by concurrent runs: each run works on its own copy and, when it
ends or pauses, merges its changes into the session's latest state.

Two runs of one session may overlap (a web server handling two messages of one
conversation, 150 workers adding to one counter). Neither may silently overwrite the
other: a run records the state it started from (its *base*) and, at commit, applies
its own changes (base to final) to whatever the session holds by then, by the rules
that merge parallel branches (:mod:`plait._state`): numbers add their changes, lists
keep every append, dicts merge by key, a key only one side changed takes that change,
and anything else is a :class:`~plait.errors.StateConflictError` naming the key.

In memory (a workflow without storage) the commit happens under a lock. With storage
it is optimistic: load the latest record and its version, merge, save only if the
version is unchanged (``Storage.save_session_if``), else try again.
"""

from __future__ import annotations

import asyncio
import copy
import random
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from plait._ids import new_id
from plait._state import merge_changes

if TYPE_CHECKING:
    from plait.storage import Storage

__all__ = ["MemorySessions", "commit_stored", "merge_run"]

#: attempts to save against concurrent writers of one session before giving up
COMMIT_ATTEMPTS = 200


def merge_run(
    base: dict[str, Any], latest: dict[str, Any], final: dict[str, Any], *, where: str
) -> dict[str, Any]:
    """``latest`` with the run's changes (``base`` to ``final``) applied."""
    if latest is base or latest == base:
        return final
    merged = copy.deepcopy(base)
    merge_changes(merged, [("another run of the session", latest), ("this run", final)], where=where)
    return merged


class MemorySessions:
    """The sessions of a workflow without storage: the most recent ``limit`` sessions
    (least recently used dropped first), each the state its last run committed."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._states: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session_id: str) -> dict[str, Any] | None:
        with self._lock:
            state = self._states.get(session_id)
            return None if state is None else copy.deepcopy(state)

    def start(self, session_id: str, initial: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
        """A run's working copy of the session and the base it records."""
        with self._lock:
            state = self._states.get(session_id)
            if state is None:
                state = initial or {}
        if not state:
            return {}, {}
        return copy.deepcopy(state), copy.deepcopy(state)

    def update(
        self, session_id: str, initial: dict[str, Any] | None, updates: dict[str, Any]
    ) -> dict[str, Any]:
        """Set ``updates``' keys in the session (``initial`` when it has none); a copy of the result."""
        with self._lock:
            state = self._states.get(session_id)
            if state is None:
                state = copy.deepcopy(initial or {})
            state.update(copy.deepcopy(updates))
            self._states[session_id] = state
            self._states.move_to_end(session_id)
            while len(self._states) > self.limit:
                self._states.popitem(last=False)
            return copy.deepcopy(state)

    def commit(self, session_id: str, base: dict[str, Any], final: dict[str, Any], *, where: str) -> None:
        with self._lock:
            latest = self._states.get(session_id, base)
            # a copy: the run's output holds its working state, which its caller may change
            self._states[session_id] = copy.deepcopy(merge_run(base, latest, final, where=where))
            self._states.move_to_end(session_id)
            while len(self._states) > self.limit:
                self._states.popitem(last=False)


async def commit_stored(
    storage: Storage,
    session_id: str,
    workflow_id: str,
    base: dict[str, Any],
    final: dict[str, Any],
    *,
    where: str,
) -> dict[str, Any]:
    """Merge the run's changes into the stored session, retrying against concurrent
    writers; returns the state saved. ``base`` and ``final`` are JSON-compatible."""
    from plait.storage import SessionRecord, StorageError

    token = new_id()  # finds out whether an attempt whose answer was lost did land
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        current = await storage.load_session(session_id)
        if current is not None and current.writer == token:
            return current.state
        version = current.version if current is not None else 0
        latest = current.state if current is not None else base
        merged = merge_run(base, latest, final, where=where)
        record = SessionRecord(
            session_id=session_id, workflow_id=workflow_id, state=merged, version=version + 1, writer=token
        )
        try:
            if await storage.save_session_if(record, version):
                return merged
        except StorageError:
            if attempt == COMMIT_ATTEMPTS:
                raise
        # another run saved first: back off a little (jittered) and merge onto its state
        await asyncio.sleep(random.uniform(0, min(0.002 * attempt, 0.1)))
    raise StorageError(
        f"{where}: the session state was not saved: {COMMIT_ATTEMPTS} attempts each lost the race "
        f"to another run of session {session_id!r}"
    )
