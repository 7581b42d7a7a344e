"""In-memory storage: for tests and short-lived processes (``memory://``)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from plait.storage._base import (
    CacheEntry,
    CallRecord,
    HistoryRecord,
    RunRecord,
    SessionRecord,
    StepCheckpoint,
    Storage,
    lease_record,
    status_spellings,
)
from plait.storage._claims import (
    LEASE_PREFIX,
    LIMITED_STATUSES,
    check_claim,
    check_limits,
    claimable_statuses,
    lease_live,
)
from plait.storage._retention import (
    INTERNAL,
    check_not_leased,
    history_origin,
    internal_keys,
    stale_rows,
)
from plait.storage._shared import shared_keys

__all__ = ["MemoryStorage"]


class MemoryStorage(Storage):
    """Keeps everything in dicts of JSON strings, so values round-trip exactly as they
    would through a database (and unserializable values fail the same way)."""

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._runs: dict[str, str] = {}
        self._checkpoints: dict[str, dict[str, str]] = {}
        self._sessions: dict[str, str] = {}
        self._events: dict[str, list[str]] = {}
        self._cache: dict[str, str] = {}
        self._calls: dict[str, list[str]] = {}
        self._payloads: dict[str, str] = {}
        self._history: dict[tuple[str, str], list[str]] = {}
        self._lock = threading.Lock()

    async def setup(self) -> None:
        return None

    async def save_run(self, run: RunRecord) -> None:
        self._runs[run.run_id] = run.model_dump_json()

    async def get_run(self, run_id: str) -> RunRecord | None:
        raw = self._runs.get(run_id)
        return None if raw is None else RunRecord.model_validate_json(raw)

    async def list_runs(
        self,
        *,
        limit: int = 50,
        status: str | None = None,
        workflow_id: str | None = None,
        user_id: str | None = None,
        session_id: str | None = None,
        offset: int = 0,
    ) -> list[RunRecord]:
        runs = [RunRecord.model_validate_json(raw) for raw in self._runs.values()]
        runs = [
            r
            for r in runs
            if (status is None or r.status in status_spellings(status))
            and (workflow_id is None or r.workflow_id == workflow_id)
            and (user_id is None or r.user_id == user_id)
            and (session_id is None or r.session_id == session_id)
        ]
        runs.sort(key=lambda r: r.created_at, reverse=True)
        return runs[offset : offset + limit]

    async def save_checkpoints(self, checkpoints: list[StepCheckpoint]) -> None:
        for checkpoint in checkpoints:
            run = self._checkpoints.setdefault(checkpoint.run_id, {})
            run.pop(checkpoint.step_id, None)  # a replaced checkpoint moves to the end
            run[checkpoint.step_id] = checkpoint.model_dump_json()

    async def load_checkpoints(self, run_id: str) -> list[StepCheckpoint]:
        return [StepCheckpoint.model_validate_json(raw) for raw in self._checkpoints.get(run_id, {}).values()]

    async def save_session(self, session: SessionRecord) -> None:
        self._sessions[session.session_id] = session.model_dump_json()

    async def load_session(self, session_id: str) -> SessionRecord | None:
        raw = self._sessions.get(session_id)
        return None if raw is None else SessionRecord.model_validate_json(raw)

    async def save_session_if(self, session: SessionRecord, expected_version: int) -> bool:
        data = session.model_dump_json()
        with self._lock:  # threads with loops of their own share this object; no await inside
            raw = self._sessions.get(session.session_id)
            if (0 if raw is None else SessionRecord.model_validate_json(raw).version) != expected_version:
                return False
            self._sessions[session.session_id] = data
            return True

    async def append_events(self, run_id: str, events: list[dict[str, Any]]) -> None:
        self._events.setdefault(run_id, []).extend(json.dumps(e) for e in events)

    async def load_events(self, run_id: str, *, after: int = 0) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in self._events.get(run_id, [])[after:]]

    async def save_calls(self, calls: list[CallRecord], payloads: dict[str, str]) -> None:
        with self._lock:
            for digest, text in payloads.items():
                self._payloads.setdefault(digest, text)
            for call in calls:
                self._calls.setdefault(call.run_id, []).append(call.model_dump_json())

    async def load_calls(self, run_id: str) -> list[CallRecord]:
        return [CallRecord.model_validate_json(raw) for raw in self._calls.get(run_id, [])]

    async def load_payloads(self, hashes: list[str]) -> dict[str, str]:
        return {h: self._payloads[h] for h in hashes if h in self._payloads}

    async def append_history(self, record: HistoryRecord) -> None:
        data = record.model_dump_json()
        with self._lock:
            self._history.setdefault((record.session_id, record.agent_id), []).append(data)

    async def load_history(
        self, session_id: str, agent_id: str, *, limit: int | None = None
    ) -> list[HistoryRecord]:
        with self._lock:
            rows = list(self._history.get((session_id, agent_id), []))
        if limit is not None:
            rows = rows[-limit:] if limit > 0 else []
        return [HistoryRecord.model_validate_json(raw) for raw in rows]

    async def clear_history(self, session_id: str, agent_id: str) -> None:
        with self._lock:
            self._history.pop((session_id, agent_id), None)

    async def get_cache(self, key: str) -> CacheEntry | None:
        raw = self._cache.get(key)
        if raw is None:
            return None
        entry = CacheEntry.model_validate_json(raw)
        return None if entry.expired else entry

    async def put_cache(self, entry: CacheEntry) -> None:
        self._cache[entry.key] = entry.model_dump_json()

    # -- retention (plait.storage._retention) --------------------------------------------

    async def delete_run(self, run_id: str, *, force: bool = False) -> bool:
        lease_key, cancel_key = internal_keys(run_id)
        with self._lock:  # no await inside: atomic for every thread sharing this object
            lease = self._sessions.get(lease_key)
            check_not_leased(run_id, None if lease is None else json.loads(lease)["state"], force)
            raw = self._runs.pop(run_id, None)
            checkpoints = self._checkpoints.pop(run_id, {}).values()
            for shared in shared_keys(json.loads(row)["state"] for row in checkpoints):
                self._payloads.pop(shared, None)  # its session-state values stored once (only it has them)
            self._events.pop(run_id, None)
            self._sessions.pop(lease_key, None)
            self._sessions.pop(cancel_key, None)
            calls = [CallRecord.model_validate_json(c) for c in self._calls.pop(run_id, [])]
            mine = {h for c in calls for h in (c.request, c.response)}
            if mine:
                for rows in self._calls.values():
                    for other in rows:
                        call = CallRecord.model_validate_json(other)
                        mine -= {call.request, call.response}
                for digest in mine:
                    self._payloads.pop(digest, None)
            if raw is not None:
                session_id = RunRecord.model_validate_json(raw).session_id
                origin = history_origin(run_id)
                for key, rows in list(self._history.items()):
                    if key[0] == session_id:
                        kept = [r for r in rows if not (json.loads(r).get("origin") or "").startswith(origin)]
                        self._history[key] = kept
            return raw is not None

    async def prune_leases(self) -> int:
        with self._lock:
            rows = {
                k: json.loads(raw)["state"] for k, raw in self._sessions.items() if k.startswith(INTERNAL)
            }
            stale = stale_rows(rows)
            for key in stale:
                del self._sessions[key]
            return len(stale)

    async def list_sessions(
        self, *, limit: int = 50, offset: int = 0, workflow_id: str | None = None
    ) -> list[SessionRecord]:
        with self._lock:
            stored = {
                key: SessionRecord.model_validate_json(raw)
                for key, raw in self._sessions.items()
                if not key.startswith(INTERNAL)
            }
            if workflow_id is None:
                for (session_id, _), rows in self._history.items():
                    if rows and session_id not in stored:
                        last = HistoryRecord.model_validate_json(rows[-1]).created_at
                        stored[session_id] = SessionRecord(
                            session_id=session_id, workflow_id="", updated_at=last
                        )
        found = [s for s in stored.values() if workflow_id is None or s.workflow_id == workflow_id]
        found.sort(key=lambda s: s.updated_at, reverse=True)
        return found[offset : offset + limit]

    async def delete_session(self, session_id: str) -> bool:
        with self._lock:
            existed = self._sessions.pop(session_id, None) is not None
            for key in [k for k in self._history if k[0] == session_id]:
                existed = bool(self._history.pop(key)) or existed
            return existed

    # -- the work queue (plait.storage._claims) ----------------------------------------

    async def claim_next(
        self,
        workflow_ids: Sequence[str],
        owner: dict[str, Any],
        ttl: float,
        *,
        queued: bool = True,
        limits: Mapping[str, int] | None = None,
    ) -> str | None:
        ids = set(check_claim(workflow_ids, owner, ttl))
        caps = check_limits(limits)
        statuses = claimable_statuses(queued)
        with self._lock:  # the compare-and-set of the leases takes it too; no await inside
            every = [RunRecord.model_validate_json(raw) for raw in self._runs.values()]
            now = time.time()

            def leased(run: RunRecord) -> bool:
                raw = self._sessions.get(LEASE_PREFIX + run.run_id)
                return lease_live(None if raw is None else SessionRecord.model_validate_json(raw), now)

            room = {
                w: cap
                - sum(1 for r in every if r.workflow_id == w and r.status in LIMITED_STATUSES and leased(r))
                for w, cap in caps.items()
            }
            runs = [
                r
                for r in every
                if r.workflow_id in ids and r.status in statuses and room.get(r.workflow_id, 1) > 0
            ]
            runs.sort(key=lambda r: (-r.priority, r.created_at, r.run_id))
            for run in runs:
                raw = self._sessions.get(LEASE_PREFIX + run.run_id)
                held = None if raw is None else SessionRecord.model_validate_json(raw)
                if not lease_live(held, now):
                    record = lease_record(run.run_id, owner, ttl, now, 0 if held is None else held.version)
                    self._sessions[record.session_id] = record.model_dump_json()
                    return run.run_id
        return None
