"""Reaching a run to cancel it: the top-level runs executing in this process, by run id
(what :meth:`Workflow.cancel_run <plait.Workflow.cancel_run>` reaches from any thread or
task; a run with storage is also reached through the storage, see :mod:`plait._runs`), and
cancel requests for runs that have not started yet (Agno's cancel-before-start).

:func:`started` and :func:`ended` are on every run's path: one dict operation each, no lock.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plait._context import RunState

__all__ = ["active_run", "cancel_early", "cancelling", "ended", "started"]

#: the top-level runs executing in this process, by run id: what Workflow.cancel_run
#: reaches from any thread or task (a run with storage is also reached through it)
_ACTIVE: dict[str, RunState] = {}
#: guards the cancel-before-start bookkeeping below (_ACTIVE is changed one operation at a time)
_ACTIVE_LOCK = threading.Lock()


#: cancel requests for run ids not started yet (Agno's cancel-before-start): run id ->
#: when asked; a run that starts within EARLY_CANCEL_TTL seconds is cancelled at once
_EARLY: dict[str, float] = {}
EARLY_CANCEL_TTL = 60.0
_EARLY_LIMIT = 1000
#: the ids of the runs that ended in this process lately (oldest first), kept once
#: cancel_run has been used: a late cancel of one of them is not a cancel before the start
_ENDED: OrderedDict[str, None] = OrderedDict()
_TRACK_ENDED = False


def active_run(run_id: str) -> RunState | None:
    """The run ``run_id`` if it is executing in this process."""
    return _ACTIVE.get(run_id)


def _take_early(run_id: str, run: RunState) -> None:
    with _ACTIVE_LOCK:
        asked = _EARLY.pop(run_id, None)
    if asked is not None and time.monotonic() - asked <= EARLY_CANCEL_TTL:
        run.request_cancel()


def _ended(run_id: str) -> None:
    with _ACTIVE_LOCK:
        _ENDED[run_id] = None
        if len(_ENDED) > _EARLY_LIMIT:
            _ENDED.popitem(last=False)


def cancelling() -> None:
    """cancel_run is in use: from now on, remember which runs ended (see cancel_early)."""
    global _TRACK_ENDED
    _TRACK_ENDED = True


def cancel_early(run_id: str) -> None:
    """Remember a cancel request for a run that has not started (yet) in this process."""
    now = time.monotonic()
    with _ACTIVE_LOCK:
        if run_id in _ENDED:
            return
        if len(_EARLY) >= _EARLY_LIMIT:  # drop the expired ones, then the oldest
            for key in [k for k, at in _EARLY.items() if now - at > EARLY_CANCEL_TTL]:
                del _EARLY[key]
            while len(_EARLY) >= _EARLY_LIMIT:
                del _EARLY[next(iter(_EARLY))]
        _EARLY[run_id] = now
    run = _ACTIVE.get(run_id)  # it started meanwhile, after looking at _EARLY: cancel it here
    if run is not None:
        _take_early(run_id, run)


def started(run_id: str, run: RunState) -> None:
    """``run`` starts executing here (a cancel asked for before its start reaches it)."""
    _ACTIVE[run_id] = run
    if _EARLY:
        _take_early(run_id, run)


def ended(run_id: str, run: RunState) -> None:
    """``run`` stopped executing here."""
    if _ACTIVE.get(run_id) is run:
        _ACTIVE.pop(run_id, None)
    if _TRACK_ENDED:
        _ended(run_id)
