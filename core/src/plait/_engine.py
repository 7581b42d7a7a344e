"""The executor: one async walk over the step tree, with its policies.

:func:`execute_node` is the single place where a node (built-in or from a
plugin) is run: it assigns the stable step id, emits start/end events, opens the
span, applies the timeout, retry and on-error policies, records the output, and
turns a failure into a :class:`~plait.errors.StepError` that names the path.
Containers call :meth:`StepContext.run_steps` (a sequence) and
:meth:`StepContext.run_branches` (concurrent branches through the runner), which
call :func:`execute_node` per node (:func:`run_branches` here does the branches'
bookkeeping); the contexts themselves live in :mod:`plait._context`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from plait import _state
from plait._context import ENGINE, Discard, StepContext, _current_step
from plait._frame import bounded
from plait._io import StepInput, StepMetrics, StepOutput, carries_media
from plait._pause import PauseRequested
from plait.errors import StepError, StepTimeoutError, root_cause
from plait.events import (
    StepErrorEvent,
    StepOutputEvent,
    StepRetryEvent,
    StepSkippedEvent,
)
from plait.retry import retrying
from plait.runners import Branch
from plait.tracing import (
    ATTR,
    close_span,
    metadata_attributes,
    open_span,
    retry_event_attributes,
    step_span,
)

if TYPE_CHECKING:
    from plait.primitives import StepNode
    from plait.runners import Runner

__all__ = ["execute_node", "run_branches"]


async def run_branches(
    ctx: StepContext,
    nodes: Sequence[StepNode],
    step_input: StepInput,
    runner: Runner | None = None,
    max_concurrency: int | None = None,
) -> list[StepOutput]:
    """:meth:`StepContext.run_branches`: ``nodes`` concurrently through the runner, each on
    its own copy of the session state; then state changes and outputs merged in declaration order."""
    branches = []
    for index, node in enumerate(nodes):
        branch_ctx = StepContext(
            ctx.run,
            ctx.frame,
            ctx.step_id,
            ctx.parent_step_id,
            ctx.step_name,
            _state.isolate(ctx.state),
            dict(ctx.outputs),
            True,
            Discard(ctx.discard),
        )
        branches.append(Branch(node, step_input, branch_ctx, index))
    try:
        outputs = await (runner or ctx.run.runner).run_branches(branches, max_concurrency=max_concurrency)
    finally:  # the calls of branches shipped elsewhere, when their runner did not store them
        for branch in branches:
            await branch.keep_calls()
    _state.merge_changes(
        ctx.state,
        [(branch.node.name, branch.context.state) for branch in branches],
        where=f"Parallel {ctx.step_id!r}",
    )
    for branch in branches:
        for name, output in branch.context.outputs.items():
            if ctx.outputs.get(name) is not output:
                ctx.outputs[name] = output
    pending = [request for branch in branches for request in branch.paused]
    if pending:
        raise PauseRequested(pending)
    return outputs


async def execute_node(
    node: StepNode, step_input: StepInput, parent: StepContext, *, branch: int | None = None
) -> StepOutput:
    """Run one node under ``parent`` with every policy and signal applied."""
    ctx = parent.child(node.name)
    run = ctx.run
    if run.restored is not None:
        if run.fork is not None and ctx.step_id == run.fork.step_id:  # a fork's point (plait._fork)
            step_input = await run.fork.arrive(node, ctx, step_input)
        if ctx.step_id in run.restored:
            return _restore(node, ctx, parent, run.restored[ctx.step_id])
    step_type = node.step_type
    hooks = run.hooks
    if hooks is not None:
        hooks.on_step_start(step=node, step_id=ctx.step_id, run_id=ctx.frame.run_id)
    if run.step_events:
        run.emit(ctx.event(node.started_event, step_type=step_type, **node.started_event_fields()))
    started = time.perf_counter()
    tracer = run.tracer
    span = None
    span_cm = None
    if tracer is not None:
        span_cm, span = open_span(
            tracer, *step_span(node.name, step_type, ctx.step_id, ctx.frame.run_id, branch)
        )
    # An agent run (or any Runnable) started inside this step's code finds the step here,
    # and emits into this run (plait.agent): sync, async, in worker threads (context copied).
    token = _current_step.set(ctx)
    try:
        if node.cache is not None and run.storage is not None:
            output = await _cached(node, step_input, ctx, span)
        elif node.retry is None and node.timeout is None:
            try:
                output = await node.execute(step_input, ctx)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                output = _fail(node, ctx, exc, 1)
        else:
            output = await _attempts(node, step_input, ctx, span)
        duration = time.perf_counter() - started
        output.step_name = node.name
        output.step_id = ctx.step_id
        if output.step_type is None:
            output.step_type = step_type
        metrics = output.metrics
        if metrics is None:
            output.metrics = StepMetrics(duration)
        else:
            metrics.duration = duration
        if run.checkpointer is not None:
            await run.checkpointer.record(ctx.step_id, output, ctx.state)
    except BaseException as exc:
        _current_step.reset(token)
        if run.meter is not None and isinstance(exc, Exception):
            run.meter.errors.add(
                1, {ATTR.STEP_TYPE: step_type, ATTR.ERROR_TYPE: type(root_cause(exc)).__name__}
            )
        if span_cm is not None:
            close_span(span_cm, span, exc)
        if hooks is not None and isinstance(exc, Exception):
            hooks.on_step_end(step=node, step_id=ctx.step_id, run_id=ctx.frame.run_id, output=None, error=exc)
        raise
    _current_step.reset(token)
    parent.outputs[node.name] = output
    if not output.success:
        ctx.frame.errors.append(ctx.step_id)
    if run.meter is not None:
        run.meter.step_duration.record(
            duration, {ATTR.STEP_TYPE: step_type, ATTR.WORKFLOW_NAME: ctx.frame.workflow_name}
        )
    if span_cm is not None:
        if output.metadata:
            span.set_attributes(metadata_attributes(step_type, output.metadata))  # type: ignore[union-attr]
        if output.metrics is not None and output.metrics.attempts > 1:
            span.set_attribute(ATTR.ATTEMPT, output.metrics.attempts)  # type: ignore[union-attr]
        close_span(span_cm, span)
    if run.listening and getattr(node, "executor_type", None) in _FUNCTION_EXECUTORS:
        _step_output_event(node, parent, ctx, output)
    if run.step_events:
        run.emit(
            ctx.event(
                node.completed_event,
                step_type=step_type,
                content=output.content,
                success=output.success,
                duration=duration,
                metadata=output.metadata,
                cached=bool(output.metadata and output.metadata.get("cache_hit")),
                **node.completed_event_fields(output),
            )
        )
    if hooks is not None:
        hooks.on_step_end(step=node, step_id=ctx.step_id, run_id=ctx.frame.run_id, output=output, error=None)
    return output


#: the executor types of a Step whose output is a StepOutputEvent (a function or a callable object)
_FUNCTION_EXECUTORS = ("function", "class")


def _step_output_event(node: StepNode, parent: StepContext, ctx: StepContext, output: StepOutput) -> None:
    """Emit Agno's StepOutputEvent for an executor step at the top of its workflow (the
    outermost one or a nested one), with its place there as ``step_index``."""
    frame = parent.frame
    if frame.depth == 0:
        top = not parent.step_id
    else:  # a nested run's id is its parent run's and its hosting step's (plait._workflow_run.run_nested)
        top = frame.run_id == f"{frame.parent_run_id}:{parent.step_id}"
    if not top:
        return
    places = frame.node_index
    if places is None:  # once per run: looking each step up in the list made a run quadratic
        places = frame.node_index = {id(n): i for i, n in enumerate(getattr(frame.workflow, "nodes", ()))}
    ctx.run.emit(ctx.event(StepOutputEvent, step_index=places.get(id(node)), step_output=output))


def _restore(node: StepNode, ctx: StepContext, parent: StepContext, checkpoint: Any) -> StepOutput:
    """Take a step's output and state from a checkpoint instead of running it again."""
    from plait._durable import declared_types, load_output, load_state

    declared = declared_types(node)
    output = load_output(checkpoint.output, ctx.step_id, declared)
    output.content = node.load_content(output.content)
    state = load_state(checkpoint.state, f"the stored session state after step {ctx.step_id!r}", declared)
    ctx.state.clear()
    ctx.state.update(state)
    parent.outputs[node.name] = output
    if not output.success:
        ctx.frame.errors.append(ctx.step_id)
    if ctx.run.listening and getattr(node, "executor_type", None) in _FUNCTION_EXECUTORS:
        _step_output_event(node, parent, ctx, output)
    if ctx.run.step_events:
        ctx.run.emit(
            ctx.event(
                node.completed_event,
                step_type=node.step_type,
                content=output.content,
                success=output.success,
                metadata=output.metadata,
                restored=True,
                **node.completed_event_fields(output),
            )
        )
    return output


async def _cached(node: StepNode, step_input: StepInput, ctx: StepContext, span: Any) -> StepOutput:
    """Reuse a cached output, and replay the step's session-state changes, when the step's
    identity and input are unchanged."""
    from plait._durable import apply_state_delta, cache_get, cache_key, cache_put, declared_types, state_delta

    policy = node.cache
    assert policy is not None
    storage = ctx.run.storage
    inputs = [step_input.input, step_input.previous_step_content]
    if carries_media(step_input):
        inputs.append(step_input.media())  # the media it is given (by digest): another image, another answer
    context = getattr(node, "cache_context", None)  # history a step is given (plait._workflow_history)
    if context is not None and (extra := await context(ctx)) is not None:
        inputs.append(extra)
    key = cache_key(policy, ctx.frame.workflow_id, ctx.step_id, node.cache_identity(), inputs)
    hit = await cache_get(storage, key, ctx.step_id, declared_types(node))
    if span is not None:
        span.set_attribute(ATTR.CACHE_HIT, hit is not None)
    turns = getattr(node, "history_turn", None)  # an agent step's conversation turn (plait._workflow_history)
    if hit is not None:
        apply_state_delta(ctx.state, hit.state_delta)
        if hit.history is not None and turns is not None:
            await turns(ctx, hit.history)  # the session's conversation gains the turn all the same
        output = hit.output
        output.content = node.load_content(output.content)
        output.metadata = {**(output.metadata or {}), "cache_hit": True}
        return output
    before = copy.deepcopy(ctx.state)
    output = await _attempts(node, step_input, ctx, span)
    if output.success:
        turn = None if turns is None else await turns(ctx)
        await cache_put(storage, key, output, policy, ctx.step_id, state_delta(before, ctx.state), turn)
    return output


async def _attempt(node: StepNode, step_input: StepInput, ctx: StepContext) -> StepOutput:
    if node.timeout is None:
        return await node.execute(step_input, ctx)
    return await _with_timeout(node, step_input, ctx, node.timeout)


async def _attempts(node: StepNode, step_input: StepInput, ctx: StepContext, span: Any) -> StepOutput:
    policy = node.retry
    if policy is None:  # one try, without the loop (and without a coroutine more: the hot path)
        try:
            if node.timeout is None:
                return await node.execute(step_input, ctx)
            return await _with_timeout(node, step_input, ctx, node.timeout)
        except Exception as exc:
            return _fail(node, ctx, exc, 1)
    snapshot = copy.deepcopy(ctx.state)

    def on_retry(attempt: int, exc: Exception, delay: float) -> None:
        if ctx.run.step_events:
            ctx.emit(
                ctx.event(
                    StepRetryEvent,
                    step_type=node.step_type,
                    attempt=attempt,
                    delay=delay,
                    error=f"{type(exc).__name__}: {exc}",
                )
            )
        if span is not None:
            span.add_event("retry", retry_event_attributes(attempt, delay, exc))
        if ctx.run.meter is not None:
            ctx.run.meter.retries.add(1, {ATTR.STEP_TYPE: node.step_type})
        ctx.state.clear()  # a retry starts from the state the step started with
        ctx.state.update(copy.deepcopy(snapshot))

    number = 1
    try:
        async with contextlib.aclosing(retrying(policy, judge=root_cause, on_retry=on_retry)) as attempts:
            async for attempt in attempts:
                number = attempt.number
                with attempt:
                    output = await _attempt(node, step_input, ctx)
    except Exception as exc:
        return _fail(node, ctx, exc, number)
    if number > 1:
        if output.metrics is None:
            output.metrics = StepMetrics(attempts=number)
        else:
            output.metrics.attempts = number
    return output


async def _with_timeout(
    node: StepNode, step_input: StepInput, ctx: StepContext, timeout: float
) -> StepOutput:
    # Inside a timeout, sync code must run in a thread, or nothing could interrupt it. The
    # attempt works on its own copy of the state: a timed-out thread that goes on writing
    # writes into a copy nobody reads, and its RunContext.cancelled turns true.
    work = _state.isolate(ctx.state)
    discard = Discard(ctx.discard)
    inner = StepContext(
        ctx.run, ctx.frame, ctx.step_id, ctx.parent_step_id, ctx.step_name, work, ctx.outputs, True, discard
    )

    def expired() -> BaseException:
        discard.set = True
        note = ""
        if node.runs_blocking_code:
            note = (
                "; its synchronous code cannot be interrupted and was abandoned in its worker thread "
                "(it runs on; its result and session-state changes are discarded, and its "
                "run_context.cancelled is now true)"
            )
        return StepTimeoutError(f"timed out after {timeout:g}s{note}")

    try:
        output = await bounded(timeout, node.execute(step_input, inner), expired)
    except BaseException:
        discard.set = True
        raise
    ctx.state.clear()
    ctx.state.update(work)
    return output


def _fail(node: StepNode, ctx: StepContext, exc: Exception, attempt: int) -> StepOutput:
    """Skip the failed step when its policy says so; otherwise raise a StepError."""
    message = f"{type(exc).__name__}: {exc}"
    if node.on_error == "skip":
        if ctx.run.step_events:
            ctx.emit(ctx.event(StepSkippedEvent, step_type=node.step_type, error=message))
        return StepOutput(success=False, error=message, skipped=True, metrics=StepMetrics(attempts=attempt))
    if ctx.run.step_events:
        ctx.emit(
            ctx.event(
                StepErrorEvent,
                step_type=node.step_type,
                error=str(exc),
                error_type=type(exc).__name__,
                attempt=attempt,
            )
        )
    if isinstance(exc, StepError):
        raise exc
    attempts = f" after {attempt} attempts" if attempt > 1 else ""
    raise StepError(
        f"{node.step_type.capitalize()} {ctx.step_id!r} failed{attempts}: {message}",
        step_path=ctx.step_id,
        step_name=node.name,
    ) from exc


# the contexts (plait._context) run their children through these
ENGINE.execute_node = execute_node
ENGINE.run_branches = run_branches
