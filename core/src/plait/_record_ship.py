"""Recording for branches a runner ships to another process (plait.runners, plait-ray).

A shipped branch runs without the run's :class:`~plait._record.Recorder`, so it gets one of its
own. The parent's recorder hands the branch what it may need (:func:`ship`): the recorded calls of
the branch's steps (a resumed run's own, a replay's original), and how it records (strict or not,
whether it keeps new calls). The child runs with :func:`child_recorder`; :func:`shipped_back`
puts the calls it made (or answered, for a replay) in the :class:`~plait.runners.BranchResult`;
the parent records them with :func:`adopt`. Everything that crosses is plain JSON data (calls as
:meth:`Recorded.to_line` dicts) and, when the run writes each call as it completes, the
run's storage as a factory (:meth:`plait.storage.Storage.reopen`): the branch then writes its
calls to the run's storage itself as they complete (a worker that dies mid-branch loses none of
the calls it finished: resuming answers them), and hands back how many it wrote, which the
parent does not write again. Where the storage cannot be reached from the branch's process
(memory, or a write fails there), the calls travel back with the result, as before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plait._record import Recorded, Recorder
from plait.errors import ReplayDivergenceError

if TYPE_CHECKING:
    from plait.storage import Storage

logger = logging.getLogger("plait.record")

__all__ = ["BranchCalls", "BranchRecord", "adopt", "child_recorder", "ship", "shipped_back"]


@dataclass(slots=True)
class BranchCalls:
    """What a shipped branch's recorder starts from (on :attr:`BranchPayload.recording`)."""

    #: the recorded calls of the branch's steps not answered yet, oldest first (JSON lines)
    calls: list[dict[str, Any]]
    strict: bool
    origin: str
    #: whether the branch's calls are recorded (the parent's recorder has a sink)
    record: bool
    keep_answers: bool
    #: by step id: the highest attempt earlier executions recorded (a resume)
    earlier: dict[str, int] = field(default_factory=dict)
    #: by "kind step_id": how many calls of that kind the step made already in this run
    counts: dict[str, int] = field(default_factory=dict)
    #: the run's storage, as a picklable factory (Storage.reopen), when the branch writes its
    #: calls there itself as they complete; and the run they belong to
    store: Callable[[], Storage] | None = None
    run_id: str = ""


@dataclass(slots=True)
class BranchRecord:
    """What a shipped branch recorded (on :attr:`BranchResult.recording`)."""

    #: the calls to record in the run, in the order they completed (JSON lines)
    calls: list[dict[str, Any]]
    replayed: int = 0
    live: int = 0
    #: the first divergence a strict recorder met there (message, step_id, recorded, request)
    divergence: dict[str, Any] | None = None
    counts: dict[str, int] = field(default_factory=dict)
    #: the recorded calls it answered, as [step id, kind, fingerprint, how many]: they leave
    #: the run's record as they would have in process (a retry of the branch goes live)
    answered: list[list[Any]] = field(default_factory=list)
    #: how many of ``calls`` (the first ones) the branch wrote to the run's storage itself
    written: int = 0


def _under(step_id: str, root: str) -> bool:
    return step_id == root or step_id.startswith(root + "/")


def ship(recorder: Recorder, step_id: str) -> BranchCalls:
    """What the branch at ``step_id`` (and the steps under it) needs from ``recorder``."""
    with recorder._lock:
        pending = [
            item
            for (sid, _kind, _key), queue in recorder._answers.items()
            if _under(sid, step_id)
            for item in queue
        ]
        counts = {f"{kind} {sid}": n for (sid, kind), n in recorder._counts.items() if _under(sid, step_id)}
    pending.sort(key=lambda item: (item.step_id, item.kind, item.attempt, item.index))
    from plait._record_store import StorageSink

    sink = recorder.sink
    store = None
    if isinstance(sink, StorageSink) and sink.immediate:  # each call written as it completes
        store = sink.storage.reopen()
    return BranchCalls(
        calls=[item.to_line() for item in pending],
        strict=recorder.strict,
        origin=recorder.origin,
        record=recorder.sink is not None,
        keep_answers=recorder.keep_answers,
        earlier={sid: n for sid, n in recorder.earlier.items() if _under(sid, step_id)},
        counts=counts,
        store=store,
        run_id=sink.run_id if store is not None else "",  # type: ignore[union-attr]
    )


class Collected(list[Recorded]):
    """The calls a shipped branch made, in order; ``written``: how many of the first ones it
    wrote to the run's storage itself."""

    written = 0


#: the run storages opened in this process for shipped branches, by factory (a worker runs
#: many branches of one storage: one connection pool, closed at exit)
_opened: dict[Any, Storage] = {}
_opened_lock = threading.Lock()


def _open(store: Callable[[], Storage]) -> Storage:
    key = (getattr(store, "func", store), getattr(store, "args", ()), repr(getattr(store, "keywords", {})))
    with _opened_lock:
        storage = _opened.get(key)
        if storage is None:
            storage = _opened[key] = store()
        return storage


def _collector(calls: BranchCalls) -> tuple[Callable[[list[Recorded]], Any], Collected]:
    """The sink of a shipped branch's recorder: collects every call and, when the branch can
    reach the run's storage, writes each one there as it completes (in order; after a failed
    write, the rest only travel back, so ``written`` stays a prefix)."""
    collected = Collected()
    if calls.store is None:

        async def collect(items: list[Recorded]) -> None:
            collected.extend(items)

        return collect, collected
    from plait._record_store import StorageSink
    from plait.storage import StorageError

    writer: StorageSink | None = None
    broken = False

    async def write_through(items: list[Recorded]) -> None:
        nonlocal writer, broken
        collected.extend(items)
        if broken or collected.written != len(collected) - len(items):
            return  # a failed write, or one still under way (concurrent tools): these go back

        try:
            if writer is None:
                assert calls.store is not None
                storage = _open(calls.store)
                await storage.setup()
                # the run's own storage, not one of the same name (another machine's
                # 127.0.0.1, a file at the same path there): the run is in it
                if await storage.get_run(calls.run_id) is None:
                    raise StorageError(f"run {calls.run_id!r} is not in {storage!r} as seen from here")
                writer = StorageSink(storage, calls.run_id, immediate=True)
            await writer(items)
            collected.written += len(items)
        except Exception as exc:  # the parent writes them instead
            broken = True
            logger.warning(
                "a shipped branch could not write its recorded calls (%s): they go back with it", exc
            )

    return write_through, collected


def child_recorder(calls: BranchCalls) -> tuple[Recorder, list[Recorded]]:
    """The recorder a shipped branch runs with, and the list its new calls are collected in."""
    sink, collected = _collector(calls)
    recorder = Recorder(
        source=[Recorded.from_line(line) for line in calls.calls],
        sink=sink if calls.record else None,
        strict=calls.strict,
        origin=calls.origin,
        earlier=dict(calls.earlier),
        keep_answers=calls.keep_answers,
    )
    for key, n in calls.counts.items():
        kind, _, sid = key.partition(" ")
        recorder._counts[(sid, kind)] = n
    recorder.shipped = {place: len(queue) for place, queue in recorder._answers.items()}
    return recorder, collected


def shipped_back(recorder: Recorder, collected: list[Recorded]) -> BranchRecord:
    """What the branch's recorder hands back to the parent."""
    error = recorder.divergence
    divergence = None
    if error is not None:
        divergence = {
            "message": str(error),
            "step_id": error.step_id,
            "recorded": error.recorded,
            "request": error.request,
        }
    return BranchRecord(
        calls=[item.to_line() for item in collected],
        written=getattr(collected, "written", 0),
        replayed=recorder.replayed,
        live=recorder.live,
        divergence=divergence,
        counts={f"{kind} {sid}": n for (sid, kind), n in recorder._counts.items()},
        answered=[
            [*place, n - len(recorder._answers.get(place, ()))]
            for place, n in (recorder.shipped or {}).items()
            if n > len(recorder._answers.get(place, ()))
        ],
    )


async def adopt(recorder: Recorder, record: BranchRecord) -> None:
    """Take what a shipped branch recorded into the run's ``recorder``: its calls are recorded
    (written by the parent's sink), the calls it answered leave the record, its counts and its
    first divergence become the run's."""
    items = [Recorded.from_line(line) for line in record.calls]
    with recorder._lock:
        recorder.replayed += record.replayed
        recorder.live += record.live
        for key, n in record.counts.items():
            kind, _, sid = key.partition(" ")
            place = (sid, kind)
            recorder._counts[place] = max(recorder._counts.get(place, 0), n)
        for sid, kind, fingerprint, n in record.answered:
            queue = recorder._answers.get((sid, kind, fingerprint))
            for _ in range(min(int(n), len(queue or ()))):
                queue.popleft()  # type: ignore[union-attr]
    if record.divergence is not None and recorder.divergence is None:
        data = record.divergence
        recorder.divergence = ReplayDivergenceError(
            str(data.get("message", "")),
            step_id=str(data.get("step_id", "")),
            recorded=data.get("recorded"),
            request=data.get("request"),
        )
    items = items[record.written :]  # the first ones the branch wrote itself
    if items and recorder.sink is not None:
        await recorder.sink(items)
