"""Forking a stored run: a new run that takes the original's steps before a point from its
checkpoints, changes something at that point, and runs from there live.

:func:`fork` loads the original's record and checkpoints, checks the fork step, copies
the checkpoints of the steps before it to the new run (so the fork can itself be resumed,
diffed or forked) and starts the new run with them as restored steps; :class:`ForkPoint`
is what the executor meets at the fork step: it applies the session-state changes, the
replacement input or the replacement output there. A run that is not a fork never imports
this module; the executor looks at the fork point only in a run with restored steps.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from plait._ids import new_id
from plait._io import StepInput, StepOutput, WorkflowRunOutput
from plait.errors import DefinitionError
from plait.events import Event

if TYPE_CHECKING:
    from plait._context import StepContext
    from plait.primitives import StepNode
    from plait.storage import StepCheckpoint
    from plait.workflow import Workflow

__all__ = ["UNSET", "ForkPoint", "fork", "step_ids"]


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


#: "not given" for ``input=`` / ``output=`` (None is a value a step may get or return)
UNSET: Any = _Unset()


class ForkPoint:
    """What a fork changes at its fork step (``step_id``), applied once when the step is reached."""

    __slots__ = ("input", "output", "reached", "state", "step_id")

    def __init__(self, step_id: str, state: dict[str, Any] | None, input: Any, output: Any) -> None:
        self.step_id = step_id
        self.state = state
        self.input = input
        self.output = output
        self.reached = False

    async def arrive(self, node: StepNode, ctx: StepContext, step_input: StepInput) -> StepInput:
        """At the fork step: apply the state changes, then the replacement input (the step
        runs with it) or output (the step does not run: the executor restores it). A resumed
        fork whose fork step had completed restores it as it was."""
        self.reached = True
        if ctx.run.restored is not None and ctx.step_id in ctx.run.restored:
            return step_input
        if self.state:
            ctx.state.update(self.state)
        if self.output is not UNSET:
            from plait._durable import dump_output, dump_state
            from plait.storage import StepCheckpoint

            output = StepOutput(
                content=self.output, step_name=node.name, step_id=ctx.step_id, step_type=node.step_type
            )
            run = ctx.run
            if run.checkpointer is not None:
                await run.checkpointer.record(ctx.step_id, output, ctx.state)
            assert run.restored is not None
            run.restored[ctx.step_id] = StepCheckpoint(
                run_id=ctx.frame.run_id,
                step_id=ctx.step_id,
                output=dump_output(output, ctx.step_id),
                state=dump_state(ctx.state, f"the session state at fork step {ctx.step_id!r}"),
            )
            return step_input
        if self.input is not UNSET:
            return dataclasses.replace(step_input, input=self.input, previous_step_content=self.input)
        return step_input


def _tree(nodes: Sequence[StepNode], prefix: str = "") -> Iterator[tuple[str, StepNode]]:
    """(step id pattern, node) of every node of a tree: a Loop's children as ``loop[*]/child``."""
    from plait.primitives import Loop

    for node in nodes:
        name = node.name.replace("/", "%2F")
        step_id = f"{prefix}/{name}" if prefix else name
        yield step_id, node
        yield from _tree(node.children(), f"{step_id}[*]" if isinstance(node, Loop) else step_id)


def step_ids(nodes: Sequence[StepNode]) -> Iterator[str]:
    """The step id patterns of a tree (a Loop's children as ``loop[*]/child``)."""
    for pattern, _ in _tree(nodes):
        yield pattern


def _node_at(step_id: str, nodes: Sequence[StepNode]) -> StepNode | None:
    for pattern, node in _tree(nodes):
        if re.fullmatch(re.escape(pattern).replace(r"\[\*\]", r"\[\d+\]"), step_id):
            return node
    return None


def _related(a: str, b: str) -> bool:
    """Whether step ``a`` is ``b``, inside ``b``, or contains ``b``."""
    if a == b:
        return True
    inner, outer = (a, b) if len(a) > len(b) else (b, a)
    return inner.startswith(outer) and inner[len(outer)] in "/["


def _parallels_around(at: str, nodes: Sequence[StepNode]) -> list[str]:
    """The ids of the Parallels that ``at`` is inside (its branch's siblings do not depend on it)."""
    from plait.primitives import Parallel

    parts = at.split("/")
    found = []
    for end in range(1, len(parts)):
        prefix = "/".join(parts[:end])
        if isinstance(_node_at(prefix, nodes), Parallel):
            found.append(prefix)
    return found


def before(
    checkpoints: Sequence[StepCheckpoint], at: str, nodes: Sequence[StepNode] = ()
) -> list[StepCheckpoint]:
    """The checkpoints to restore in a fork at ``at``: the steps that completed before ``at``
    did (all of them when ``at`` never completed) and, in a Parallel around ``at``, the other
    branches whenever they finished; never ``at``, the steps inside it or the containers
    around it."""
    parallels = _parallels_around(at, nodes)

    def sibling(step_id: str) -> bool:
        for scope in parallels:
            if step_id.startswith(scope + "/"):
                branch = step_id[len(scope) + 1 :].split("/")[0]
                return branch != at[len(scope) + 1 :].split("/")[0]
        return False

    kept: list[StepCheckpoint] = []
    reached = False
    for checkpoint in checkpoints:
        if checkpoint.step_id == at:
            reached = True
            continue
        if _related(checkpoint.step_id, at):
            continue
        if not reached or sibling(checkpoint.step_id):
            kept.append(checkpoint)
    return kept


async def fork(
    workflow: Workflow,
    run_id: str,
    *,
    at: str,
    state: dict[str, Any] | None,
    input: Any,
    output: Any,
    replay: bool,
    session_id: str | None,
    listeners: Sequence[Callable[[Event], None]],
    stream_events: bool,
) -> WorkflowRunOutput:
    """A new run of ``workflow`` forked from stored run ``run_id`` at step ``at``."""
    where = f"Workflow {workflow.name!r}: fork of run {run_id!r}"
    if not isinstance(at, str) or not at:
        raise DefinitionError(
            f"{where}: at= must be a step id such as 'research' or 'loop[2]/write', got {at!r}"
        )
    if input is not UNSET and output is not UNSET:
        raise DefinitionError(f"{where}: give input= or output= for step {at!r}, not both")
    if state is not None and not isinstance(state, dict):
        raise DefinitionError(f"{where}: state= must be a dict of session-state changes, got {state!r}")
    storage = await workflow._ready_storage()
    if storage is None:
        raise DefinitionError(f"{where} needs storage (Workflow(storage='sqlite:///runs.db'))")
    record = await storage.get_run(run_id)
    if record is None:
        raise DefinitionError(f"{where}: no run {run_id!r} in {storage!r}")
    if record.workflow_id != workflow.id:
        raise DefinitionError(
            f"run {run_id!r} belongs to workflow {record.workflow_id!r}, not {workflow.id!r}"
        )
    from plait.storage import read_checkpoints

    checkpoints = await read_checkpoints(storage, run_id)
    from plait._blobs import load_blobs  # the media they refer to, for decoding them

    await load_blobs(storage, record.input, record.media, *[(c.output, c.state) for c in checkpoints])
    ids = [c.step_id for c in checkpoints]
    if at not in ids and _node_at(at, workflow.nodes) is None:
        known = ", ".join(ids) or "none (the run has no checkpoints)"
        raise DefinitionError(f"{where}: no step {at!r} in the run; its step ids: {known}")
    new_run = new_id()
    now = time.time()
    copies = [
        c.model_copy(update={"run_id": new_run, "created_at": now})
        for c in before(checkpoints, at, workflow.nodes)
    ]
    if copies:  # through a Checkpointer: the fork's large state values are its own (plait.storage._shared)
        from plait._durable import Checkpointer

        await Checkpointer(storage, new_run, "step").save(copies)
    point = ForkPoint(at, state, input, output)
    restored: dict[str, Any] = {c.step_id: c for c in copies}
    from plait._durable import load_state

    metadata = (
        None if record.metadata is None else load_state(record.metadata, f"the metadata of run {run_id!r}")
    )
    token = None
    if replay:
        from plait._record import REPLAY, ReplayRequest
        from plait._record_store import supports_calls

        if not supports_calls(storage):
            raise DefinitionError(
                f"{where}: replay=True needs recorded calls, and {storage!r} does not record them"
            )
        # not strict: the fork changed something, so a request the record lacks goes live
        token = REPLAY.set(ReplayRequest(run_id, live=True))
    try:
        await save_change(storage, new_run, run_id, point, replay)
        return await _start(
            workflow,
            record,
            new_run,
            point,
            restored,
            listeners,
            stream_events,
            session_id,
            metadata,
            run_id,
            at,
        )
    finally:
        if token is not None:
            REPLAY.reset(token)


#: the kind of the recorded call that holds a fork's change (plait._record_store.for_stored_run skips it)
CHANGE = "fork"


async def save_change(storage: Any, new_run: str, origin: str, point: ForkPoint, replay: bool) -> None:
    """Store what the fork changes at its fork step with the fork's record, before it runs: a
    fork that crashes before reaching the step still applies it when resumed (:func:`resumed_point`)."""
    from plait._codec import encode
    from plait._record_data import canonical, fingerprint
    from plait._record_store import supports_calls
    from plait.storage import CallRecord

    if not supports_calls(storage):
        return
    where = f"the change of the fork at step {point.step_id!r}"
    change: dict[str, Any] = {"forked_from": origin, "replay": replay, "state": encode(point.state, where)}
    if point.input is not UNSET:
        change["input"] = encode(point.input, where)
    if point.output is not UNSET:
        change["output"] = encode(point.output, where)
    text = canonical(change)
    digest = fingerprint(text)
    record = CallRecord(
        run_id=new_run, step_id=point.step_id, kind=CHANGE, name=CHANGE, fingerprint=digest,
        request=digest, response=digest,
    )  # fmt: skip
    await storage.save_calls([record], {digest: text})


def resumed_point(step_id: str, change: dict[str, Any], workflow: Any) -> ForkPoint:
    """The fork point a resumed fork meets again, from the change :func:`save_change` stored."""
    from plait._codec import decode
    from plait._durable import declared_types

    declared = [t for node in workflow.nodes for t in declared_types(node)]
    where = f"the stored change of the fork at step {step_id!r}"
    return ForkPoint(
        step_id,
        decode(change.get("state"), where, declared),
        decode(change["input"], where, declared) if "input" in change else UNSET,
        decode(change["output"], where, declared) if "output" in change else UNSET,
    )


async def _start(
    workflow: Workflow,
    record: Any,
    new_run: str,
    point: ForkPoint,
    restored: dict[str, Any],
    listeners: Sequence[Callable[[Event], None]],
    stream_events: bool,
    session_id: str | None,
    metadata: dict[str, Any] | None,
    run_id: str,
    at: str,
) -> WorkflowRunOutput:
    from plait._durable import load_input, load_media

    return await workflow._run(
        workflow._validate_input(load_input(record.input, f"the stored input of run {run_id!r}")),
        listeners=listeners,
        stream_events=stream_events,
        session_id=session_id or new_id(),
        run_id=new_run,
        user_id=record.user_id,
        metadata=metadata,
        lineage={"forked_from": run_id, "fork_step": at},
        fork=(point, restored),
        # in a new session, its steps see the original session's conversation and earlier runs
        # from before the original ran
        history_from=None if session_id else (record.session_id, record.created_at),
        **load_media(record.media, f"the stored media of run {run_id!r}"),
    )
