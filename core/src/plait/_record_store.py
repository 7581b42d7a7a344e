"""Recorded calls in a run's storage: written by :class:`StorageSink`, read by :func:`load_recorded`;
:func:`for_stored_run` makes the recorder of a run with storage.

Payloads are stored content-addressed (:meth:`plait.storage.Storage.save_calls`): identical
payloads are stored once; one shorter than :data:`INLINE` (not a model request) is kept in its
call's record instead. Each model request of an agent's tool loop holds the whole message
history, so storing every request whole grows as O(N²) over N rounds. A model request is
therefore stored as a *delta* of the previous request of the same step and attempt when they
share messages: a JSON object with the format marker ``"plait_request_delta": 1``, the hash of
the previous request's stored payload (``base``), how many of its messages to keep (``keep``),
the messages added (``add``) and the other fields that changed (``set``, ``drop``). Reading
rebuilds the full request; a payload without the marker (every record written before this
format, and every first request) is the request itself. Fingerprints are computed on the full
request, so they do not change.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from plait._blobs import blob_payloads
from plait._record_data import Recorded, canonical, fingerprint

if TYPE_CHECKING:
    from plait._record import Recorder
    from plait.storage import CallRecord, Storage

__all__ = [
    "DELTA",
    "INLINE",
    "StorageSink",
    "for_stored_run",
    "load_recorded",
    "rebuild_request",
    "supports_calls",
    "to_records",
]

#: the key (and version) that marks a stored model request as a delta of an earlier one
DELTA = "plait_request_delta"

#: a request is stored whole when its delta would keep fewer messages than this
_MIN_KEEP = 2

#: a payload shorter than this (in characters) is kept in its call's record
#: (:attr:`CallRecord.inline`), not stored apart: a stored payload costs a row and its hash
#: twice (about 150 bytes) and, on SQLite, two more pages written per call; what is given up is
#: storing once the short payloads that repeat. Model requests are always stored apart: the
#: next request's delta refers to them.
INLINE = 512


class StorageSink:
    """Writes recorded calls to a run's storage. With ``durability="step"`` each call is written
    when it completes, before the agent goes on (a crash inside a step loses no completed call:
    resuming answers it from the record); else they are buffered and written with the run's
    checkpoints when it ends (and every 64 calls)."""

    #: store model requests as deltas (False: whole, the format before; for measurements)
    deltas = True

    def __init__(self, storage: Storage, run_id: str, immediate: bool) -> None:
        self.storage = storage
        self.run_id = run_id
        self.immediate = immediate
        self._buffer: list[Recorded] = []
        #: by (step id, attempt): the last model request written (the base of the next delta)
        self._last: dict[tuple[str, int], tuple[dict[str, Any], str]] = {}

    async def __call__(self, items: list[Recorded]) -> None:
        self._buffer.extend(items)
        if self.immediate or len(self._buffer) >= 64:
            await self.flush()

    async def flush(self) -> None:
        while self._buffer:
            pending, self._buffer = self._buffer, []
            records, payloads = to_records(self.run_id, pending, self._last if self.deltas else None)
            # the bytes of the images, audio and files the requests refer to, once (plait._blobs)
            payloads.update(blob_payloads(self.storage, *[item.request for item in pending]))
            await self.storage.save_calls(records, payloads)


def _delta(request: dict[str, Any], base: dict[str, Any], base_hash: str) -> dict[str, Any] | None:
    """``request`` as a delta of ``base`` (stored as ``base_hash``), or None when not worth it."""
    new, old = request.get("messages"), base.get("messages")
    if not isinstance(new, list) or not isinstance(old, list):
        return None
    keep = 0
    for a, b in zip(new, old, strict=False):
        if a != b:
            break
        keep += 1
    if keep < _MIN_KEEP:
        return None
    delta: dict[str, Any] = {DELTA: 1, "base": base_hash, "keep": keep, "add": new[keep:]}
    changed = {k: v for k, v in request.items() if k != "messages" and (k not in base or base[k] != v)}
    if changed:
        delta["set"] = changed
    dropped = sorted(k for k in base if k not in request)
    if dropped:
        delta["drop"] = dropped
    return delta


def to_records(
    run_id: str,
    items: list[Recorded],
    last: dict[tuple[str, int], tuple[dict[str, Any], str]] | None = None,
) -> tuple[list[CallRecord], dict[str, str]]:
    """Call records and the payloads they reference (by hash). With ``last`` (kept across
    calls by :class:`StorageSink`), model requests are stored as deltas of the previous one."""
    from plait.storage import CallRecord

    records: list[CallRecord] = []
    payloads: dict[str, str] = {}
    now = time.time()
    for item in items:
        request = None
        if last is not None and item.kind == "model" and isinstance(item.request, dict):
            place = (item.step_id, item.attempt)
            previous = last.get(place)
            delta = None if previous is None else _delta(item.request, *previous)
            if delta is not None:
                request = canonical(delta)
        if request is None:
            if item.request_text is not None:
                request = item.request_text
                request_hash = item.request_hash or fingerprint(request)
            else:
                request = canonical(item.request)
                request_hash = fingerprint(request)
        else:
            request_hash = fingerprint(request)
        response = canonical(item.response)
        response_hash = fingerprint(response)
        if last is not None and item.kind == "model" and isinstance(item.request, dict):
            last[(item.step_id, item.attempt)] = (item.request, request_hash)
        inline = {}
        for digest, text, small in (
            (request_hash, request, item.kind != "model" and len(request) < INLINE),
            (response_hash, response, len(response) < INLINE),
        ):
            if small:
                inline[digest] = text
            else:
                payloads[digest] = text
        records.append(
            CallRecord(
                run_id=run_id,
                step_id=item.step_id,
                attempt=item.attempt,
                index=item.index,
                kind=item.kind,
                name=item.name,
                fingerprint=item.fingerprint,
                request=request_hash,
                response=response_hash,
                created_at=now,
                inline=inline,
            )
        )
    return records, payloads


def rebuild_request(digest: str, parsed: dict[str, Any], built: dict[str, Any]) -> Any:
    """The full request stored as ``digest``: the payload itself, or a delta applied to its
    rebuilt base (``parsed``: stored payloads by hash, as JSON; ``built``: requests rebuilt so
    far, which makes rebuilding a whole run's requests linear)."""
    chain: list[tuple[str, dict[str, Any]]] = []
    current = digest
    while current not in built:  # walk back to a base already rebuilt, or stored whole
        data = parsed[current]
        if not _is_delta(data):
            built[current] = data
            break
        chain.append((current, data))
        current = data["base"]
    request = built[current]
    for key, delta in reversed(chain):
        full = {k: v for k, v in request.items() if k not in delta.get("drop", ())}
        full.update(delta.get("set", {}))
        full["messages"] = [*request["messages"][: delta["keep"]], *delta["add"]]
        built[key] = request = full
    return request


def _is_delta(data: Any) -> bool:
    return isinstance(data, dict) and data.get(DELTA) == 1


def _missing_bases(parsed: dict[str, Any], hashes: set[str]) -> set[str]:
    """The bases the deltas among ``hashes`` reference that are not loaded."""
    return {
        parsed[h]["base"]
        for h in hashes
        if h in parsed and _is_delta(parsed[h]) and parsed[h].get("base") not in parsed
    }


async def load_recorded(storage: Storage, run_id: str) -> list[Recorded]:
    """A stored run's recorded calls, oldest first, with their payloads (requests rebuilt)."""
    records = await storage.load_calls(run_id)
    if not records:
        return []
    parsed = {h: json.loads(text) for r in records for h, text in r.inline.items()}
    hashes = sorted({h for r in records for h in (r.request, r.response) if h not in parsed})
    if hashes:
        parsed.update({h: json.loads(text) for h, text in (await storage.load_payloads(hashes)).items()})
    missing = _missing_bases(parsed, {r.request for r in records if r.kind == "model"})
    while missing:  # a base only another run references (payloads are shared): load it too
        loaded = {h: json.loads(text) for h, text in (await storage.load_payloads(sorted(missing))).items()}
        parsed.update(loaded)
        missing = _missing_bases(parsed, set(loaded))
    built: dict[str, Any] = {}

    def request(record: CallRecord) -> Any:
        if record.request not in parsed:
            return None
        if record.kind != "model":
            return parsed[record.request]
        try:
            return rebuild_request(record.request, parsed, built)
        except (KeyError, TypeError, IndexError):  # a base that is gone, or not a request
            return None

    return [
        Recorded(
            r.kind,
            r.step_id,
            r.index,
            r.name,
            r.fingerprint,
            request(r),
            parsed[r.response],
            r.attempt,
        )
        for r in records
        if r.response in parsed
    ]


def supports_calls(storage: Storage) -> bool:
    """Whether a backend stores calls (a third-party one written before schema 3 may not)."""
    from plait.storage import Storage

    return type(storage).save_calls is not Storage.save_calls


async def for_stored_run(
    workflow: Any,
    storage: Storage,
    run_id: str,
    resuming: bool,
    on_fork: Callable[[str, dict[str, Any]], None] | None = None,
) -> Recorder | None:
    """The recorder of a run with storage: records when ``workflow.record``; a resumed run
    answers the calls it had completed from its own record; a replay answers from the original's.
    A resumed fork's stored change goes to ``on_fork(step_id, change)`` (plait._runs sets the
    fork point from it, plait._fork's job) and, forked with ``replay=True``, the fork answers
    from the original's record too."""
    from plait._record import REPLAY, Recorder, ReplayRequest

    replay = REPLAY.get()
    if replay is not None:
        REPLAY.set(None)  # for this run only, not runs its steps may start
    record = getattr(workflow, "record", True)
    if not (record or resuming or replay is not None) or not supports_calls(storage):
        return None
    source: list[Recorded] | None = None
    strict = False
    origin = ""
    earlier: dict[str, int] = {}
    if replay is not None:
        source = await load_recorded(storage, replay.origin)
        strict = not replay.live
        origin = f"run {replay.origin!r}"
    elif resuming:
        source = await load_recorded(storage, run_id)
        change = next((item for item in source if item.kind == "fork"), None)
        if change is not None:
            source = [item for item in source if item.kind != "fork"]
            if on_fork is not None and isinstance(change.request, dict):
                on_fork(change.step_id, change.request)
        for item in source:
            earlier[item.step_id] = max(earlier.get(item.step_id, 0), item.attempt)
        if change is not None and isinstance(change.request, dict) and change.request.get("replay"):
            origin_run = str(change.request.get("forked_from"))  # its own calls first, then the original's
            source = [*source, *await load_recorded(storage, origin_run)]
            replay = ReplayRequest(origin_run, live=True)
        if not source and not record:
            return None
    sink = StorageSink(storage, run_id, workflow.durability == "step") if record else None
    recorder = Recorder(
        source=source,
        sink=sink,
        strict=strict,
        origin=origin,
        earlier=earlier,
        keep_answers=replay is not None,
    )
    if replay is not None:
        replay.recorder = recorder
    return recorder
