"""Schedules: ``Workflow(schedule="*/5 * * * *", timezone="Europe/Paris", catch_up=False)``.

Workers (:mod:`plait._worker`) start one run per tick of a scheduled workflow, exactly once
across every worker: a tick is claimed in the storage (a session record under an id no caller
uses, written with compare-and-set from version 0, so one claimer wins) before its run is
queued, with a run id derived from the tick. The schedule's cursor (the last tick started) is
kept the same way; ticks missed while no worker ran are skipped (``catch_up=False``: only the
latest one runs) or all started (``catch_up=True``). The cron expression is croniter's (five
fields, or six with seconds last), in ``timezone`` (an IANA name; default UTC).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from plait.errors import DefinitionError
from plait.storage import SessionRecord, Storage

if TYPE_CHECKING:
    from plait.workflow import Workflow

__all__ = ["Schedule", "describe", "start_due"]

_TICK_PREFIX = "\x00plait-tick:"
_CURSOR_PREFIX = "\x00plait-schedule:"
#: at most this many missed ticks are started at once with catch_up=True
MAX_CATCH_UP = 1000


class Schedule:
    """A checked cron schedule in a time zone."""

    def __init__(self, expression: str, timezone: str, catch_up: bool, where: str) -> None:
        try:
            from croniter import croniter
        except ImportError:
            raise DefinitionError(
                f'{where}: schedule= needs croniter; install it with: pip install "plait[schedules]"'
            ) from None
        if not isinstance(expression, str) or not croniter.is_valid(expression):
            raise DefinitionError(
                f"{where}: schedule must be a cron expression such as '*/5 * * * *', got {expression!r}"
            )
        try:
            self.zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise DefinitionError(
                f"{where}: timezone must be an IANA time zone such as 'Europe/Paris', got {timezone!r}"
            ) from None
        if not isinstance(catch_up, bool):
            raise DefinitionError(f"{where}: catch_up must be True or False, got {catch_up!r}")
        self.expression, self.timezone, self.catch_up = expression, timezone, catch_up

    def ticks(self, after: float, until: float) -> list[float]:
        """The ticks in (``after``, ``until``], as UNIX times."""
        from croniter import croniter

        found: list[float] = []
        cursor = croniter(self.expression, dt.datetime.fromtimestamp(after, self.zone))
        while len(found) <= MAX_CATCH_UP:
            tick = cursor.get_next(float)
            if tick > until:
                break
            found.append(tick)
        return found

    def next_tick(self, after: float) -> float:
        from croniter import croniter

        value: float = croniter(self.expression, dt.datetime.fromtimestamp(after, self.zone)).get_next(float)
        return value


async def _claim(storage: Storage, key: str, state: dict[str, Any], expected: int) -> bool:
    record = SessionRecord(session_id=key, workflow_id="", state=state, version=expected + 1)
    return await storage.save_session_if(record, expected)


async def start_due(workflow: Workflow, storage: Storage, now: float | None = None) -> list[str]:
    """Queue the runs of the ticks of ``workflow``'s schedule due by ``now`` that no worker has
    started yet; the run ids this call queued (each tick's run is queued by one caller only)."""
    from plait._queue import enqueue

    schedule: Schedule | None = workflow._schedule
    assert schedule is not None
    now = time.time() if now is None else now
    key = _CURSOR_PREFIX + workflow.id
    cursor = await storage.load_session(key)
    if cursor is None:  # first seen now: ticks count from here, nothing before
        await _claim(storage, key, {"last": now}, 0)
        return []
    due = schedule.ticks(float(cursor.state.get("last", now)), now)
    if not due:
        return []
    if not schedule.catch_up:
        due = due[-1:]
    if not await _claim(storage, key, {"last": due[-1]}, cursor.version):
        return []  # another worker moved the cursor first: those ticks are its
    started = []
    for tick in due:
        # the tick itself too: a cursor that went back (a restored backup) never starts one twice
        if not await _claim(storage, f"{_TICK_PREFIX}{workflow.id}:{tick!r}", {"at": time.time()}, 0):
            continue
        run_id = f"{workflow.id}:schedule:{tick_label(tick)}"
        queued = await enqueue(workflow, None, run_id, 0, {"metadata": {"scheduled_for": tick}})
        started.append(queued.run_id)
    return started


def tick_label(tick: float) -> str:
    return dt.datetime.fromtimestamp(tick, dt.UTC).strftime("%Y%m%dT%H%M%SZ")


async def describe(workflow: Workflow, storage: Storage) -> dict[str, Any]:
    """What ``plait schedule list`` prints of one scheduled workflow."""
    schedule = workflow._schedule
    assert schedule is not None
    cursor = await storage.load_session(_CURSOR_PREFIX + workflow.id)
    last = None if cursor is None else cursor.state.get("last")
    return {
        "workflow": workflow.id,
        "schedule": schedule.expression,
        "timezone": schedule.timezone,
        "catch_up": schedule.catch_up,
        "last_tick": None if last is None else tick_label(float(last)),
        "next_tick": tick_label(schedule.next_tick(max(float(last or 0), time.time()))),
    }
