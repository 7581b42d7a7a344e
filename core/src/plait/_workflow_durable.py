"""A workflow's durable entry points: continue a stored run, fork it, replay it.

:class:`DurableRuns` is the part of :class:`~plait.Workflow` that acts on runs already in
its storage (``continue_run``/``acontinue_run``, ``fork``/``afork``, ``replay``/``areplay``);
the work itself is in :mod:`plait._runs` (resume), :mod:`plait._fork` and :mod:`plait._replay`,
each imported when first used. The Workflow class keeps the definition and its fresh runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypedDict, cast, overload

from typing_extensions import Unpack

from plait._fork import UNSET as _fork_unset
from plait._io import WorkflowRunOutput
from plait._sync import EventStream, sync
from plait.errors import DefinitionError
from plait.events import Event

if TYPE_CHECKING:
    from plait._budget import Budget
    from plait._definition import OnChanged
    from plait.storage import Storage
    from plait.workflow import Workflow

__all__ = ["ContinueArguments", "DurableRuns"]


class ContinueArguments(TypedDict, total=False):
    """The keyword arguments of :meth:`Workflow.continue_run` and ``acontinue_run`` besides
    ``stream`` and ``stream_events``, as the type checker sees them in their overloads."""

    approve: bool | None
    answer: Any
    wait: float | bool
    on_changed: OnChanged
    budget: Budget | None


class DurableRuns:
    """The entry points of :class:`~plait.Workflow` for runs in its storage."""

    if TYPE_CHECKING:  # provided by Workflow
        name: str

        def _stream_listener(
            self, deliver: Callable[[Event], None], stream_events: bool
        ) -> Callable[[Event], None]: ...

        async def _ready_storage(self) -> Storage | None: ...

    @overload
    def continue_run(
        self,
        run_id: str,
        answers: dict[str, Any] | None = None,
        *,
        stream: Literal[False] = False,
        stream_events: Literal[False] = False,
        **options: Unpack[ContinueArguments],
    ) -> WorkflowRunOutput: ...
    @overload
    def continue_run(
        self,
        run_id: str,
        answers: dict[str, Any] | None = None,
        *,
        stream: Literal[True],
        stream_events: bool = False,
        **options: Unpack[ContinueArguments],
    ) -> Iterator[Event]: ...
    @overload
    def continue_run(
        self,
        run_id: str,
        answers: dict[str, Any] | None = None,
        *,
        stream: bool = False,
        stream_events: Literal[True],
        **options: Unpack[ContinueArguments],
    ) -> Iterator[Event]: ...
    @overload
    def continue_run(
        self,
        run_id: str,
        answers: dict[str, Any] | None = None,
        *,
        stream: bool = False,
        stream_events: bool = False,
        **options: Unpack[ContinueArguments],
    ) -> WorkflowRunOutput | Iterator[Event]: ...
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
        on_changed: OnChanged = "refuse",
        budget: Budget | None = None,
    ) -> WorkflowRunOutput | Iterator[Event]:
        """Resume a run that paused, crashed, failed or was cancelled, from its checkpoints.

        Completed steps are not executed again: their outputs and session state are
        restored. Answer paused steps with ``answers={step_id or step name: answer}``,
        ``approve=True/False`` (every pending confirmation), or ``answer=...`` (the
        only pending step). Works in another process, given the same storage. A run that
        another process is executing raises :class:`~plait.storage.RunClaimedError` naming it;
        ``wait=True`` (or seconds) waits for it to end or for its lease to expire instead.

        The run resumes only if the steps it has already run are defined as they were when it
        started (code, configuration, place): otherwise a
        :class:`~plait.errors.DefinitionChangedError` lists what changed, unless
        ``on_changed="continue"`` (keep their stored results) or ``"restart_step"`` (run the
        changed steps again). Steps it has not run yet may change freely.

        A run paused by ``Budget(on_exceeded="pause")`` goes on with ``approve=True,
        budget=Budget(...)`` (the raised budget of what paused; what was spent still counts),
        ``approve=True`` alone (the paused call goes through once) or ``approve=False`` (the
        run fails with :class:`~plait.errors.BudgetExceededError`).
        """
        return sync(
            self.acontinue_run(
                run_id,
                answers,
                approve=approve,
                answer=answer,
                stream=stream,
                stream_events=stream_events,
                wait=wait,
                on_changed=on_changed,
                budget=budget,
            )
        )

    @overload
    def acontinue_run(
        self,
        run_id: str,
        answers: dict[str, Any] | None = None,
        *,
        stream: Literal[False] = False,
        stream_events: Literal[False] = False,
        **options: Unpack[ContinueArguments],
    ) -> Coroutine[Any, Any, WorkflowRunOutput]: ...
    @overload
    def acontinue_run(
        self,
        run_id: str,
        answers: dict[str, Any] | None = None,
        *,
        stream: Literal[True],
        stream_events: bool = False,
        **options: Unpack[ContinueArguments],
    ) -> AsyncIterator[Event]: ...
    @overload
    def acontinue_run(
        self,
        run_id: str,
        answers: dict[str, Any] | None = None,
        *,
        stream: bool = False,
        stream_events: Literal[True],
        **options: Unpack[ContinueArguments],
    ) -> AsyncIterator[Event]: ...
    @overload
    def acontinue_run(
        self,
        run_id: str,
        answers: dict[str, Any] | None = None,
        *,
        stream: bool = False,
        stream_events: bool = False,
        **options: Unpack[ContinueArguments],
    ) -> Coroutine[Any, Any, WorkflowRunOutput] | AsyncIterator[Event]: ...
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
        on_changed: OnChanged = "refuse",
        budget: Budget | None = None,
    ) -> Any:
        """``await workflow.acontinue_run(run_id, ...)``; with ``stream=True`` an async iterator."""

        def run(listener: Callable[[Event], None] | None) -> Coroutine[Any, Any, WorkflowRunOutput]:
            return self._resume(
                run_id,
                listeners=() if listener is None else (self._stream_listener(listener, stream_events),),
                stream_events=stream_events,
                answers=answers,
                approve=approve,
                answer=answer,
                wait=wait,
                on_changed=on_changed,
                budget=budget,
            )

        return EventStream(run) if stream or stream_events else run(None)

    def fork(
        self,
        run_id: str,
        *,
        at: str,
        state: dict[str, Any] | None = None,
        input: Any = _fork_unset,
        output: Any = _fork_unset,
        replay: bool = False,
        session_id: str | None = None,
        stream: bool = False,
        stream_events: bool = False,
    ) -> Any:
        """Start a new run from stored run ``run_id``, changed at step ``at``.

        The steps that completed before ``at`` are not executed: their outputs and session
        state come from the original's checkpoints. At ``at``, ``state`` (a dict of
        session-state keys) is merged into the session state; ``input=`` replaces what ``at``
        receives (its ``step_input.input`` and ``previous_step_content``), or ``output=``
        replaces what it returns (``at`` is not run; later steps see it). ``at`` and
        everything after it run live. ``at`` is a step id at any depth: ``"write"``,
        ``"inner/draft"`` (a nested workflow's step), ``"loop[2]/check"`` (a Loop iteration),
        ``"research/web"`` (a Parallel branch: the other branches are restored);
        ``plait runs show RUN_ID`` lists them. Loop iterations count from 1.

        The fork is a new run (its own run id, ``lineage={"forked_from": run_id,
        "fork_step": at}``) in a new session unless ``session_id=`` is given; its
        checkpoints include the restored steps, so it can be resumed, diffed or forked in
        turn. ``replay=True``: from ``at`` on, a model or tool call whose request matches one
        the original recorded in the same step is answered from that record (no request, no
        side effect); one that does not match (the change made it different) goes live.
        """
        return sync(
            self.afork(
                run_id,
                at=at,
                state=state,
                input=input,
                output=output,
                replay=replay,
                session_id=session_id,
                stream=stream,
                stream_events=stream_events,
            )
        )

    def afork(
        self,
        run_id: str,
        *,
        at: str,
        state: dict[str, Any] | None = None,
        input: Any = _fork_unset,
        output: Any = _fork_unset,
        replay: bool = False,
        session_id: str | None = None,
        stream: bool = False,
        stream_events: bool = False,
    ) -> Any:
        """``await workflow.afork(run_id, at=...)``; with ``stream=True`` an async iterator."""
        from plait._fork import fork

        def run(listener: Callable[[Event], None] | None) -> Coroutine[Any, Any, WorkflowRunOutput]:
            return fork(
                cast("Workflow", self),
                run_id,
                at=at,
                state=state,
                input=input,
                output=output,
                replay=replay,
                session_id=session_id,
                listeners=() if listener is None else (self._stream_listener(listener, stream_events),),
                stream_events=stream_events,
            )

        return EventStream(run) if stream or stream_events else run(None)

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
        on_changed: OnChanged = "refuse",
        budget: Budget | None = None,
    ) -> WorkflowRunOutput:
        storage = await self._ready_storage()
        if storage is None:
            raise DefinitionError(
                f"Workflow {self.name!r}: continue_run needs storage (Workflow(storage='sqlite:///runs.db'))"
            )
        from plait._runs import resume

        return await resume(
            cast("Workflow", self),
            storage,
            run_id,
            listeners=listeners,
            stream_events=stream_events,
            answers=answers,
            approve=approve,
            answer=answer,
            wait=wait,
            on_changed=on_changed,
            budget=budget,
        )

    # -- time travel (plait._replay) ----------------------------------------------------

    def replay(
        self, run_id: str, *, live: bool = False, stream: bool = False, stream_events: bool = False
    ) -> Any:
        """Run this workflow's current code again as a new stored run (lineage ``replay_of``)
        that answers every model and tool call from run ``run_id``'s record: no live calls.

        Function steps run again; steps whose output differs from the original's are listed
        in the output's ``replay_differences``. A model or tool call the record does not have
        (a prompt, tool or step changed) raises :class:`~plait.errors.ReplayDivergenceError`
        naming the step, with a diff of the recorded and the new request; ``live=True`` makes
        such calls for real instead. ``stream=True`` (``stream_events=True``) yields the
        replay's events as it goes, like :meth:`run`.
        """
        return sync(self.areplay(run_id, live=live, stream=stream, stream_events=stream_events))

    def areplay(
        self, run_id: str, *, live: bool = False, stream: bool = False, stream_events: bool = False
    ) -> Any:
        """``await workflow.areplay(run_id)``: :meth:`replay` in async code; with
        ``stream=True`` an async iterator of its events."""
        from plait._replay import replay

        def run(listener: Callable[[Event], None] | None) -> Coroutine[Any, Any, WorkflowRunOutput]:
            return replay(
                cast("Workflow", self),
                run_id,
                live=live,
                listeners=() if listener is None else (self._stream_listener(listener, stream_events),),
                stream_events=stream_events,
            )

        return EventStream(run) if stream or stream_events else run(None)
