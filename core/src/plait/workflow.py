"""The Workflow: a named tree of steps, or one Python function, and its entry points.

This module is the definition: the validating constructor, sessions, storage, graph,
cancellation. The entry points are written once, async (``arun``, ``acontinue_run``);
``run`` and ``continue_run`` drive them from sync code (plait._sync). Those for fresh runs
(run, start, recover, print_response) are :class:`plait._workflow_entry.WorkflowRuns`, those
for stored runs (continue, fork, replay) :class:`plait._workflow_durable.DurableRuns`, and
the checks of the options :mod:`plait._workflow_checks`. A run itself is
:mod:`plait._workflow_run` (set-up, run frame, nested runs); a run with storage keeps its
record through :mod:`plait._runs`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from plait import _cancel, _workflow_run
from plait._budget import Budget, check_budget
from plait._checks import check_seconds, check_storage_url
from plait._executors import Callee
from plait._io import (
    WorkflowRunOutput,
)
from plait._limits import RateLimit, check_limits
from plait._pause import Durability
from plait._public import report_public_home
from plait._sessions import MemorySessions
from plait._step import check_tree
from plait._sync import run_sync
from plait._workflow_checks import (
    check_flag,
    check_options,
    check_sinks,
    event_names,
    slug,
    storage_from_db,
    warn_cache_without_storage,
)
from plait._workflow_durable import DurableRuns
from plait._workflow_entry import RunArguments, WorkflowRuns
from plait.errors import DefinitionError
from plait.primitives import StepNode, as_nodes
from plait.runners import Runner, resolve_runner

if TYPE_CHECKING:
    from datetime import timedelta

    from plait._schedule import Schedule
    from plait.storage import Storage

__all__ = ["RunArguments", "Workflow", "resolve_runner"]


class Workflow(WorkflowRuns, DurableRuns):
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
    ``store_events=True`` keeps every event but those in ``events_to_skip`` (event
    classes or names). ``db=`` is Agno's name for ``storage=``
    (``db=plait.storage.SqliteDb(db_file="tmp.db")``). Assigning ``workflow.storage``
    later moves the runs after it to that storage.

    Agno's run options: ``user_id`` (the default of ``run(user_id=...)``), ``metadata``
    (merged with a run's, the workflow's keys winning, and stored with the run),
    ``dependencies`` (merged with a run's, the run's keys winning) and
    ``add_dependencies_to_context`` (an agent or team step gets them after its message),
    all shown in :class:`~plait.RunContext`; ``stream_executor_events=False`` keeps the
    events of agents and teams inside steps out of the stream; ``telemetry`` is accepted
    (plait sends no telemetry).

    ``retention`` (a :class:`~datetime.timedelta`, seconds, or ``"30d"``, ``"12h"``) is stored
    with each run: ``storage.prune()`` and ``plait runs prune`` without ``--older-than`` delete
    the finished runs last updated longer ago than that.

    ``schedule`` (cron, ``"*/5 * * * *"``, in ``timezone``) makes workers (``plait worker``)
    start one run per tick, exactly once across them; ticks missed while no worker ran are
    skipped but the latest, or all started with ``catch_up=True``. ``max_concurrent_runs`` caps
    how many of its runs workers execute at once, across every worker on its storage (a claim
    counts the runs under a live lease in the same atomic step). Workers apply ``retention``
    too: they prune the finished runs past it every ``prune_every`` seconds.

    ``budget`` (a :class:`~plait.Budget`) limits what one run may spend: requests, tool
    calls, tokens, cost, counted over every agent, team, tool and nested workflow inside it,
    parallel branches included; a call that would cross a limit stops the run with
    :class:`~plait.errors.BudgetExceededError` before it is made (with storage,
    ``Budget(on_exceeded="pause")`` pauses the run for a person instead). ``limits``
    (``{"openai": RateLimit(requests_per_minute=500)}``, keys a provider or a model string)
    make calls wait their turn instead of receiving 429s, across every branch, nested
    workflow and concurrent run of this workflow; ``RateLimit(shared=True)`` counts with every
    process that uses the same ``storage`` (Redis).
    """

    #: how many sessions a workflow without storage keeps in memory (least recently used
    #: dropped first); with storage, sessions live in the storage and this does not apply
    max_sessions_in_memory: int = 1000
    #: seconds a run's lease lasts unless renewed (every third of it while the run executes)
    lease_ttl: float = 30.0
    #: how often (seconds) a run with storage looks for a :meth:`cancel_run` from another process
    cancel_check_interval: float = 1.0
    #: what ``_storage`` (the storage object runs use) was opened from: ``storage`` then
    _storage_spec: Storage | str | None = None

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
        db: Storage | str | None = None,
        durability: Durability = "step",
        store_events: bool = False,
        events_to_skip: Sequence[Any] | None = None,
        stream: bool = False,
        stream_events: bool = False,
        stream_executor_events: bool = True,
        user_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        dependencies: dict[str, Any] | None = None,
        add_dependencies_to_context: bool | None = None,
        telemetry: bool = True,
        budget: Budget | None = None,
        limits: Mapping[str, RateLimit] | None = None,
        record: bool = True,
        add_workflow_history_to_steps: bool = False,
        num_history_runs: int = 3,
        retention: timedelta | float | str | None = None,
        max_concurrent_runs: int | None = None,
        schedule: str | None = None,
        timezone: str = "UTC",
        catch_up: bool = False,
    ) -> None:
        if name is None:
            name = "Workflow"
        if not isinstance(name, str) or not name.strip():
            raise DefinitionError(f"Workflow: expected a non-empty name, got {name!r}")
        self.name = name
        self.id = id or slug(name)
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
        self.sinks = check_sinks(sinks, f"Workflow {name!r}")
        if durability not in ("step", "batch", "exit"):
            raise DefinitionError(
                f"Workflow {name!r}: durability must be 'step', 'batch' or 'exit', got {durability!r}"
            )
        if db is not None:
            storage = storage_from_db(db, storage, f"Workflow {name!r}")
        self.storage = storage if storage is not None else os.environ.get("PLAIT_STORAGE") or None
        check_storage_url(self.storage, f"Workflow {name!r}")
        self._storage: Storage | None = None
        self.durability: Durability = durability
        self.store_events = store_events
        self._events_to_skip = event_names(events_to_skip or [], f"Workflow {name!r}")
        self.events_to_skip = list(events_to_skip or [])
        self.stream_executor_events = check_flag(stream_executor_events, "stream_executor_events", name)
        if user_id is not None and not isinstance(user_id, str):
            raise DefinitionError(f"Workflow {name!r}: user_id must be a str, got {user_id!r}")
        self.user_id = user_id
        self.metadata = check_options(metadata, "metadata", f"Workflow {name!r}")
        self.dependencies = check_options(dependencies, "dependencies", f"Workflow {name!r}")
        if add_dependencies_to_context is not None:
            check_flag(add_dependencies_to_context, "add_dependencies_to_context", name)
        self.add_dependencies_to_context = add_dependencies_to_context
        #: Agno's switch; either way plait sends no telemetry anywhere
        self.telemetry = check_flag(telemetry, "telemetry", name)
        #: with storage, record every model and tool call (replay, resume inside a step)
        self.record = check_flag(record, "record", name)
        #: seconds a finished run is kept (stored with each run): what ``Storage.prune()`` and
        #: ``plait runs prune`` without ``--older-than`` delete after
        self.retention: float | None = None
        if retention is not None:
            from plait.storage._retention import parse_duration

            self.retention = parse_duration(retention, f"Workflow {name!r}: retention")
        #: ``module:name`` of this workflow, recorded with its runs so the CLI can resume them
        self.target: str | None = None
        self.stream = stream
        self.stream_events = stream_events
        #: provider policy: what one run may spend, every agent, tool and nested workflow inside
        self.budget = check_budget(budget, f"Workflow {name!r}")
        #: provider policy: rate limits by provider or model, shared by every run of this workflow
        self.limits = limits
        self._limiters = check_limits(
            limits, f"Workflow {name!r}", storage=self.storage, ready=self._ready_storage
        )  # a shared one counts in the workflow's storage
        from plait._workflow_history import WorkflowHistory

        #: Agno's workflow history: agent and team steps get the session's earlier runs
        self._history = WorkflowHistory(f"Workflow {name!r}", add_workflow_history_to_steps, num_history_runs)
        self.add_workflow_history_to_steps = self._history.enabled
        self.num_history_runs = num_history_runs
        if max_concurrent_runs is not None and (
            isinstance(max_concurrent_runs, bool)
            or not isinstance(max_concurrent_runs, int)
            or max_concurrent_runs < 1
        ):
            raise DefinitionError(
                f"Workflow {name!r}: max_concurrent_runs must be an int >= 1 or None, got {max_concurrent_runs!r}"
            )
        #: how many runs of this workflow one worker (``plait worker``) executes at once (None: no cap)
        self.max_concurrent_runs = max_concurrent_runs
        #: a cron schedule workers start runs on (plait._schedule), in ``timezone``
        self._schedule: Schedule | None = None
        if schedule is not None:
            from plait._schedule import Schedule

            self._schedule = Schedule(schedule, timezone, catch_up, f"Workflow {name!r}")
        self.schedule, self.timezone, self.catch_up = schedule, timezone, catch_up
        self._function: Callee | None = None
        self.nodes: list[StepNode] = []
        if steps is None:
            raise DefinitionError(f"Workflow {name!r}: expected steps=[...] or steps=a function, got None")
        if isinstance(steps, Workflow):
            self.nodes = as_nodes([steps], where=f"Workflow {name!r}")
        elif (
            callable(steps)
            and not isinstance(steps, (list, tuple, StepNode))
            and not hasattr(steps, "run_as_step")
        ):
            self._function = Callee(steps, what=f"Workflow {name!r} steps function")
        else:
            self.nodes = as_nodes(steps, where=f"Workflow {name!r}")
            if not self.nodes:
                raise DefinitionError(f"Workflow {name!r}: expected at least one step")
        check_tree(self.nodes, where=f"Workflow {name!r}")
        from plait._workflow_history import wants_history

        self._history.kept = wants_history(self._history.enabled, self.nodes)
        self._tree_checked = False  # checked again at the first run: steps may change after this
        self._definition: dict[str, Any] | None = None  # plait._definition.fingerprint, once
        self._sessions = MemorySessions(self.max_sessions_in_memory)
        self._sessions_lock = threading.Lock()
        self._last_run_output: WorkflowRunOutput | None = None
        if self.storage is None:
            warn_cache_without_storage(self)

    def __repr__(self) -> str:
        return f"Workflow({self.name!r})"

    def __getstate__(self) -> dict[str, Any]:
        # Shipped to another process (a distributed runner): the definition travels,
        # this process's sessions, lock, runner, storage connection and last output do not.
        state = dict(self.__dict__)
        state.update(_sessions=None, _sessions_lock=None, _runner=None, _storage=None, _last_run_output=None)
        state["_limiters"] = None  # rate limits are per process: rebuilt from ``limits`` there
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._limiters = check_limits(
            self.__dict__.get("limits"),
            f"Workflow {self.name!r}",
            storage=self.storage,
            ready=self._ready_storage,
        )
        self._sessions = MemorySessions(self.max_sessions_in_memory)
        self._sessions_lock = threading.Lock()

    # -- public API ------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the storage this workflow opened from its URL (a storage object you
        passed stays yours to close). The workflow reopens it if it runs again."""
        storage, self._storage = self._storage, None
        if storage is not None and isinstance(self._storage_spec, str):
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
        session_id = self._current_session_id(session_id)
        if session_id is None:
            return None
        storage = await self._ready_storage()
        if storage is None:
            return self._sessions.get(session_id)
        record = await storage.load_session(session_id)
        return None if record is None else record.state

    def update_session_state(
        self, session_state_updates: dict[str, Any], session_id: str | None = None
    ) -> dict[str, Any]:
        """Set keys of a session's state (as Agno does) and return the state after.

        ``session_id`` defaults as in :meth:`get_session_state`. A session not stored yet
        starts from ``Workflow(session_state=...)``. With storage the write is atomic against
        runs of the session committing at the same time (compare-and-set, retried): their
        changes and these updates both land; a run that is still executing commits its own
        changes on top when it ends.
        """
        return run_sync(self.aupdate_session_state(session_state_updates, session_id))

    async def aupdate_session_state(
        self, session_state_updates: dict[str, Any], session_id: str | None = None
    ) -> dict[str, Any]:
        """:meth:`update_session_state` from async code."""
        where = f"Workflow {self.name!r}: update_session_state"
        if not isinstance(session_state_updates, dict):
            raise DefinitionError(
                f"{where}: expected a dict of updates, got {type(session_state_updates).__name__}"
            )
        session_id = self._current_session_id(session_id)
        if session_id is None:
            raise DefinitionError(
                f"{where}: no session: pass session_id=, set Workflow(session_id=...) or run the workflow first"
            )
        storage = await self._ready_storage()
        if storage is None:
            return self._sessions.update(session_id, self.session_state, session_state_updates)
        from plait._runs import update_stored_session

        return await update_stored_session(self, storage, session_id, session_state_updates)

    def _current_session_id(self, session_id: str | None) -> str | None:
        if session_id is not None:
            return session_id
        last = self._last_run_output
        return self.session_id or (last.session_id if last is not None else None)

    def to_graph(self) -> dict[str, Any]:
        """This workflow's tree as a JSON-able dict (``json.dumps`` takes it as it is).

        ``nodes``: every node, depth first, with ``id`` (its step id, as checkpoints and
        events name it: ``"inner/draft"``, ``"research/web"``; a loop's children as
        ``"loop[*]/child"``), ``name``, ``kind`` (step, agent, team, function, workflow, steps,
        parallel, condition, loop, router, approval), ``step_type``, ``description``,
        ``parent`` and ``children`` (ids), plus what its kind knows: a condition's ``then``
        and ``else`` ids, a router's ``choices``, a loop's ``max_iterations`` and
        ``end_condition``, an approval's ``approval`` kind, ``prompt``, ``routes`` and
        ``on_reject``. ``edges``: ``{"source", "target", "kind"}`` between siblings run one
        after the other (``next``, from ``"__start__"`` and to ``"__end__"`` at the top), from
        a container into what it runs (``branch``, ``then``, ``else``, ``choice``,
        ``route`` with a ``label``, ``rejected``) and a loop's ``repeat``. A fully-Python
        workflow (``steps=fn``) is one node saying so (``"python": True``).
        """
        from plait._graph import to_graph

        return to_graph(self)

    def to_mermaid(self) -> str:
        """This workflow as a Mermaid flowchart (``flowchart TD``): Parallel as a fork and a
        join, Condition as a diamond with ``then``/``else`` edges, Router as a diamond with an
        edge per choice, Loop as a box with a ``repeat`` back edge, Steps and nested
        workflows as boxes (subgraphs), approvals as hexagons. Names are escaped and cut to
        a safe label. ``plait graph MODULE:WORKFLOW`` prints it.
        """
        from plait._graph import to_mermaid

        return to_mermaid(self)

    def cancel_run(self, run_id: str) -> bool:
        """Cancel a running run, from any thread, task or process (as Agno's ``cancel_run``).

        The run stops at its next safe point (before its next step; sync code that checks
        ``run_context.cancelled`` sooner), is stored as CANCELLED, and returns a
        :class:`WorkflowRunOutput` with ``status=RunStatus.CANCELLED``; continue it with
        :meth:`continue_run`. A run in this process is reached at once; a run another
        process executes through the storage, within ``cancel_check_interval`` seconds.
        True when the run was running, False for an unknown, finished or paused run. As in
        Agno, a request for a run id not started yet is remembered: a run with that id that
        starts in this process within a minute is cancelled before its first step.
        """
        return run_sync(self.acancel_run(run_id))

    async def acancel_run(self, run_id: str) -> bool:
        """:meth:`cancel_run` from async code."""
        if not isinstance(run_id, str) or not run_id:
            raise DefinitionError(
                f"Workflow {self.name!r}: cancel_run expects a run id (a str), got {run_id!r}"
            )
        _cancel.cancelling()
        run = _cancel.active_run(run_id)
        if run is not None:
            run.request_cancel()
            return True
        storage = await self._ready_storage()
        if storage is not None:
            from plait._runs import request_cancel

            found = await request_cancel(storage, run_id)
            if found is not None:
                return found
        # unknown here: remember the request (as Agno does), in case the run is about to
        # start in this process; the answer is still False
        _cancel.cancel_early(run_id)
        return False

    # -- execution -------------------------------------------------------------------

    #: a top-level run of this workflow (plait._workflow_run)
    _run = _workflow_run.run

    async def _ready_storage(self) -> Storage | None:
        if self.storage is None:
            return None
        if self._storage is None or not self._opened_from(self.storage):
            from plait.storage import resolve_storage

            with self._sessions_lock:  # concurrent first runs must share one storage object
                if self._storage is None or not self._opened_from(self.storage):
                    # first use, or ``workflow.storage = ...`` since: that one from now on
                    self._storage, self._storage_spec = resolve_storage(self.storage), self.storage
        assert self._storage is not None
        await self._storage.setup()  # idempotent; the backend guards it
        return self._storage

    def _opened_from(self, spec: Storage | str) -> bool:
        return self._storage_spec is spec or self._storage_spec == spec

    @property
    def skipped_events(self) -> frozenset[str]:
        """The names of the events a run keeps out of its storage: ``events_to_skip`` (event
        classes, names or enum members) as names, for code that stores events itself."""
        return self._events_to_skip

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

    #: run as a step of an outer workflow (the :class:`plait.primitives.RunsAsStep`
    #: protocol): deeper, with a state copy merged back after
    run_as_step = _workflow_run.run_nested
    #: this workflow's steps under a context, in the run frame (events, hooks, span, timeout)
    _execute = _workflow_run.execute

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


report_public_home(__name__, globals(), ["RunArguments"])  # plait.workflow.RunArguments
