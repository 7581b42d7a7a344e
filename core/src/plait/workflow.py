"""The Workflow: a named tree of steps, or one Python function, and how to run it.

``run()`` and ``arun()`` share one async code path (:meth:`Workflow._execute`);
a nested workflow runs through the same path with a deeper ``nested_depth``,
its own run id, and a copy of the session state that merges back when it ends.
"""

from __future__ import annotations

import asyncio
import copy
import os
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plait import _state
from plait._checks import check_seconds
from plait._engine import RunState, StepContext, WorkflowFrame, _current_step
from plait._executors import Callee
from plait._ids import new_id
from plait._io import (
    RunStatus,
    StepInput,
    StepOutput,
    StepType,
    WorkflowExecutionInput,
    WorkflowRunOutput,
)
from plait._pause import Durability, PauseRequested
from plait._sessions import MemorySessions, commit_stored
from plait._sync import astream, run_sync
from plait._sync import stream as stream_sync
from plait.errors import DefinitionError, RunTimeoutError, StepError
from plait.events import (
    STEP_LEVEL_EVENTS,
    Event,
    WorkflowCancelledEvent,
    WorkflowCompletedEvent,
    WorkflowErrorEvent,
    WorkflowPausedEvent,
    WorkflowStartedEvent,
)
from plait.primitives import StepNode, as_nodes, check_tree
from plait.runners import Runner, default_runner
from plait.tracing import ATTR, record_error, resolve_meter, resolve_tracer, workflow_span_name

if TYPE_CHECKING:
    from plait.storage import RunRecord, Storage

__all__ = ["Workflow", "resolve_runner"]


class Workflow:
    """A workflow: ``steps=[...]`` (steps, containers, agents, functions, workflows)
    or ``steps=fn(workflow, execution_input)`` for a fully-Python workflow.

    >>> workflow = Workflow(name="Research and Write", steps=[research, write])
    >>> workflow.run("history of AI").content
    >>> for event in workflow.run("...", stream=True, stream_events=True): ...

    ``session_state`` is the initial state of each new session; ``timeout`` bounds
    a whole run (seconds); ``runner`` chooses where parallel branches execute;
    ``tracer_provider`` replaces the global OpenTelemetry provider; ``sinks``
    receive every event of every run (objects with ``handle(event)``, or names
    of registered sinks such as ``"console"``).

    ``storage`` (a :class:`~plait.storage.Storage` or a URL such as
    ``"sqlite:///runs.db"``; default ``$PLAIT_STORAGE``) makes runs durable: each
    completed step is checkpointed (``durability="step"``; ``"batch"`` writes in
    the background, ``"exit"`` when the run ends), runs can be resumed with
    :meth:`continue_run`, session state persists across processes, and
    ``store_events=True`` keeps every event.
    """

    #: how many sessions a workflow without storage keeps in memory (least recently used
    #: dropped first); with storage, sessions live in the storage and this does not apply
    max_sessions_in_memory: int = 1000
    #: seconds a run's lease lasts unless renewed (every third of it while the run executes)
    lease_ttl: float = 30.0

    def __init__(
        self,
        name: str | None = None,
        steps: Sequence[Any] | Callable[..., Any] | None = None,
        *,
        id: str | None = None,
        description: str | None = None,
        session_id: str | None = None,
        session_state: dict[str, Any] | None = None,
        input_schema: type[Any] | None = None,
        timeout: float | None = None,
        runner: Runner | str | None = None,
        tracer_provider: Any = None,
        sinks: Sequence[Any] = (),
        storage: Storage | str | None = None,
        durability: Durability = "step",
        store_events: bool = False,
        stream: bool = False,
        stream_events: bool = False,
    ) -> None:
        if name is None:
            name = "Workflow"
        if not isinstance(name, str) or not name.strip():
            raise DefinitionError(f"Workflow: expected a non-empty name, got {name!r}")
        self.name = name
        self.id = id or _slug(name)
        self.description = description
        self.session_id = session_id
        if session_state is not None and not isinstance(session_state, dict):
            raise DefinitionError(f"Workflow {name!r}: session_state must be a dict, got {session_state!r}")
        self.session_state = session_state
        self.input_schema = input_schema
        check_seconds(timeout, f"Workflow {name!r}")
        self.timeout = timeout
        self.runner = runner
        self._runner: Runner | None = None
        self.tracer_provider = tracer_provider
        self.sinks = _check_sinks(sinks, f"Workflow {name!r}")
        if durability not in ("step", "batch", "exit"):
            raise DefinitionError(
                f"Workflow {name!r}: durability must be 'step', 'batch' or 'exit', got {durability!r}"
            )
        self.storage = storage if storage is not None else os.environ.get("PLAIT_STORAGE") or None
        self._storage: Storage | None = None
        self.durability: Durability = durability
        self.store_events = store_events
        #: ``module:name`` of this workflow, recorded with its runs so the CLI can resume them
        self.target: str | None = None
        self.stream = stream
        self.stream_events = stream_events
        self._function: Callee | None = None
        self.nodes: list[StepNode] = []
        if steps is None:
            raise DefinitionError(f"Workflow {name!r}: expected steps=[...] or steps=a function, got None")
        if (
            callable(steps)
            and not isinstance(steps, (list, tuple, StepNode))
            and not hasattr(steps, "run_as_step")
        ):
            if isinstance(steps, Workflow):
                self.nodes = as_nodes([steps], where=f"Workflow {name!r}")
            else:
                self._function = Callee(steps, what=f"Workflow {name!r} steps function")
        else:
            self.nodes = as_nodes(steps, where=f"Workflow {name!r}")
            if not self.nodes:
                raise DefinitionError(f"Workflow {name!r}: expected at least one step")
        check_tree(self.nodes, where=f"Workflow {name!r}")
        self._tree_checked = False  # checked again at the first run: steps may change after this
        self._sessions = MemorySessions(self.max_sessions_in_memory)
        self._sessions_lock = threading.Lock()
        self._last_run_output: WorkflowRunOutput | None = None
        if self.storage is None:
            _warn_cache_without_storage(self)

    def __repr__(self) -> str:
        return f"Workflow({self.name!r})"

    def __getstate__(self) -> dict[str, Any]:
        # Shipped to another process (a distributed runner): the definition travels,
        # this process's sessions, lock, runner, storage connection and last output do not.
        state = dict(self.__dict__)
        state.update(_sessions=None, _sessions_lock=None, _runner=None, _storage=None, _last_run_output=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._sessions = MemorySessions(self.max_sessions_in_memory)
        self._sessions_lock = threading.Lock()

    # -- public API ------------------------------------------------------------------

    def run(
        self,
        input: Any = None,
        *,
        stream: bool | None = None,
        stream_events: bool | None = None,
        session_id: str | None = None,
        session_state: dict[str, Any] | None = None,
        additional_data: dict[str, Any] | None = None,
        run_id: str | None = None,
        sinks: Sequence[Any] = (),
    ) -> Any:
        """Run to the end and return a :class:`WorkflowRunOutput` (raising a
        :class:`~plait.errors.StepError` naming the failed step), or, with
        ``stream=True``, return an iterator of events."""
        stream, stream_events = self._stream_flags(stream, stream_events)
        options: dict[str, Any] = {
            "session_id": session_id,
            "session_state": session_state,
            "additional_data": additional_data,
            "run_id": run_id,
            "sinks": sinks,
        }
        if stream:
            return stream_sync(self._starter(input, stream_events, options))
        return run_sync(self._run(input, listeners=(), stream_events=False, **options))

    def arun(
        self,
        input: Any = None,
        *,
        stream: bool | None = None,
        stream_events: bool | None = None,
        session_id: str | None = None,
        session_state: dict[str, Any] | None = None,
        additional_data: dict[str, Any] | None = None,
        run_id: str | None = None,
        sinks: Sequence[Any] = (),
    ) -> Any:
        """``await workflow.arun(x)`` returns a :class:`WorkflowRunOutput`;
        ``async for event in workflow.arun(x, stream=True)`` streams events."""
        stream, stream_events = self._stream_flags(stream, stream_events)
        options: dict[str, Any] = {
            "session_id": session_id,
            "session_state": session_state,
            "additional_data": additional_data,
            "run_id": run_id,
            "sinks": sinks,
        }
        if stream:
            return astream(self._starter(input, stream_events, options))
        return self._run(input, listeners=(), stream_events=False, **options)

    def print_response(
        self,
        input: Any = None,
        *,
        stream: bool | None = None,
        stream_events: bool | None = None,
        markdown: bool = False,
        **options: Any,
    ) -> WorkflowRunOutput | None:
        """Run and print the result for a person: with ``stream=True``, the nested
        steps live as they happen, then the final content (as Markdown if asked)."""
        from plait.console import print_run

        stream, stream_events = self._stream_flags(stream, stream_events)
        output: WorkflowRunOutput | None = print_run(
            self, input, stream=stream, markdown=markdown, options=options
        )
        return output

    async def aprint_response(
        self, input: Any = None, *, stream: bool | None = None, markdown: bool = False, **options: Any
    ) -> WorkflowRunOutput | None:
        from plait.console import aprint_run

        stream, _ = self._stream_flags(stream, None)
        output: WorkflowRunOutput | None = await aprint_run(
            self, input, stream=stream, markdown=markdown, options=options
        )
        return output

    async def aclose(self) -> None:
        """Close the storage this workflow opened from its URL (a storage object you
        passed stays yours to close). The workflow reopens it if it runs again."""
        storage, self._storage = self._storage, None
        if storage is not None and isinstance(self.storage, str):
            await storage.close()

    def close(self) -> None:
        """:meth:`aclose` from sync code."""
        run_sync(self.aclose())

    def get_last_run_output(self) -> WorkflowRunOutput | None:
        """The output of this workflow's most recent run in this process."""
        return self._last_run_output

    def get_session_state(self, session_id: str | None = None) -> dict[str, Any] | None:
        """The session state as its runs committed it (a copy), from the storage when the
        workflow has one; ``session_id`` defaults to the workflow's own ``session_id``, else
        the session of the last run in this process. None when there is no such session."""
        return run_sync(self.aget_session_state(session_id))

    async def aget_session_state(self, session_id: str | None = None) -> dict[str, Any] | None:
        """:meth:`get_session_state` from async code."""
        if session_id is None:
            last = self._last_run_output
            session_id = self.session_id or (last.session_id if last is not None else None)
            if session_id is None:
                return None
        storage = await self._ready_storage()
        if storage is None:
            return self._sessions.get(session_id)
        record = await storage.load_session(session_id)
        return None if record is None else record.state

    # -- execution -------------------------------------------------------------------

    def _stream_flags(self, stream: bool | None, stream_events: bool | None) -> tuple[bool, bool]:
        stream_events = self.stream_events if stream_events is None else stream_events
        stream = (self.stream if stream is None else stream) or stream_events
        return stream, stream_events

    def _starter(
        self, input: Any, stream_events: bool, options: dict[str, Any]
    ) -> Callable[[Callable[[Event], None]], Any]:
        """``start(listener)`` for the streaming helpers: the run (or resumed run), its events
        filtered to what was asked for (run and content events, or every event)."""

        def start(deliver: Callable[[Event], None]) -> Any:
            def listener(event: Event) -> None:
                if stream_events or not isinstance(event, STEP_LEVEL_EVENTS):
                    deliver(event)

            if "resume_run_id" in options:
                rest = {k: v for k, v in options.items() if k != "resume_run_id"}
                return self._resume(
                    options["resume_run_id"], listeners=(listener,), stream_events=stream_events, **rest
                )
            return self._run(input, listeners=(listener,), stream_events=stream_events, **options)

        return start

    async def _run(
        self,
        input: Any,
        *,
        listeners: Sequence[Callable[[Event], None]],
        stream_events: bool,
        session_id: str | None = None,
        session_state: dict[str, Any] | None = None,
        additional_data: dict[str, Any] | None = None,
        run_id: str | None = None,
        sinks: Sequence[Any] = (),
        resume: _Resume | None = None,
    ) -> WorkflowRunOutput:
        from plait.plugins import lifecycle_hooks

        if not self._tree_checked:
            check_tree(self.nodes, where=f"Workflow {self.name!r}")
            self._tree_checked = True
        storage = None if self.storage is None else await self._ready_storage()
        session_id = session_id or self.session_id or new_id()
        # The run works on its own copy of the session and commits its changes at the end
        # (plait._sessions): concurrent runs of one session merge instead of overwriting.
        if storage is None:
            state, base = self._sessions.start(session_id, self.session_state)
        else:
            state, base = await self._stored_session(storage, session_id)
            if resume is not None and resume.record.session_base is not None:
                base = resume.record.session_base  # the state the run last committed against
        if session_state:
            state.update(session_state)
        where = f"Workflow {self.name!r}, session {session_id!r}"
        all_sinks = [*self._sink_objects(), *sinks] if self.sinks or sinks else ()
        if all_sinks:
            from plait.sinks import create_sink, dispatcher_for

            listeners = [
                *listeners,
                *(dispatcher_for(create_sink(s) if isinstance(s, str) else s) for s in all_sinks),
            ]
        stored_events: list[Event] = []
        if storage is not None and self.store_events:
            listeners = [*listeners, stored_events.append]
        hooks = lifecycle_hooks()  # loads plugins first: one may configure tracing on startup
        run = RunState(
            runner=self._resolve_runner(),
            tracer=resolve_tracer(self.tracer_provider),
            listeners=listeners,
            step_events=stream_events or bool(all_sinks) or bool(storage is not None and self.store_events),
            hooks=hooks,
        )
        run.meter = resolve_meter()
        run_id = run_id or new_id()
        frame = WorkflowFrame(self, self.id, self.name, run_id, session_id, 0)
        ctx = StepContext(run, frame, "", None, "", state, {}, self.timeout is not None)
        if storage is None:
            output = await self._execute(input, ctx, additional_data)
            if state or base:
                self._sessions.commit(session_id, base, state, where=where)
            self._last_run_output = output
            return output
        from plait._durable import Checkpointer, to_json
        from plait.storage import RunRecord

        run.storage = storage
        run.checkpointer = Checkpointer(storage, run_id, self.durability)
        if resume is not None:
            run.restored = resume.checkpoints
            run.answers = resume.answers
            record = resume.record
            record.status = RunStatus.RUNNING.value
            record.pause = None
        else:
            input = self._validate_input(input)
            record = RunRecord(
                run_id=run_id,
                workflow_id=self.id,
                workflow_name=self.name,
                session_id=session_id,
                status=RunStatus.RUNNING.value,
                input=to_json(input, f"the input of workflow {self.name!r}"),
                target=self.target,
                session_base=base,
            )
        from plait.storage import claim_run

        # the run's lease says who executes it: a resumer elsewhere sees it and does not run it too
        lease = await claim_run(storage, run_id, ttl=self.lease_ttl) if resume is None else None
        try:
            await storage.save_run(record)
            try:
                output = await self._execute(input, ctx, additional_data)
            except BaseException as exc:
                # Ctrl-C in a sync step on the loop thread arrives as KeyboardInterrupt, elsewhere
                # as cancellation: either way the run was cancelled, and can be resumed.
                cancelled = isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt))
                record.status = (RunStatus.CANCELLED if cancelled else RunStatus.ERROR).value
                record.error = f"{type(exc).__name__}: {exc}"
                await self._finish(storage, run, record, stored_events)
                raise
            record.status = output.status.value
            record.content = to_json(output.content, f"the output of workflow {self.name!r}")
            record.error = output.error
            metrics = output.metrics
            record.metrics = {
                "duration": output.duration,
                "input_tokens": metrics.input_tokens,
                "output_tokens": metrics.output_tokens,
            }
            record.pause = {"pending": [p.to_dict() for p in output.pending]} if output.pending else None
            try:
                final = to_json(state, "the session state")
                await commit_stored(storage, session_id, self.id, base, final, where=where)
                record.session_base = final  # a resumed run's changes count from here
            except BaseException as exc:
                record.status = RunStatus.ERROR.value
                record.error = f"{type(exc).__name__}: {exc}"
                await self._finish(storage, run, record, stored_events)
                raise
            await self._finish(storage, run, record, stored_events)
            self._last_run_output = output
            return output
        finally:
            if lease is not None:
                await lease.release()

    async def _finish(self, storage: Storage, run: RunState, record: RunRecord, events: list[Event]) -> None:
        """Write what the run leaves behind: its checkpoints, events and record."""
        record.updated_at = time.time()
        try:
            await run.checkpointer.close()
            if events:
                await storage.append_events(record.run_id, [event.to_dict() for event in events])
        finally:
            await storage.save_run(record)

    async def _ready_storage(self) -> Storage | None:
        if self.storage is None:
            return None
        if self._storage is None:
            from plait.storage import resolve_storage

            with self._sessions_lock:  # concurrent first runs must share one storage object
                if self._storage is None:
                    self._storage = resolve_storage(self.storage)
        assert self._storage is not None
        await self._storage.setup()  # idempotent; the backend guards it
        return self._storage

    async def _stored_session(
        self, storage: Storage, session_id: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The run's working copy of a stored session and its base (JSON-compatible)."""
        from plait._durable import to_json

        record = await storage.load_session(session_id)
        if record is not None:
            return record.state, copy.deepcopy(record.state)
        initial = to_json(self.session_state, "the initial session_state") if self.session_state else {}
        return copy.deepcopy(initial), initial

    # -- durable runs ------------------------------------------------------------------

    def continue_run(
        self,
        run_id: str,
        answers: dict[str, Any] | None = None,
        *,
        approve: bool | None = None,
        answer: Any = None,
        stream: bool = False,
        stream_events: bool = False,
        wait: float | bool = False,
    ) -> Any:
        """Resume a run that paused, crashed, failed or was cancelled, from its checkpoints.

        Completed steps are not executed again: their outputs and session state are
        restored. Answer paused steps with ``answers={step_id or step name: answer}``,
        ``approve=True/False`` (every pending confirmation), or ``answer=...`` (the
        only pending step). Works in another process, given the same storage. A run that
        another process is executing raises :class:`~plait.storage.RunClaimedError` naming it;
        ``wait=True`` (or seconds) waits for it to end or for its lease to expire instead.
        """
        options = {"answers": answers, "approve": approve, "answer": answer, "wait": wait}
        if stream or stream_events:
            return stream_sync(self._starter(None, stream_events, {"resume_run_id": run_id, **options}))
        return run_sync(self._resume(run_id, listeners=(), stream_events=False, **options))

    def acontinue_run(
        self,
        run_id: str,
        answers: dict[str, Any] | None = None,
        *,
        approve: bool | None = None,
        answer: Any = None,
        stream: bool = False,
        stream_events: bool = False,
        wait: float | bool = False,
    ) -> Any:
        """``await workflow.acontinue_run(run_id, ...)``; with ``stream=True`` an async iterator."""
        options = {"answers": answers, "approve": approve, "answer": answer, "wait": wait}
        if stream or stream_events:
            return astream(self._starter(None, stream_events, {"resume_run_id": run_id, **options}))
        return self._resume(run_id, listeners=(), stream_events=False, **options)

    async def _resume(
        self,
        run_id: str,
        *,
        listeners: Sequence[Callable[[Event], None]],
        stream_events: bool,
        answers: dict[str, Any] | None = None,
        approve: bool | None = None,
        answer: Any = None,
        wait: float | bool = False,
    ) -> WorkflowRunOutput:
        storage = await self._ready_storage()
        if storage is None:
            raise DefinitionError(
                f"Workflow {self.name!r}: continue_run needs storage (Workflow(storage='sqlite:///runs.db'))"
            )
        from plait.storage import claim_run

        # Claim the run before reading it: checkpoints read under the lease are the latest, and
        # a second resumer gets a RunClaimedError naming the holder (or waits, with wait=).
        lease = await claim_run(storage, run_id, ttl=self.lease_ttl, wait=wait)
        try:
            record = await storage.get_run(run_id)
            if record is None:
                raise DefinitionError(f"Workflow {self.name!r}: no run {run_id!r} in {storage!r}")
            if record.workflow_id != self.id:
                raise DefinitionError(
                    f"run {run_id!r} belongs to workflow {record.workflow_id!r}, not {self.id!r}"
                )
            if record.status in (RunStatus.COMPLETED.value, RunStatus.COMPLETED_WITH_ERRORS.value):
                raise DefinitionError(f"run {run_id!r} already ended as {record.status}; nothing to continue")
            checkpoints = {c.step_id: c for c in await storage.load_checkpoints(run_id)}
            resolved = self._answers(record, answers, approve, answer)
            input = self._validate_input(record.input)
            return await self._run(
                input,
                listeners=listeners,
                stream_events=stream_events,
                session_id=record.session_id,
                run_id=run_id,
                resume=_Resume(record, checkpoints, resolved),
            )
        finally:
            await lease.release()

    def _answers(
        self, record: RunRecord, answers: dict[str, Any] | None, approve: bool | None, answer: Any
    ) -> dict[str, Any]:
        """Map the caller's answers to pending step ids, checking each against its step."""
        from plait._pause import PendingInput

        pending = [PendingInput.from_dict(p) for p in (record.pause or {}).get("pending", [])]
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
        nodes = dict(_walk_approvals(self.nodes, ""))
        for step_id, value in resolved.items():
            node = nodes.get(_pattern(step_id))
            if node is None:
                known = ", ".join(p.step_id for p in pending) or "none"
                raise DefinitionError(
                    f"no approval step {step_id!r} in workflow {self.name!r} (pending: {known})"
                )
            resolved[step_id] = node.validate_answer(value, step_id)
        return resolved

    def _sink_objects(self) -> list[Any]:
        """The workflow's sinks, names resolved once (each sink keeps one queue and thread)."""
        if self.sinks and any(isinstance(s, str) for s in self.sinks):
            from plait.sinks import create_sink

            self.sinks = [create_sink(s) if isinstance(s, str) else s for s in self.sinks]
        return self.sinks

    def _resolve_runner(self) -> Runner:
        if self._runner is None:
            self._runner = resolve_runner(self.runner)
        return self._runner

    async def _run_nested(self, step_input: StepInput, ctx: StepContext) -> StepOutput:
        """Run as a step of an outer workflow: deeper, with a state copy merged back after."""
        outer = ctx.frame
        # Derived from the parent run and the step: a resumed run gets the same nested run ids.
        run_id = f"{outer.run_id}:{ctx.step_id}"
        frame = WorkflowFrame(
            self, self.id, self.name, run_id, outer.session_id, outer.depth + 1, outer.run_id
        )
        state = _state.isolate(ctx.state)
        inner = StepContext(
            ctx.run,
            frame,
            ctx.step_id,
            ctx.parent_step_id,
            ctx.step_name,
            state,
            {},
            ctx.offload or self.timeout is not None,
        )
        output = await self._execute(step_input.message, inner, step_input.additional_data)
        _state.merge_changes(ctx.state, [(self.name, state)], where=f"Workflow {self.name!r}")
        return StepOutput(
            content=output.content,
            steps=output.step_outputs,
            success=output.status is RunStatus.COMPLETED,
            error=output.error,
            stop=any(o.stop for o in output.step_outputs),
            step_type=StepType.WORKFLOW.value,
        )

    async def _execute(
        self, input: Any, ctx: StepContext, additional_data: dict[str, Any] | None
    ) -> WorkflowRunOutput:
        frame = ctx.frame
        run = ctx.run
        input = self._validate_input(input)
        if run.hooks is not None:
            run.hooks.on_workflow_start(
                workflow=self, run_id=frame.run_id, session_id=frame.session_id, nested_depth=frame.depth
            )
        if run.listening:
            run.emit(ctx.event(WorkflowStartedEvent, input=input, parent_run_id=frame.parent_run_id))
        started = time.perf_counter()
        span_cm = None
        span = None
        if run.tracer is not None:
            span_cm = run.tracer.start_as_current_span(
                workflow_span_name(self.name),
                attributes={
                    ATTR.OPERATION: "invoke_workflow",
                    ATTR.WORKFLOW_NAME: self.name,
                    ATTR.WORKFLOW_ID: self.id,
                    ATTR.RUN_ID: frame.run_id,
                    ATTR.SESSION_ID: frame.session_id,
                    ATTR.NESTED_DEPTH: frame.depth,
                    ATTR.SPAN_KIND: "CHAIN",
                },
                record_exception=False,
                set_status_on_exception=False,
            )
            span = span_cm.__enter__()
        outputs: list[StepOutput] = []
        try:
            if self.timeout is None:
                outputs = await self._walk(input, ctx, additional_data)
            else:
                scope = asyncio.timeout(self.timeout)
                try:
                    async with scope:
                        outputs = await self._walk(input, ctx, additional_data)
                except TimeoutError:
                    if not scope.expired():
                        raise
                    run.cancelled = True
                    raise RunTimeoutError(
                        f"Workflow {self.name!r} (run {frame.run_id}) timed out after {self.timeout:g}s"
                    ) from None
        except PauseRequested as pause:
            if span_cm is not None:
                span.set_attribute("plait.paused", True)  # type: ignore[union-attr]
                span_cm.__exit__(None, None, None)
            if frame.depth > 0:
                raise
            pending = pause.pending
            if run.listening:
                run.emit(ctx.event(WorkflowPausedEvent, pending=[p.to_dict() for p in pending]))
            self._end_hook(run, frame, RunStatus.PAUSED, None, None)
            return WorkflowRunOutput(
                run_id=frame.run_id,
                workflow_id=self.id,
                workflow_name=self.name,
                session_id=frame.session_id,
                status=RunStatus.PAUSED,
                input=input,
                duration=time.perf_counter() - started,
                session_state=ctx.state,
                pending=pending,
            )
        except (asyncio.CancelledError, KeyboardInterrupt) as exc:
            run.cancelled = True
            if run.listening:
                reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else "cancelled"
                run.emit(ctx.event(WorkflowCancelledEvent, reason=reason))
            if span_cm is not None:
                span_cm.__exit__(None, None, None)
            self._end_hook(run, frame, RunStatus.CANCELLED, None, None)
            raise
        except Exception as exc:
            if run.listening:
                run.emit(
                    ctx.event(
                        WorkflowErrorEvent,
                        error=str(exc),
                        error_type=type(exc).__name__,
                        failed_step_id=exc.step_path if isinstance(exc, StepError) else None,
                    )
                )
            if span_cm is not None:
                record_error(span, exc.__cause__ if isinstance(exc, StepError) and exc.__cause__ else exc)  # type: ignore[arg-type]
                span_cm.__exit__(None, None, None)
            self._end_hook(run, frame, RunStatus.ERROR, None, exc)
            raise
        status = RunStatus.COMPLETED_WITH_ERRORS if frame.errors else RunStatus.COMPLETED
        content = None
        for output in outputs:
            if not output.skipped:
                content = output.content
        duration = time.perf_counter() - started
        if run.meter is not None:
            run.meter.workflow_duration.record(
                duration, {ATTR.WORKFLOW_NAME: self.name, "plait.run.status": status.value}
            )
        result = WorkflowRunOutput(
            run_id=frame.run_id,
            workflow_id=self.id,
            workflow_name=self.name,
            session_id=frame.session_id,
            status=status,
            content=content,
            step_outputs=outputs,
            input=input,
            error=f"steps failed or skipped: {', '.join(frame.errors)}" if frame.errors else None,
            duration=duration,
            session_state=ctx.state,
            parent_run_id=frame.parent_run_id,
        )
        if span_cm is not None:
            span_cm.__exit__(None, None, None)
        if run.listening:
            run.emit(
                ctx.event(WorkflowCompletedEvent, content=content, status=status.value, duration=duration)
            )
        self._end_hook(run, frame, status, result, None)
        return result

    @staticmethod
    def _end_hook(
        run: RunState, frame: WorkflowFrame, status: RunStatus, output: Any, error: BaseException | None
    ) -> None:
        if run.hooks is not None:
            run.hooks.on_workflow_end(
                workflow=frame.workflow, run_id=frame.run_id, status=status.value, output=output, error=error
            )

    async def _walk(
        self, input: Any, ctx: StepContext, additional_data: dict[str, Any] | None
    ) -> list[StepOutput]:
        if self._function is None:
            return await ctx.run_steps(self.nodes, StepInput(input, None, ctx.outputs, additional_data))
        token = _current_step.set(ctx)  # agents run by the function stream into this run
        try:
            output = await ctx.invoke(self._function, self, WorkflowExecutionInput(input, additional_data))
        finally:
            _current_step.reset(token)
        output.step_name = self.name
        output.step_type = StepType.FUNCTION.value
        return [output]

    def _validate_input(self, input: Any) -> Any:
        schema = self.input_schema
        if schema is None or isinstance(input, schema):
            return input
        from pydantic import ValidationError

        try:
            if isinstance(input, (str, bytes)):
                return schema.model_validate_json(input)
            return schema.model_validate(input)
        except ValidationError as exc:
            raise DefinitionError(
                f"Workflow {self.name!r}: input does not match {schema.__name__}: {exc}"
            ) from exc


def _check_sinks(sinks: Any, where: str) -> list[Any]:
    if isinstance(sinks, (str, bytes)) or not isinstance(sinks, (list, tuple)):
        hint = f" (did you mean sinks=[{sinks!r}]?)" if isinstance(sinks, str) else ""
        raise DefinitionError(f"{where}: sinks must be a list of sinks, got {sinks!r}{hint}")
    for sink in sinks:
        if not isinstance(sink, str) and not callable(getattr(sink, "handle", None)):
            raise DefinitionError(
                f"{where}: each sink must be a registered sink's name or an object with handle(event), got {sink!r}"
            )
    return list(sinks)


def resolve_runner(spec: Runner | str | None) -> Runner:
    """A runner from an object, a registered name (``"ray"``), or None for the default."""
    if spec is None:
        return default_runner()
    if isinstance(spec, str):
        from plait.plugins import get_registry

        factory = get_registry().get("runner", spec)
        runner: Runner = factory()
        return runner
    if not isinstance(spec, Runner):
        raise DefinitionError(f"expected a Runner or the name of a registered runner, got {spec!r}")
    return spec


def _slug(name: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in name.lower()).split()) or "workflow"


@dataclass(slots=True)
class _Resume:
    """What continue_run hands to a run: its record, checkpoints and answers."""

    record: RunRecord
    checkpoints: dict[str, Any]
    answers: dict[str, Any]


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


def _warn_cache_without_storage(workflow: Workflow) -> None:
    """A warning, not an error: such a workflow may still run nested in one with storage,
    where its steps' cache works."""
    pending = list(workflow.nodes)
    while pending:
        node = pending.pop(0)
        if node.cache is not None:
            warnings.warn(
                f"Workflow {workflow.name!r}: step {node.name!r} has cache= but workflow "
                f"{workflow.name!r} has no storage, so nothing is cached unless it runs nested in a "
                "workflow with storage; give storage= (or set $PLAIT_STORAGE)",
                UserWarning,
                stacklevel=3,
            )
            return
        pending.extend(node.children())
