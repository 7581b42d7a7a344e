"""The HTTP API: workflows, runs, their events (Server-Sent Events), approvals, resume, cancel.

Every route answers JSON; SSE streams carry each stored event as ``data:`` (its JSON),
``event:`` (its name) and ``id:`` (its sequence number in the run), so a client that
reconnects with ``Last-Event-ID`` gets only the events after the last one it had.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt
from sse_starlette.sse import EventSourceResponse

from plait import DefinitionError, RunStatus, Workflow
from plait.storage import RunRecord
from plait_serve._app import ServeError, ServeState

__all__ = ["router"]


def _state(request: Request) -> ServeState:
    state: ServeState = request.app.state.plait
    return state


async def _setup(request: Request) -> None:
    await _state(request).setup()


router = APIRouter(prefix="/api", dependencies=[Depends(_setup)])


class StartRun(BaseModel):
    """The body of ``POST /api/workflows/{name}/runs``."""

    model_config = ConfigDict(extra="forbid")
    input: Any = None
    session_id: str | None = None
    user_id: str | None = None
    queue: StrictBool = Field(
        False, description="store the run as QUEUED for a `plait worker` instead of running it here"
    )
    priority: StrictInt = Field(0, description="with queue: workers take higher priorities first")


class Approve(BaseModel):
    """The body of ``POST /api/runs/{run_id}/approve``: ``approve`` answers the pending
    confirmation ``step`` (a step id or name), or every pending confirmation without ``step``;
    ``answers`` (``{step id or name: answer}``) answers other kinds of pending steps."""

    model_config = ConfigDict(extra="forbid")
    approve: bool
    step: str | None = None
    answers: dict[str, Any] | None = None


class Resume(BaseModel):
    """The body of ``POST /api/runs/{run_id}/resume`` (optional): answers for pending steps."""

    model_config = ConfigDict(extra="forbid")
    answers: dict[str, Any] | None = None


class Fork(BaseModel):
    """The body of ``POST /api/runs/{run_id}/fork``, as ``workflow.fork(run_id, at=...)``:
    ``state`` merged into the session state at ``at``; ``input`` replaces what ``at``
    receives, or ``output`` what it returns (give at most one); ``replay`` answers the calls
    that still match the original's record."""

    model_config = ConfigDict(extra="forbid")
    at: str
    state: dict[str, Any] | None = None
    input: Any = None
    output: Any = None
    replay: bool = False


class Replay(BaseModel):
    """The body of ``POST /api/runs/{run_id}/replay`` (optional): ``live`` makes the calls the
    original's record does not have for real instead of failing."""

    model_config = ConfigDict(extra="forbid")
    live: bool = False


class Started(BaseModel):
    """A run started or continued in the background."""

    run_id: str
    status: str = Field(description="the run's status when the answer was sent")


class Replayed(Started):
    """A replay started in the background."""

    replay_of: str


def _describe(workflow: Workflow) -> dict[str, Any]:
    schema: Any = workflow.input_schema
    return {
        "id": workflow.id,
        "name": workflow.name,
        "description": workflow.description,
        "input_schema": schema.model_json_schema() if hasattr(schema, "model_json_schema") else None,
        "graph": workflow.to_graph(),
        "mermaid": workflow.to_mermaid(),
    }


def _run_json(record: RunRecord) -> dict[str, Any]:
    data = record.model_dump(mode="json")
    data.pop("session_base", None)  # the engine's bookkeeping, not the run's
    return data


def _sse(state: ServeState, run_id: str, after: int) -> EventSourceResponse:
    async def stream() -> AsyncIterator[dict[str, Any]]:
        async for stored in state.runs().follow(run_id, after):
            yield {
                "id": str(stored.seq),
                "event": stored.data.get("event", "message"),
                "data": json.dumps(stored.data),
            }

    return EventSourceResponse(stream(), ping=15)


async def _record(state: ServeState, run_id: str) -> RunRecord:
    record = await state.storage.get_run(run_id)
    if record is None:
        raise ServeError(404, "not_found", f"no run {run_id!r} in the server's storage")
    return record


def _after(last_event_id: str | None, after: int | None) -> int:
    if after is not None:
        return after
    if last_event_id is None or not last_event_id.strip():
        return 0
    if not last_event_id.strip().isdigit():
        raise ServeError(
            400, "invalid_request", f"Last-Event-ID must be an event sequence number, got {last_event_id!r}"
        )
    return int(last_event_id)


@router.get("/workflows", summary="The served workflows")
async def list_workflows(request: Request) -> dict[str, Any]:
    """Each served workflow: id, name, description, input JSON schema, graph (``to_graph()``)
    and Mermaid text."""
    return {"workflows": [_describe(w) for w in _state(request).workflows.values()]}


@router.post(
    "/workflows/{name}/runs",
    status_code=202,
    summary="Start a run",
    responses={200: {"description": "with ?stream=true: the run's events (text/event-stream)"}},
)
async def start_run(
    request: Request, name: str, body: StartRun, stream: Annotated[bool, Query()] = False
) -> Any:
    """Start a run of workflow ``name`` (its id or name). It goes on in the background and the
    answer is ``{run_id, status}`` (202), or, with ``?stream=true``, its events as SSE. Input
    that does not match the workflow's input schema is refused (422) before any run is stored."""
    state = _state(request)
    workflow = state.workflow(name)
    if body.queue:
        if stream:
            raise ServeError(
                422, "queued_stream", "a queued run executes in a worker: start it, then follow its events"
            )
        queued = await workflow.astart(
            body.input, queue=True, priority=body.priority, session_id=body.session_id, user_id=body.user_id
        )
        return Started(run_id=queued.run_id, status=RunStatus.QUEUED.value)
    if "priority" in body.model_fields_set:
        raise ServeError(
            422, "priority_without_queue", "priority orders queued runs: give it with queue: true"
        )
    options = {"session_id": body.session_id, "user_id": body.user_id}
    run_id = await state.runs().start(workflow, body.input, options)
    if stream:
        return _sse(state, run_id, 0)
    return Started(run_id=run_id, status=RunStatus.RUNNING.value)


@router.get("/runs", summary="List runs")
async def list_runs(
    request: Request,
    workflow: str | None = None,
    status: str | None = None,
    session_id: str | None = None,
    user_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Stored runs, newest first, filtered by workflow (id or name), status, session, user."""
    state = _state(request)
    workflow_id = None if workflow is None else state.workflow(workflow).id
    if status is not None:
        try:
            status = RunStatus(status.upper()).value
        except ValueError:
            known = ", ".join(s.value for s in RunStatus)
            raise ServeError(
                422, "invalid_request", f"unknown status {status!r}; expected one of {known}"
            ) from None
    runs = await state.storage.list_runs(
        limit=limit,
        status=status,
        workflow_id=workflow_id,
        user_id=user_id,
        session_id=session_id,
        offset=offset,
    )
    return {"runs": [_run_json(r) for r in runs], "limit": limit, "offset": offset}


@router.get("/runs/{run_id}", summary="One run: record, steps, pending inputs, metrics, lineage")
async def get_run(request: Request, run_id: str) -> dict[str, Any]:
    """The run's record (status, input, content, error, metrics, lineage, pending inputs
    under ``pending``), its completed steps (checkpoints, oldest first) and whether this
    server process executes it now."""
    state = _state(request)
    record = await _record(state, run_id)
    checkpoints = await state.storage.load_checkpoints(run_id)
    return {
        "run": _run_json(record),
        "pending": (record.pause or {}).get("pending", []),
        "steps": [
            {"step_id": c.step_id, "output": c.output, "created_at": c.created_at} for c in checkpoints
        ],
        "executing_here": state.runs().executing(run_id),
    }


@router.get(
    "/runs/{run_id}/events",
    summary="Follow a run's events (SSE)",
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def run_events(
    request: Request,
    run_id: str,
    last_event_id: Annotated[str | None, Header()] = None,
    after: Annotated[int | None, Query(ge=0)] = None,
) -> EventSourceResponse:
    """The run's stored events, then the new ones as they come, until it ends or pauses.
    Resume with ``Last-Event-ID`` (or ``?after=N``): only the events after that sequence."""
    state = _state(request)
    start = _after(last_event_id, after)
    if not state.runs().executing(run_id):
        await _record(state, run_id)
    return _sse(state, run_id, start)


async def _continue(state: ServeState, run_id: str, **answers: Any) -> Started:
    record = await _record(state, run_id)
    workflow = state.workflow(record.workflow_id)
    if not await state.runs().settle(run_id):  # a run elsewhere: continue_run checks its lease
        raise ServeError(
            409, "run_executing", f"run {run_id!r} is executing now; wait for it to pause or end"
        )
    if record.status in (RunStatus.COMPLETED.value, RunStatus.COMPLETED_WITH_ERRORS.value):
        raise ServeError(
            409, "run_ended", f"run {run_id!r} already ended as {record.status}; nothing to continue"
        )
    try:
        await state.runs().resume(workflow, run_id, **answers)
    except ValueError as exc:
        now = await _record(state, run_id)
        if state.runs().executing(run_id) or now.status != record.status:  # another request won
            # (the failed attempt's own writer has finished: LiveRuns._drive waits for it)
            raise ServeError(
                409, "run_executing", f"run {run_id!r} was continued by another request; it is {now.status}"
            ) from exc
        if isinstance(exc, DefinitionError):
            raise
        # an answer that does not fit its step: checked before the run goes on
        raise ServeError(422, "invalid_answer", str(exc)) from exc
    return Started(run_id=run_id, status=RunStatus.RUNNING.value)


@router.post("/runs/{run_id}/approve", status_code=202, summary="Approve or reject a pending step")
async def approve_run(request: Request, run_id: str, body: Approve) -> Started:
    """As ``workflow.continue_run(run_id, approve=...)``: the run goes on in the background.
    A wrong answer (no such pending step, a run not paused) is refused before it continues."""
    state = _state(request)
    record = await _record(state, run_id)
    if record.status != RunStatus.PAUSED.value:
        raise ServeError(
            409, "not_paused", f"run {run_id!r} is {record.status}, not PAUSED: nothing to approve"
        )
    answers = dict(body.answers or {})
    if body.step is not None:
        answers[body.step] = body.approve
        return await _continue(state, run_id, answers=answers)
    return await _continue(state, run_id, answers=answers or None, approve=body.approve)


@router.post("/runs/{run_id}/resume", status_code=202, summary="Resume a paused, failed or cancelled run")
async def resume_run(request: Request, run_id: str, body: Resume | None = None) -> Started:
    """As ``workflow.continue_run(run_id, answers)``: from its checkpoints, in the background."""
    return await _continue(_state(request), run_id, answers=None if body is None else body.answers)


#: the stored statuses of a run that has ended (nothing left to cancel)
_ENDED = frozenset(
    status.value
    for status in (RunStatus.COMPLETED, RunStatus.COMPLETED_WITH_ERRORS, RunStatus.ERROR, RunStatus.CANCELLED)
)


@router.post("/runs/{run_id}/cancel", summary="Cancel a running run")
async def cancel_run(request: Request, run_id: str) -> dict[str, Any]:
    """As ``workflow.cancel_run(run_id)``: the run stops at its next safe point, in whichever
    server process executes it. 409 when it is not running."""
    state = _state(request)
    record = await _record(state, run_id)
    workflow = state.workflow(record.workflow_id)
    # a run whose end is stored is over, even in the instant before its process lets go of it
    if record.status in _ENDED or not await workflow.acancel_run(run_id):
        raise ServeError(
            409, "not_running", f"run {run_id!r} is {record.status}, not running: nothing to cancel"
        )
    return {"run_id": run_id, "cancelled": True}


@router.post("/runs/{run_id}/fork", status_code=202, summary="Fork a stored run at a step")
async def fork_run(request: Request, run_id: str, body: Fork) -> Started:
    """A new run from stored run ``run_id``, changed at step ``at`` (``workflow.fork``): the
    steps before ``at`` are restored from the original, the rest run, in the background. The
    answer names the new run."""
    state = _state(request)
    record = await _record(state, run_id)
    workflow = state.workflow(record.workflow_id)
    change: dict[str, Any] = {"at": body.at, "state": body.state, "replay": body.replay}
    for key in ("input", "output"):
        if key in body.model_fields_set:  # given, even as null
            change[key] = getattr(body, key)
    new_id = await state.runs().fork(workflow, run_id, **change)
    return Started(run_id=new_id, status=RunStatus.RUNNING.value)


@router.post("/runs/{run_id}/replay", status_code=202, summary="Replay a stored run from its recorded calls")
async def replay_run(request: Request, run_id: str, body: Replay | None = None) -> Replayed:
    """A new run of the workflow's current code with run ``run_id``'s input, every model and
    tool call answered from the original's record (``workflow.replay``), in the background:
    the answer names the new run (202); follow it like any run. A call the record does not
    have (the code changed) ends the replay as ERROR with the difference as its error, unless
    ``live: true`` makes it for real; the steps whose output changed are in its events (a
    ``Custom`` event with ``replay_differences``)."""
    state = _state(request)
    record = await _record(state, run_id)
    workflow = state.workflow(record.workflow_id)
    if record.status in (RunStatus.RUNNING.value, RunStatus.PENDING.value, RunStatus.QUEUED.value):
        raise ServeError(
            409, "run_executing", f"run {run_id!r} is {record.status}; replay it once it has ended"
        )
    new_id = await state.runs().replay(workflow, run_id, live=body is not None and body.live)
    return Replayed(run_id=new_id, status=RunStatus.RUNNING.value, replay_of=run_id)
