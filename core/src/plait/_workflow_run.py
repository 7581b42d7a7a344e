"""One run of a workflow: setting it up, its frame, and a workflow nested as a step.

:func:`run` starts a top-level run (its session copy, sinks, listeners, hooks,
:class:`~plait._context.RunState`), hands a run with storage to
:mod:`plait._runs`, and commits the session; :func:`execute` is the run frame
(start/end events and hooks, the span and timeout from :mod:`plait._frame`, a
pause or a failure turned into the run's output or error) around the walk over
the steps; :func:`run_nested` runs a workflow as a step of an outer one, deeper,
with a state copy merged back after. ``Workflow._run``, ``_execute`` and
``run_as_step`` are these functions.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from plait import (
    _cancel,
    _engine,  # noqa: F401  (loading the engine fills in the contexts' ENGINE)
    _lookup,
    _state,
)
from plait._context import OFFLOAD_SYNC, RunCancelled, RunState, StepContext, WorkflowFrame, _current_step
from plait._frame import bounded
from plait._ids import new_id
from plait._io import (
    RunStatus,
    StepInput,
    StepOutput,
    StepType,
    WorkflowExecutionInput,
    WorkflowRunOutput,
    carries_media,
    collect_media,
)
from plait._pause import PauseRequested
from plait._step import check_tree
from plait.errors import RunTimeoutError, StepError
from plait.events import (
    Event,
    WorkflowCancelledEvent,
    WorkflowCompletedEvent,
    WorkflowErrorEvent,
    WorkflowPausedEvent,
    WorkflowStartedEvent,
)
from plait.tracing import (
    ATTR,
    close_span,
    lineage_attributes,
    open_span,
    resolve_meter,
    resolve_tracer,
    workflow_span,
)

if TYPE_CHECKING:
    from plait._runs import Resume
    from plait.workflow import Workflow

__all__ = ["execute", "run", "run_nested"]


def merge_options(low: dict[str, Any] | None, high: dict[str, Any] | None) -> dict[str, Any] | None:
    """``low`` with ``high`` merged in, nested dicts key by key (``high`` wins), as copies."""
    if low is None and high is None:
        return None
    merged = dict(low or {})
    for key, value in (high or {}).items():
        current = merged.get(key)
        merged[key] = (
            merge_options(current, value) if isinstance(current, dict) and isinstance(value, dict) else value
        )
    return merged


async def run(
    workflow: Workflow,
    input: Any,
    *,
    listeners: Sequence[Callable[[Event], None]],
    stream_events: bool,
    session_id: str | None = None,
    session_state: dict[str, Any] | None = None,
    additional_data: dict[str, Any] | None = None,
    run_id: str | None = None,
    sinks: Sequence[Any] = (),
    resume: Resume | None = None,
    user_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    dependencies: dict[str, Any] | None = None,
    add_dependencies_to_context: bool | None = None,
    lineage: dict[str, str] | None = None,
    fork: tuple[Any, dict[str, Any]] | None = None,
    history_from: tuple[str, float] | None = None,
    images: Any = None,
    audio: Any = None,
    videos: Any = None,
    files: Any = None,
) -> WorkflowRunOutput:
    """A top-level run of ``workflow``; ``lineage`` names where a replayed or forked run comes
    from (stored with it, on its output); ``fork`` is a fork's point and restored steps (plait._fork);
    ``history_from`` the session and time whose history its steps see (:attr:`RunState.history_from`)."""
    if not workflow._tree_checked:
        check_tree(workflow.nodes, where=f"Workflow {workflow.name!r}")
        workflow._tree_checked = True
    storage = None if workflow.storage is None else await workflow._ready_storage()
    session_id = session_id or workflow.session_id or new_id()
    # The run works on its own copy of the session and commits its changes at the end
    # (plait._sessions): concurrent runs of one session merge instead of overwriting.
    if storage is None:
        state, base = workflow._sessions.start(session_id, workflow.session_state)
    else:
        from plait._runs import stored_session

        state, base = await stored_session(workflow, storage, session_id)
        if resume is not None and resume.record.session_base is not None:
            base = resume.record.session_base  # the state the run last committed against
    if session_state:
        state.update(session_state)
    all_sinks = [*workflow._sink_objects(), *sinks] if workflow.sinks or sinks else ()
    if all_sinks:
        from plait.sinks import create_sink, dispatcher_for

        listeners = [
            *listeners,
            *(dispatcher_for(create_sink(s) if isinstance(s, str) else s) for s in all_sinks),
        ]
    stored_events: list[Event] = []
    if storage is not None and workflow.store_events:
        skip = workflow._events_to_skip
        listeners = [
            *listeners,
            stored_events.append
            if not skip
            else lambda event: None if event.event in skip else stored_events.append(event),
        ]
    hooks = _lookup.registry().lifecycle_hooks  # loads plugins first: one may configure tracing
    run = RunState(  # runner, tracer, listeners, step_events, hooks
        workflow._resolve_runner(),
        resolve_tracer(workflow.tracer_provider),
        listeners,
        stream_events or bool(all_sinks) or bool(storage is not None and workflow.store_events),
        hooks,
    )
    run.meter = resolve_meter()
    if fork is not None:
        run.fork, run.restored = fork
    run.history_from = history_from
    if images is not None or audio is not None or videos is not None or files is not None:
        # lists of parts already: the entry points checked them (run_media), a resume decoded them
        given = {"images": images, "audio": audio, "videos": videos, "files": files}
        run.media = {option: items for option, items in given.items() if items} or None
    if resume is not None:  # a continued run is still the same user's, with the same metadata
        user_id = user_id or resume.record.user_id
        if metadata is None and resume.record.metadata is not None:
            from plait._durable import load_state

            metadata = load_state(resume.record.metadata, f"the stored metadata of run {run_id!r}")
    run.user_id = user_id if user_id is not None else workflow.user_id
    run.lineage = lineage if lineage is not None or resume is None else resume.record.lineage
    if metadata is not None or workflow.metadata is not None:
        run.metadata = merge_options(metadata, workflow.metadata)  # the workflow's keys win (Agno)
    if dependencies is not None or workflow.dependencies is not None:
        run.dependencies = merge_options(workflow.dependencies, dependencies)  # the run's keys win
        add = (
            workflow.add_dependencies_to_context
            if add_dependencies_to_context is None
            else add_dependencies_to_context
        )
        if add and run.dependencies:
            run.context_dependencies = run.dependencies
    run_id = run_id or new_id()
    frame = WorkflowFrame(workflow, workflow.id, workflow.name, run_id, session_id, 0)
    offload = workflow.timeout is not None or OFFLOAD_SYNC.get()  # sync code in threads: the loop stays free
    ctx = StepContext(run, frame, "", None, "", state, {}, offload)
    _cancel.started(run_id, run)
    try:
        if storage is None:
            output = await execute(workflow, input, ctx, additional_data)
            if state or base:
                workflow._sessions.commit(session_id, base, state, where=_session_where(workflow, session_id))
            output.lineage = run.lineage
            workflow._last_run_output = output
            return output
        from plait._runs import run_stored

        output = await run_stored(
            workflow,
            storage,
            ctx,
            input,
            additional_data,
            base,
            stored_events,
            resume,
            _session_where(workflow, session_id),
        )
        output.lineage = run.lineage
        workflow._last_run_output = output
        return output
    finally:
        _cancel.ended(run_id, run)


def _session_where(workflow: Workflow, session_id: str) -> str:
    return f"Workflow {workflow.name!r}, session {session_id!r}"


async def run_nested(workflow: Workflow, step_input: StepInput, ctx: StepContext) -> StepOutput:
    """Run as a step of an outer workflow: deeper, with a state copy merged back after."""
    outer = ctx.frame
    # Derived from the parent run and the step: a resumed run gets the same nested run ids.
    run_id = f"{outer.run_id}:{ctx.step_id}"
    frame = WorkflowFrame(
        workflow, workflow.id, workflow.name, run_id, outer.session_id, outer.depth + 1, outer.run_id
    )
    frame.root = outer.workflow if outer.root is None else outer.root
    state = _state.isolate(ctx.state)
    inner = StepContext(
        ctx.run,
        frame,
        ctx.step_id,
        ctx.parent_step_id,
        ctx.step_name,
        state,
        {},
        ctx.offload or workflow.timeout is not None,
    )
    media = step_input.media() if carries_media(step_input) else None
    output = await execute(workflow, step_input.message, inner, step_input.additional_data, media)
    outer.executor_runs.append(output)
    if state or ctx.state:  # a stateless workflow has nothing to merge (and no message to build)
        _state.merge_changes(ctx.state, [(workflow.name, state)], where=f"Workflow {workflow.name!r}")
    stop = False
    for step_output in output.step_outputs:
        if step_output.stop:
            stop = True
            break
    # content, success, error, stop: positional, the rest set after (a class call's keywords
    # cost a dict, once per nesting level)
    result = StepOutput(output.content, output.status is RunStatus.COMPLETED, output.error, stop)
    result.steps = output.step_outputs
    result.step_type = _WORKFLOW
    if carries_media(output):
        # what its steps produced go on to the outer steps (those it was given are theirs already)
        collect_media(result, None, output.step_outputs)
    return result


_WORKFLOW = StepType.WORKFLOW.value  # read once: an enum member's .value is a property call


def execute(
    workflow: Workflow,
    input: Any,
    ctx: StepContext,
    additional_data: dict[str, Any] | None,
    media: dict[str, list[Any]] | None = None,
) -> Coroutine[Any, Any, WorkflowRunOutput]:
    """The run frame around the walk over ``workflow``'s steps, with its provider policy in
    force when it declares one (a plain function: no extra coroutine per workflow level).
    ``media``: what a nested workflow's steps are given (a top-level run's are ``RunState.media``)."""
    if workflow._history.kept and ctx.run.storage is None:  # its runs kept in memory for its steps
        return _execute_remembered(workflow, input, ctx, additional_data, media)
    if workflow.budget is not None or workflow._limiters is not None:  # provider policy
        return _execute_with_policy(workflow, input, ctx, additional_data, media)
    return _execute(workflow, input, ctx, additional_data, media)


async def _execute_remembered(
    workflow: Workflow,
    input: Any,
    ctx: StepContext,
    additional_data: dict[str, Any] | None,
    media: dict[str, list[Any]] | None = None,
) -> WorkflowRunOutput:
    """:func:`execute` for a workflow without storage whose steps are given its earlier runs
    (plait._workflow_history): the run, once completed, is kept for the next ones."""
    from plait._workflow_history import remember_run

    if workflow.budget is not None or workflow._limiters is not None:
        output = await _execute_with_policy(workflow, input, ctx, additional_data, media)
    else:
        output = await _execute(workflow, input, ctx, additional_data, media)
    remember_run(workflow, ctx, input, output)
    return output


async def _execute_with_policy(
    workflow: Workflow,
    input: Any,
    ctx: StepContext,
    additional_data: dict[str, Any] | None,
    media: dict[str, list[Any]] | None = None,
) -> WorkflowRunOutput:
    """:func:`execute` with the workflow's budget (a fresh meter for this run: every call inside
    counts, plait._budget) and rate limits (shared by its runs, plait._limits) in force."""
    from plait._budget import budget_scope
    from plait._limits import limits_scope

    with contextlib.ExitStack() as stack:
        if workflow.budget is not None:
            stack.enter_context(budget_scope(workflow.budget, f"workflow {workflow.name!r}"))
        if workflow._limiters is not None:
            stack.enter_context(limits_scope(workflow._limiters))
        return await _execute(workflow, input, ctx, additional_data, media)


async def _execute(
    workflow: Workflow,
    input: Any,
    ctx: StepContext,
    additional_data: dict[str, Any] | None,
    media: dict[str, list[Any]] | None = None,
) -> WorkflowRunOutput:
    frame = ctx.frame
    run = ctx.run
    if media is None and frame.depth == 0:
        media = run.media
    if workflow.input_schema is not None:
        input = workflow._validate_input(input)
    if run.hooks is not None:
        run.hooks.on_workflow_start(
            workflow=workflow, run_id=frame.run_id, session_id=frame.session_id, nested_depth=frame.depth
        )
    if run.listening:
        run.emit(
            ctx.run_event(
                WorkflowStartedEvent,
                input=input,
                parent_run_id=frame.parent_run_id,
                lineage=run.lineage if frame.depth == 0 else None,
            )
        )
    started = time.perf_counter()
    span_cm: Any = None
    span: Any = None
    if run.tracer is not None:
        span_cm, span = open_span(
            run.tracer, *workflow_span(workflow, frame.run_id, frame.session_id, frame.depth)
        )
        if run.lineage is not None and frame.depth == 0:
            span.set_attributes(lineage_attributes(run.lineage))
    outputs: list[StepOutput] = []
    try:
        if workflow.timeout is None and workflow._function is None:  # the common case, inline
            outputs = await ctx.run_sequence(workflow.nodes, input, None, additional_data, _copied(media))
        elif workflow.timeout is None:
            outputs = await _walk(workflow, input, ctx, additional_data, media)
        else:
            timeout = workflow.timeout

            def expired() -> BaseException:
                run.cancelled = True
                return RunTimeoutError(
                    f"Workflow {workflow.name!r} (run {frame.run_id}) timed out after {timeout:g}s"
                )

            outputs = await bounded(timeout, _walk(workflow, input, ctx, additional_data, media), expired)
    except PauseRequested as pause:
        if span_cm is not None:
            span.set_attribute(ATTR.PAUSED, True)
            close_span(span_cm, span)
        if frame.depth > 0:
            raise
        pending = pause.pending
        if run.listening:
            run.emit(ctx.run_event(WorkflowPausedEvent, pending=[p.to_dict() for p in pending]))
        _end_hook(run, frame, RunStatus.PAUSED, None, None)
        return WorkflowRunOutput(
            run_id=frame.run_id,
            workflow_id=workflow.id,
            workflow_name=workflow.name,
            session_id=frame.session_id,
            status=RunStatus.PAUSED,
            input=input,
            duration=time.perf_counter() - started,
            session_state=ctx.state,
            pending=pending,
            step_executor_runs=frame.executor_runs,
            user_id=run.user_id,
            metadata=run.metadata,
        )
    except RunCancelled:
        reason = f"Workflow run {frame.run_id} was cancelled"  # this one's id, nested or not
        if run.listening:
            run.emit(ctx.run_event(WorkflowCancelledEvent, reason=reason))
        if span_cm is not None:
            close_span(span_cm, span)
        _end_hook(run, frame, RunStatus.CANCELLED, None, None)
        if frame.depth > 0:
            raise
        return WorkflowRunOutput(
            run_id=frame.run_id,
            workflow_id=workflow.id,
            workflow_name=workflow.name,
            session_id=frame.session_id,
            status=RunStatus.CANCELLED,
            content=reason,
            # the top-level steps that completed before the cancel, in order
            step_outputs=[ctx.outputs[n.name] for n in workflow.nodes if n.name in ctx.outputs],
            input=input,
            duration=time.perf_counter() - started,
            session_state=ctx.state,
            step_executor_runs=frame.executor_runs,
            user_id=run.user_id,
            metadata=run.metadata,
        )
    except (asyncio.CancelledError, KeyboardInterrupt) as exc:
        run.cancelled = True
        if run.listening:
            reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else "cancelled"
            run.emit(ctx.run_event(WorkflowCancelledEvent, reason=reason))
        if span_cm is not None:
            close_span(span_cm, span)
        _end_hook(run, frame, RunStatus.CANCELLED, None, None)
        raise
    except Exception as exc:
        if run.listening:
            run.emit(
                ctx.run_event(
                    WorkflowErrorEvent,
                    error=str(exc),
                    error_type=type(exc).__name__,
                    failed_step_id=exc.step_path if isinstance(exc, StepError) else None,
                )
            )
        if span_cm is not None:
            close_span(span_cm, span, exc)
        _end_hook(run, frame, RunStatus.ERROR, None, exc)
        raise
    status = RunStatus.COMPLETED_WITH_ERRORS if frame.errors else RunStatus.COMPLETED
    content = None
    for output in outputs:
        if not output.skipped:
            content = output.content
    duration = time.perf_counter() - started
    if run.meter is not None:
        run.meter.workflow_duration.record(
            duration, {ATTR.WORKFLOW_NAME: workflow.name, ATTR.RUN_STATUS: status.value}
        )
    # Positional, in field order: a slotted dataclass called with 15 keywords costs twice what
    # it does without them (CPython 3.11 makes a dict of them for a class call), every level.
    result = WorkflowRunOutput(
        frame.run_id,
        workflow.id,
        workflow.name,
        frame.session_id,
        status,
        content,
        outputs,  # step_outputs
        input,
        f"steps failed or skipped: {', '.join(frame.errors)}" if frame.errors else None,  # error
        duration,
        ctx.state,  # session_state
        frame.parent_run_id,
        None,  # pending
        frame.executor_runs,  # step_executor_runs
        run.user_id,
        run.metadata,
    )
    if media or any(map(carries_media, outputs)):  # map: no generator frame per run
        collect_media(result, media, outputs)
    if span_cm is not None:
        close_span(span_cm, span)
    if run.listening:
        run.emit(
            ctx.run_event(
                WorkflowCompletedEvent,
                content=content,
                status=status.value,
                duration=duration,
                step_results=outputs,
                metrics=result.metrics,
            )
        )
    if run.hooks is not None:
        _end_hook(run, frame, status, result, None)
    return result


def _end_hook(
    run: RunState, frame: WorkflowFrame, status: RunStatus, output: Any, error: BaseException | None
) -> None:
    if run.hooks is not None:
        run.hooks.on_workflow_end(
            workflow=frame.workflow, run_id=frame.run_id, status=status.value, output=output, error=error
        )


async def _walk(
    workflow: Workflow,
    input: Any,
    ctx: StepContext,
    additional_data: dict[str, Any] | None,
    media: dict[str, list[Any]] | None = None,
) -> list[StepOutput]:
    if workflow._function is None:
        return await ctx.run_sequence(workflow.nodes, input, None, additional_data, _copied(media))
    token = _current_step.set(ctx)  # agents run by the function stream into this run
    execution_input = WorkflowExecutionInput(input, additional_data)
    for option, items in (media or {}).items():
        setattr(execution_input, option, items)
    try:
        output = await ctx.invoke(workflow._function, workflow, execution_input)
    finally:
        _current_step.reset(token)
    output.step_name = workflow.name
    output.step_type = StepType.FUNCTION.value
    return [output]


def _copied(media: dict[str, list[Any]] | None) -> dict[str, list[Any]] | None:
    """What a workflow's first steps are given of its media: copies of the lists (as
    ``StepInput.media()`` made them), so a step that appends to its images changes only theirs."""
    return None if media is None else {option: list(items) for option, items in media.items()}
