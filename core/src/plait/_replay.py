"""Replay: a stored run again, under the workflow's current code, answered from its record.

:func:`replay` starts a new stored run (lineage ``{"replay_of": run_id}``) from the original's
input and starting session state, with a strict recorder (plait._record) whose source is the
original's recorded calls: every model and tool call is answered from them, and one they do not
have raises :class:`~plait.errors.ReplayDivergenceError` (``live=True``: it is made for real).
Function steps run again; the steps whose stored output differs from the original's are listed
on the output's ``replay_differences`` and, as a ``Custom`` event whose data holds them, in the
replay's stored events.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from plait import _workflow_run
from plait._durable import load_input, load_media, load_state
from plait._io import WorkflowRunOutput
from plait._record import REPLAY, ReplayRequest
from plait._record_store import supports_calls
from plait.errors import DefinitionError, ReplayDivergenceError
from plait.events import CustomEvent, Event

if TYPE_CHECKING:
    from plait.storage import Storage
    from plait.workflow import Workflow

__all__ = ["differences", "replay"]


async def replay(
    workflow: Workflow,
    run_id: str,
    *,
    live: bool = False,
    listeners: Sequence[Callable[[Event], None]] = (),
    stream_events: bool = False,
) -> WorkflowRunOutput:
    storage = await workflow._ready_storage()
    where = f"Workflow {workflow.name!r}"
    if storage is None:
        raise DefinitionError(f"{where}: replay needs the storage the run was recorded in (storage=...)")
    if not supports_calls(storage):
        raise DefinitionError(f"{where}: {storage!r} does not record model and tool calls; nothing to replay")
    record = await storage.get_run(run_id)
    if record is None:
        raise DefinitionError(f"{where}: no run {run_id!r} in {storage!r} to replay")
    if record.workflow_id != workflow.id:
        raise DefinitionError(
            f"run {run_id!r} belongs to workflow {record.workflow_id!r}, not {workflow.id!r}"
        )
    metadata = (
        None if record.metadata is None else load_state(record.metadata, f"the metadata of run {run_id!r}")
    )
    from plait._blobs import load_blobs  # the bytes of the media its input refers to

    await load_blobs(storage, record.input, record.media)
    media = load_media(record.media, f"the stored media of run {run_id!r}")
    request = ReplayRequest(run_id, live)
    token = REPLAY.set(request)
    try:
        output = await _workflow_run.run(
            workflow,
            workflow._validate_input(load_input(record.input, f"the stored input of run {run_id!r}")),
            listeners=listeners,
            stream_events=stream_events,
            session_state=dict(record.session_base or {}),
            user_id=record.user_id,
            metadata=metadata,
            lineage={"replay_of": run_id},
            # its steps see the session's conversation and earlier runs as the original's saw them
            history_from=(record.session_id, record.created_at),
            **media,
        )
    except Exception as exc:
        diverged = _divergence(exc) or (request.recorder.divergence if request.recorder is not None else None)
        if diverged is not None and diverged is not exc:
            raise diverged from exc
        raise
    finally:
        REPLAY.reset(token)
    if request.recorder is not None and request.recorder.divergence is not None:
        raise request.recorder.divergence  # a step that turned it into data (on_error) hid it
    found = await differences(storage, run_id, output.run_id)
    output.replay_differences = found
    if found:  # stored with the replay's events, for `plait runs` and event consumers
        event = CustomEvent(
            run_id=output.run_id,
            session_id=output.session_id,
            workflow_id=workflow.id,
            workflow_name=workflow.name,
            data={"replay_of": run_id, "replay_differences": found},
        )
        await storage.append_events(output.run_id, [event.to_dict()])
    return output


def _divergence(exc: BaseException) -> ReplayDivergenceError | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ReplayDivergenceError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


async def differences(storage: Storage, original: str, replayed: str) -> list[dict[str, Any]]:
    """The steps whose stored output content differs between two runs (or that only one has)."""
    before = {c.step_id: c.output.get("content") for c in await storage.load_checkpoints(original)}
    after = {c.step_id: c.output.get("content") for c in await storage.load_checkpoints(replayed)}
    found = []
    for step_id in [*before, *(s for s in after if s not in before)]:
        old, new = before.get(step_id), after.get(step_id)
        if step_id not in after or step_id not in before or old != new:
            found.append({"step_id": step_id, "original": old, "replay": new})
    return found
