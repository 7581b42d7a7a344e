"""Durable runs of a workflow: the run record, its lease, the stored session, resuming, answers.

A workflow with storage comes here (:func:`run_stored`) to run under a lease with
its record saved before and after, its checkpoints written through
:class:`~plait._durable.Checkpointer` and its session committed to the storage;
:func:`resume` claims an earlier run, checks the caller's answers to its paused
steps and runs it again from its checkpoints. A run without storage never
imports this module.
"""

from __future__ import annotations

import asyncio
import copy
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plait._context import RunState, StepContext
from plait._definition import fingerprint
from plait._durable import Checkpointer, dump_input, dump_media, dump_state, load_input, load_media, to_json
from plait._io import RunStatus, WorkflowRunOutput
from plait._pause import PendingInput
from plait._sessions import commit_stored
from plait.errors import DefinitionError
from plait.events import Event
from plait.storage import (
    RunClaimedError,
    RunLease,
    RunRecord,
    SessionRecord,
    Storage,
    StorageError,
    claim_run,
    read_checkpoints,
)
from plait.storage._retention import CANCEL_PREFIX

if TYPE_CHECKING:
    from plait.primitives import StepNode
    from plait.workflow import Workflow

__all__ = ["Resume", "request_cancel", "resume", "run_stored", "stored_session"]

#: where a cancel request for a run executing in another process waits for it to see:
#: a session record under an id no caller uses (it starts with NUL), as leases are kept
_CANCEL_PREFIX = CANCEL_PREFIX


@dataclass(slots=True)
class Resume:
    """What continue_run hands to a run: its record, checkpoints and answers."""

    record: RunRecord
    checkpoints: dict[str, Any]
    answers: dict[str, Any]
    #: what the caller decided about the run's budget pauses (plait._budget_pause)
    budget: Any = None


async def stored_session(
    workflow: Workflow, storage: Storage, session_id: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The run's working copy of a stored session and its base (JSON-compatible)."""
    record = await storage.load_session(session_id)
    if record is not None:
        return record.state, copy.deepcopy(record.state)
    initial = to_json(workflow.session_state, "the initial session_state") if workflow.session_state else {}
    return copy.deepcopy(initial), initial


async def update_stored_session(
    workflow: Workflow, storage: Storage, session_id: str, updates: dict[str, Any]
) -> dict[str, Any]:
    """Set ``updates``' keys in the stored session with compare-and-set, retrying against
    runs (or other updates) that save the session at the same time; the state saved."""
    from plait._sessions import COMMIT_ATTEMPTS

    changes = to_json(updates, f"the session state updates of session {session_id!r}")
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        current = await storage.load_session(session_id)
        if current is None:
            state, version = (await stored_session(workflow, storage, session_id))[0], 0
        else:
            state, version = current.state, current.version
        state.update(copy.deepcopy(changes))
        record = SessionRecord(
            session_id=session_id, workflow_id=workflow.id, state=state, version=version + 1
        )
        if await storage.save_session_if(record, version):
            return copy.deepcopy(state)
        await asyncio.sleep(min(0.002 * attempt, 0.1))
    raise StorageError(
        f"Workflow {workflow.name!r}: update_session_state of session {session_id!r} lost the race to "
        f"other writers {COMMIT_ATTEMPTS} times"
    )


async def run_stored(
    workflow: Workflow,
    storage: Storage,
    ctx: StepContext,
    input: Any,
    additional_data: dict[str, Any] | None,
    base: dict[str, Any],
    stored_events: list[Event],
    resume: Resume | None,
    where: str,
) -> WorkflowRunOutput:
    """Run ``workflow`` durably: record, lease, checkpoints, stored session (``ctx.state``)."""
    run = ctx.run
    frame = ctx.frame
    run_id, session_id, state = frame.run_id, frame.session_id, ctx.state
    run.storage = storage
    run.checkpointer = Checkpointer(storage, run_id, workflow.durability)
    if resume is not None:
        run.restored = resume.checkpoints
        run.answers = resume.answers
        record = resume.record
        record.status = RunStatus.RUNNING.value
        record.pause = None
        record.definition = fingerprint(workflow)  # what the run goes on with (checked by resume)
        record.retention = workflow.retention  # the code's retention from now on
        await _clear_cancel(storage, run_id)  # an earlier attempt's request is spent
    else:
        input = workflow._validate_input(input)
        record = RunRecord(
            run_id=run_id,
            workflow_id=workflow.id,
            workflow_name=workflow.name,
            session_id=session_id,
            status=RunStatus.RUNNING.value,
            input=dump_input(input, f"the input of workflow {workflow.name!r}"),
            media=dump_media(run.media, f"the media of a run of workflow {workflow.name!r}"),
            target=workflow.target,
            session_base=base,
            user_id=run.user_id,
            metadata=None if run.metadata is None else dump_state(run.metadata, "the run's metadata"),
            lineage=run.lineage,
            definition=fingerprint(workflow),
            retention=workflow.retention,
        )
    from plait._record_store import for_stored_run  # records and answers model and tool calls

    def on_fork(step_id: str, change: dict[str, Any]) -> None:  # a resumed fork: its fork point again
        if run.fork is None:
            from plait._fork import resumed_point

            run.fork = resumed_point(step_id, change, workflow)

    run.recorder = await for_stored_run(workflow, storage, run_id, resume is not None, on_fork)
    # the run's lease says who executes it: a resumer elsewhere sees it and does not run it too
    lease = await claim_run(storage, run_id, ttl=workflow.lease_ttl) if resume is None else None
    watcher = _watch_cancel(storage, run_id, run, workflow.cancel_check_interval)
    from plait._budget_pause import BudgetLedger, ledger_scope  # what the run's budgets spent

    spent = (record.metrics or {}).get("budget") if resume is not None else None
    ledger = BudgetLedger(spent, None if resume is None else resume.budget)
    ledger_token = ledger_scope(ledger)

    events = _EventWriter(storage, run_id, stored_events if workflow.store_events else _NO_EVENTS)

    async def save_spent() -> None:  # with each write of checkpoints: a crash keeps what was spent
        if ledger.meters:
            record.metrics = {**(record.metrics or {}), "budget": ledger.to_json()}
            record.updated_at = time.time()
            await storage.save_run(record)

    run.checkpointer.after_save = save_spent
    try:
        from plait._blobs import save_blobs

        await save_blobs(storage, record.input, record.media)  # the media of its input, stored once
        await storage.save_run(record)
        try:
            output = await workflow._execute(input, ctx, additional_data)
        except BaseException as exc:
            # Ctrl-C in a sync step on the loop thread arrives as KeyboardInterrupt, elsewhere
            # as cancellation: either way the run was cancelled, and can be resumed.
            cancelled = isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt))
            record.status = (RunStatus.CANCELLED if cancelled else RunStatus.ERROR).value
            if cancelled:  # the reason given to the cancel, never an empty "CancelledError: "
                default = "interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else "cancelled"
                record.error = str(exc) or default
            else:
                record.error = f"{type(exc).__name__}: {exc}"
            await _finish(storage, run, record, events)
            raise
        record.status = output.status.value
        from plait._parts import without_bytes  # the record reports parts by digest

        record.content = to_json(without_bytes(output.content), f"the output of workflow {workflow.name!r}")
        record.error = output.error
        metrics = output.metrics
        record.metrics = {
            "duration": output.duration,
            "input_tokens": metrics.input_tokens,
            "output_tokens": metrics.output_tokens,
        }
        if metrics.cost is not None:  # what its models' prices say it cost (plait.prices)
            record.metrics["cost"] = metrics.cost
        record.pause = {"pending": [p.to_dict() for p in output.pending]} if output.pending else None
        try:
            final = to_json(state, "the session state")
            await commit_stored(storage, session_id, workflow.id, base, final, where=where)
            record.session_base = final  # a resumed run's changes count from here
        except BaseException as exc:
            record.status = RunStatus.ERROR.value
            record.error = f"{type(exc).__name__}: {exc}"
            await _finish(storage, run, record, events)
            raise
        await _finish(storage, run, record, events)
        return output
    finally:
        # Not awaited: whatever it raised, the run's own outcome stands, and a run being torn
        # down (a stream closed early) must get to release its lease; the loop ends it.
        ledger_token.var.reset(ledger_token)
        watcher.cancel()
        watcher.add_done_callback(_consume)
        events.stop()  # written by _finish; a run torn down before it just stops writing
        if lease is not None:
            await lease.release()


def _consume(task: asyncio.Future[None]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: never "exception was never retrieved"


def _watch_cancel(storage: Storage, run_id: str, run: RunState, interval: float) -> asyncio.Future[None]:
    """Look for a cancel request from another process every ``interval`` seconds: in the
    background, and between steps when due (a chain of sync steps never yields the loop)."""
    key = _CANCEL_PREFIX + run_id

    async def poll() -> None:
        run.cancel_due = time.monotonic() + interval
        try:
            request = await storage.load_session(key)
        except StorageError:
            return  # an outage: look again when next due
        if request is not None and request.state.get("cancel"):
            run.request_cancel()

    async def beat() -> None:
        while not run.cancel_requested:
            await asyncio.sleep(max(run.cancel_due - time.monotonic(), 0.0))
            if time.monotonic() >= run.cancel_due:
                await poll()

    run.cancel_poll = poll
    run.cancel_due = time.monotonic() + interval
    return asyncio.ensure_future(beat())


async def _clear_cancel(storage: Storage, run_id: str) -> None:
    key = _CANCEL_PREFIX + run_id
    request = await storage.load_session(key)
    if request is not None and request.state.get("cancel"):
        await storage.save_session(request.model_copy(update={"state": {"cancel": False}}))


async def request_cancel(storage: Storage, run_id: str) -> bool | None:
    """Cancel stored run ``run_id``: None when there is no such run, False unless it is
    running. A run some process executes (it holds the run's lease) gets a request it sees
    within ``cancel_check_interval``; a run whose process died (nobody holds its lease) is
    stored as cancelled at once."""
    record = await storage.get_run(run_id)
    if record is None:
        return None
    if record.status != RunStatus.RUNNING.value:
        return False
    try:
        lease = await claim_run(storage, run_id, ttl=30.0)
    except RunClaimedError:  # a live process executes it: leave the request it looks for
        await storage.save_session(
            SessionRecord(
                session_id=_CANCEL_PREFIX + run_id,
                workflow_id=record.workflow_id,
                state={"cancel": True, "requested_at": time.time()},
            )
        )
        return True
    try:  # nobody does (its process died): the run is ours to mark, under its lease
        record = await storage.get_run(run_id)
        if record is None or record.status != RunStatus.RUNNING.value:
            return False
        record.status = RunStatus.CANCELLED.value
        record.content = f"Workflow run {run_id} was cancelled"
        record.updated_at = time.time()
        await storage.save_run(record)
        return True
    finally:
        await lease.release()


class _EventWriter:
    """A stored run's events, written as it goes: every :data:`EVENT_INTERVAL` seconds while it
    runs (a run that ends sooner writes them once, at its end: a write per step would cost a
    fast run dearly), and the rest when it ends, in order."""

    def __init__(self, storage: Storage, run_id: str, events: list[Event]) -> None:
        self.storage = storage
        self.run_id = run_id
        self.events = events
        self.written = 0
        self._lock = asyncio.Lock()
        self._task = asyncio.ensure_future(self._periodically()) if events is not _NO_EVENTS else None

    async def _periodically(self) -> None:
        while True:
            await asyncio.sleep(EVENT_INTERVAL)
            await self.write()

    async def write(self) -> None:
        async with self._lock:  # one write at a time: the stored order is the run's
            if len(self.events) > self.written:
                batch, self.written = self.events[self.written :], len(self.events)
                await self.storage.append_events(self.run_id, [event.to_dict() for event in batch])

    async def close(self) -> None:
        """Write what is left, after a periodic write in flight."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.write()

    def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            self._task.add_done_callback(_consume)


#: seconds between two writes of a running run's events: others follow it that far behind
EVENT_INTERVAL = 0.5
_NO_EVENTS: list[Event] = []  # a workflow that stores no events (store_events=False)


async def _finish(storage: Storage, run: RunState, record: RunRecord, events: _EventWriter) -> None:
    """Write what the run leaves behind: its checkpoints, events and record (with what its
    budgets spent, which a resumed run carries on from)."""
    record.updated_at = time.time()
    from plait._budget_pause import LEDGER

    ledger = LEDGER.get()
    if ledger is not None and (ledger.meters or ledger.stored):
        record.metrics = {**(record.metrics or {}), "budget": ledger.to_json()}
    try:
        if run.recorder is not None:
            await run.recorder.flush()
        await run.checkpointer.close()
        await events.close()
    finally:
        await storage.save_run(record)


async def resume(
    workflow: Workflow,
    storage: Storage,
    run_id: str,
    *,
    listeners: Sequence[Callable[[Event], None]],
    stream_events: bool,
    answers: dict[str, Any] | None,
    approve: bool | None,
    answer: Any,
    wait: float | bool,
    on_changed: str = "refuse",
    budget: Any = None,
    lease: RunLease | None = None,
) -> WorkflowRunOutput:
    """Claim run ``run_id`` of ``workflow``, check the answers and that the steps it ran are
    still defined as they were (plait._definition), and run it from its checkpoints. A worker
    that claimed the run already (``Storage.claim_next``) passes its ``lease``, and ends it."""
    # Claim the run before reading it: checkpoints read under the lease are the latest, and
    # a second resumer gets a RunClaimedError naming the holder (or waits, with wait=).
    held = lease
    if held is None:
        held = await claim_run(storage, run_id, ttl=workflow.lease_ttl, wait=wait)
    try:
        record = await storage.get_run(run_id)
        if record is None:
            raise DefinitionError(f"Workflow {workflow.name!r}: no run {run_id!r} in {storage!r}")
        if record.workflow_id != workflow.id:
            raise DefinitionError(
                f"run {run_id!r} belongs to workflow {record.workflow_id!r}, not {workflow.id!r}"
            )
        if record.status in (RunStatus.COMPLETED.value, RunStatus.COMPLETED_WITH_ERRORS.value):
            raise DefinitionError(f"run {run_id!r} already ended as {record.status}; nothing to continue")
        checkpoints = {c.step_id: c for c in await read_checkpoints(storage, run_id)}
        from plait._blobs import load_blobs  # the media they refer to, for decoding them

        await load_blobs(
            storage, record.input, record.media, *[(c.output, c.state) for c in checkpoints.values()]
        )
        checkpoints = await _check_definition(workflow, storage, record, checkpoints, on_changed)
        from plait._budget import check_budget
        from plait._budget_pause import budget_decision

        budget = check_budget(budget, f"continue_run of run {run_id!r}")
        answers, decision = budget_decision(record, answers, approve, budget)
        resolved = resolve_answers(workflow, record, answers, approve, answer)
        input = workflow._validate_input(load_input(record.input, f"the stored input of run {run_id!r}"))
        media = load_media(record.media, f"the stored media of run {run_id!r}")
        return await workflow._run(
            input,
            listeners=listeners,
            stream_events=stream_events,
            session_id=record.session_id,
            run_id=run_id,
            resume=Resume(record, checkpoints, resolved, decision),
            **media,
        )
    finally:
        if lease is None:
            await held.release()


async def _check_definition(
    workflow: Workflow, storage: Storage, record: RunRecord, checkpoints: dict[str, Any], on_changed: str
) -> dict[str, Any]:
    """The checkpoints to resume from, once the steps the run ran are checked against the
    code (plait._definition): refused with a diff, or without the restarted steps' checkpoints."""
    from plait._definition import ON_CHANGED, check, restarted, steps_ran

    stored = record.definition
    if on_changed not in ON_CHANGED or (stored is not None and stored != fingerprint(workflow)):
        ran = await steps_ran(storage, record, checkpoints)
        found = check(workflow, record.run_id, stored, ran, on_changed)
        if on_changed == "restart_step" and found:
            return restarted(checkpoints, found)
    return checkpoints


def resolve_answers(
    workflow: Workflow, record: RunRecord, answers: dict[str, Any] | None, approve: bool | None, answer: Any
) -> dict[str, Any]:
    """Map the caller's answers to pending step ids, checking each against its step."""
    pending = [PendingInput.from_dict(p) for p in (record.pause or {}).get("pending", [])]
    pending = [p for p in pending if p.budget is None]  # budget pauses: plait._budget_pause
    by_name = {p.step_name: p.step_id for p in pending}
    resolved: dict[str, Any] = {}
    for key, value in (answers or {}).items():
        resolved[by_name.get(key, key)] = value
    if approve is not None:
        for request in pending:
            if request.kind == "confirm":
                resolved.setdefault(request.step_id, approve)
    if answer is not None:
        if len(pending) != 1:
            ids = ", ".join(p.step_id for p in pending) or "none"
            raise DefinitionError(
                f"answer= needs exactly one pending step; pending: {ids}; use answers={{step_id: ...}}"
            )
        resolved.setdefault(pending[0].step_id, answer)
    nodes = dict(_walk_approvals(workflow.nodes, ""))
    for step_id, value in resolved.items():
        node = nodes.get(_pattern(step_id))
        if node is None:
            known = ", ".join(p.step_id for p in pending) or "none"
            raise DefinitionError(
                f"no approval step {step_id!r} in workflow {workflow.name!r} (pending: {known})"
            )
        resolved[step_id] = node.validate_answer(value, step_id)
    return resolved


def _walk_approvals(nodes: Sequence[StepNode], prefix: str) -> Iterator[tuple[str, Any]]:
    """(step id pattern, node) of every Approval in the tree (loop iterations left out of ids)."""
    from plait.approval import Approval

    for node in nodes:
        step_id = f"{prefix}/{node.name.replace('/', '%2F')}" if prefix else node.name.replace("/", "%2F")
        if isinstance(node, Approval):
            yield step_id, node
        yield from _walk_approvals(node.children(), step_id)


def _pattern(step_id: str) -> str:
    """A step id without loop iteration numbers: ``loop[2]/ask`` -> ``loop/ask``."""
    return re.sub(r"\[\d+\]", "", step_id)
