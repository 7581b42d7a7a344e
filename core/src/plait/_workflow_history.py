"""Workflow history: a step sees the earlier runs of its workflow in the same session.

Agno's ``Workflow(add_workflow_history_to_steps=True, num_history_runs=3)`` and
``Step(add_workflow_history=True)``: an agent or team step gets the last runs' inputs and
outputs before its message, in Agno's ``<workflow_history_context>`` block, and any step's
code reads them with ``step_input.get_workflow_history(num_runs=5)`` (``(input, output)``
pairs, oldest first) or ``get_workflow_history_context()``. This is the workflow's
history, not an agent's conversation (``Agent(history=N)``, :mod:`plait._history`).

The runs are the completed top-level runs of the step's workflow (by id) in the run's
session, read when a step asks. A nested workflow's run is part of its parent's, not a run of
its own: as in Agno (where a nested workflow runs in its parent's session and reads that
session's runs), its steps see the top-level workflow's earlier runs, when the nested workflow
(its ``add_workflow_history_to_steps``) or the step asks for them. With storage they are
read from the stored runs (every process's); without storage, from memory, where a workflow
that turns the history on (or holds a nested workflow that does) keeps its last
:data:`MEMORY_RUNS` runs per session for its most recent :data:`MEMORY_SESSIONS` sessions.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Any

from plait import _io
from plait._content import format_content
from plait._io import RunStatus, StepInput
from plait.errors import DefinitionError

if TYPE_CHECKING:
    from plait._context import StepContext
    from plait._node import StepNode

__all__ = [
    "DEFAULT_RUNS",
    "MEMORY_RUNS",
    "MEMORY_SESSIONS",
    "WorkflowHistory",
    "cache_context",
    "check_flag",
    "check_runs",
    "context_text",
    "of_current_step",
    "past_runs",
    "remember_run",
    "step_runs",
    "wants_history",
    "with_history",
]

#: how many earlier runs a step is given (Agno's default ``num_history_runs=3``)
DEFAULT_RUNS = 3
#: runs kept per session in memory by a workflow without storage
MEMORY_RUNS = 100
#: sessions kept in memory by a workflow without storage (least recently used dropped first)
MEMORY_SESSIONS = 1000
#: stored runs read per query when a step asks for all of them (num_runs=None)
_PAGE = 200


def check_runs(value: Any, option: str, where: str, *, optional: bool = False) -> int | None:
    """``num_history_runs`` (or a ``num_runs`` argument): a count of runs, an int >= 0."""
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise DefinitionError(
            f"{where}: {option} must be a number of earlier runs (an int >= 0), got {value!r}"
        )
    return value


def check_flag(value: Any, option: str, where: str) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise DefinitionError(f"{where}: {option} must be True or False, got {value!r}")
    return value


class WorkflowHistory:
    """A workflow's history settings, and its runs kept in memory when it has no storage."""

    def __init__(self, where: str, enabled: Any, runs: Any) -> None:
        self.enabled = bool(check_flag(enabled, "add_workflow_history_to_steps", where))
        self.runs = check_runs(runs, "num_history_runs", where)
        #: whether any step is given the history (set by the workflow once its steps are known):
        #: without storage, only then are its runs kept in memory
        self.kept = self.enabled
        self._memory: OrderedDict[str, deque[tuple[str, str]]] = OrderedDict()
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:  # shipped to another process: the settings only
        return {"enabled": self.enabled, "runs": self.runs, "kept": self.kept}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.enabled, self.runs, self.kept = state["enabled"], state["runs"], state["kept"]
        self._memory, self._lock = OrderedDict(), threading.Lock()

    def remember(self, session_id: str, input: Any, content: Any) -> None:
        """Keep a completed run of a workflow without storage."""
        with self._lock:
            runs = self._memory.get(session_id)
            if runs is None:
                runs = self._memory[session_id] = deque(maxlen=MEMORY_RUNS)
            runs.append((format_content(input), format_content(content)))
            self._memory.move_to_end(session_id)
            while len(self._memory) > MEMORY_SESSIONS:
                self._memory.popitem(last=False)

    def remembered(self, session_id: str, num_runs: int | None) -> list[tuple[str, str]]:
        with self._lock:
            runs = list(self._memory.get(session_id, ()))
        return runs if num_runs is None else runs[len(runs) - num_runs :] if num_runs else []


def wants_history(enabled: bool, nodes: list[StepNode]) -> bool:
    """Whether any of ``nodes`` (at any depth of their containers, not inside nested
    workflows) is given the history: the workflow's switch or a step's own."""
    if enabled:
        return True
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if getattr(node, "add_workflow_history", None):
            return True
        nested = getattr(node, "workflow", None)
        if nested is None:
            stack.extend(node.children())
        elif nested._history.kept:  # a nested workflow's steps given the history: this one's runs
            return True
    return False


def _owner(ctx: StepContext) -> Any:
    """The workflow whose earlier runs a step sees: its own, or for a step of a nested
    workflow the top-level one (a nested run is part of its parent's run, as in Agno, where
    the nested workflow runs in the parent's session and reads that session's runs)."""
    frame = ctx.frame
    return frame.workflow if frame.root is None or frame.workflow is None else frame.root


async def past_runs(ctx: StepContext, num_runs: int | None) -> list[tuple[str, str]]:
    """The last ``num_runs`` (None: all) completed runs of the workflow ``ctx`` runs in, in
    its session, before this run: ``(input, output)`` as text, oldest first."""
    frame = ctx.frame
    workflow = _owner(ctx)
    if workflow is None:  # a Parallel branch shipped to another process (plait-ray, ...)
        raise DefinitionError(
            f"step {ctx.step_name!r}: the workflow's earlier runs are not available in a Parallel branch "
            "that runs in another process; read them in a step before the Parallel"
        )
    storage = ctx.run.storage
    if storage is None:
        if not workflow._history.kept:
            _not_kept(ctx)
        kept: list[tuple[str, str]] = workflow._history.remembered(frame.session_id, num_runs)
        return kept
    if num_runs == 0:
        return []
    found: list[Any] = []
    offset = 0
    while num_runs is None or len(found) < num_runs:
        page = _PAGE if num_runs is None else num_runs - len(found)
        records = await storage.list_runs(
            limit=page,
            offset=offset,
            status=RunStatus.COMPLETED.value,
            workflow_id=workflow.id,
            session_id=frame.session_id,
        )
        found.extend(r for r in records if r.run_id != frame.run_id)
        offset += len(records)
        if len(records) < page:
            break
    seed = ctx.run.history_from
    if seed is not None and (num_runs is None or len(found) < num_runs):
        found.extend(
            await _runs_before(
                storage, workflow.id, seed, None if num_runs is None else num_runs - len(found)
            )
        )
    found.reverse()  # newest first from the storage, oldest first here
    return [(format_content(r.input), format_content(r.content)) for r in found]


async def _runs_before(
    storage: Any, workflow_id: str, seed: tuple[str, float], wanted: int | None
) -> list[Any]:
    """A replay's or fork's earlier runs: the completed runs of the original's session that
    started before it (``seed``: that session and the original's start), newest first."""
    session_id, before = seed
    found: list[Any] = []
    offset = 0
    while wanted is None or len(found) < wanted:
        records = await storage.list_runs(
            limit=_PAGE,
            offset=offset,
            status=RunStatus.COMPLETED.value,
            workflow_id=workflow_id,
            session_id=session_id,
        )
        found.extend(r for r in records if r.created_at < before)
        offset += len(records)
        if len(records) < _PAGE:
            break
    return found if wanted is None else found[:wanted]


def _not_kept(ctx: StepContext) -> None:
    raise DefinitionError(
        f"Workflow {_owner(ctx).name!r}, step {ctx.step_name!r}: without storage a workflow keeps "
        "its runs for get_workflow_history() only when asked to: Workflow(..., "
        "add_workflow_history_to_steps=True), Step(..., add_workflow_history=True), or storage="
    )


def context_text(runs: list[tuple[str, str]]) -> str | None:
    """Agno's ``<workflow_history_context>`` block for ``runs`` (None: no earlier runs)."""
    if not runs:
        return None
    lines = ["<workflow_history_context>"]
    for number, (input, output) in enumerate(runs, 1):
        lines.append(f"[Workflow Run-{number}]")
        if input:
            lines.append(f"User input: {input}")
        if output:
            lines.append(f"Workflow output: {output}")
        lines.append("")
    lines += ["</workflow_history_context>", ""]
    return "\n".join(lines)


def step_runs(step: Any, workflow: Any) -> int | None:
    """How many earlier runs an agent or team step is given (None: none)."""
    own = step.add_workflow_history
    if own is False or (own is None and (workflow is None or not workflow._history.enabled)):
        return None
    if step.num_history_runs is not None:
        return int(step.num_history_runs)
    return DEFAULT_RUNS if workflow is None else workflow._history.runs


async def with_history(step: Any, step_input: StepInput, ctx: StepContext) -> StepInput:
    """``step_input`` with the workflow's history before its message, for an agent or team
    step that is given it (the same StepInput when it is not, or there is none yet)."""
    runs = step_runs(step, ctx.frame.workflow)
    if not runs:
        return step_input
    text = context_text(await past_runs(ctx, runs))
    if text is None:
        return step_input
    message = text + format_content(step_input.message)
    return dataclasses.replace(step_input, previous_step_content=message)  # its media too


def remember_run(workflow: Any, ctx: StepContext, input: Any, output: Any) -> None:
    """After a run of a workflow whose steps are given the history: without storage, keep it."""
    # a top-level run, as the storage keeps runs (a nested workflow's are part of its parent's)
    if ctx.run.storage is None and ctx.frame.depth == 0 and output.status is RunStatus.COMPLETED:
        workflow._history.remember(ctx.frame.session_id, input, output.content)


async def cache_context(step: Any, ctx: StepContext) -> Any:
    """What a cached agent or team step's answer depends on besides its input: the workflow's
    earlier runs it is given, and the ids of the conversation's runs its agent sends."""
    if step.agent is None:
        return None
    found: list[Any] = []
    runs = step_runs(step, ctx.frame.workflow)
    if runs:
        found.append(await past_runs(ctx, runs))
    agent = step.agent
    if agent._conversation()[0].runs:
        from plait._history import HistoryScope

        history, agent_id = agent._conversation()
        records = await history.sent(HistoryScope.of_step(ctx), agent_id)
        found.append([record.run_id for record in records])
    return found or None


async def history_turn(step: Any, ctx: StepContext, messages: list[Any] | None) -> Any:
    """:meth:`plait.Step.history_turn`: the turn (stored messages) a cached agent or team step
    added to its conversation, or add ``messages`` as this run's turn on a cache hit."""
    if step.agent is None:
        return None
    history, agent_id = step.agent._conversation()
    if not history.enabled:  # a step's run keeps its turn only when its agent sends history
        return None
    from plait._history import RECENT, HistoryScope

    scope = HistoryScope.of_step(ctx)
    if messages is None:
        records = await history.records(scope.session_id, agent_id, RECENT, scope.storage)
        found = [r for r in records if r.origin == scope.origin]
        return found[-1].messages if found else None
    from plait._history import decode_messages
    from plait._ids import new_id
    from plait.storage import HistoryRecord

    record = HistoryRecord(session_id=scope.session_id, agent_id=agent_id, run_id=new_id(), messages=messages)
    await history.append(scope, agent_id, record.run_id, decode_messages(record, history.where))
    return None


def of_current_step(num_runs: Any, method: str, text: bool = False) -> Any:
    """``StepInput.get_workflow_history`` (``text``: ``..._context``) for the step whose code
    is running."""
    runs = _of_current_step(num_runs, method)
    return context_text(runs) if text else runs


def _of_current_step(num_runs: Any, method: str) -> list[tuple[str, str]]:
    from plait._context import current_step

    ctx = current_step()
    if ctx is None:
        raise DefinitionError(
            f"StepInput.{method}() reads the workflow's runs: call it in a step's code, during a run"
        )
    runs = check_runs(num_runs, "num_runs", f"step {ctx.step_name!r}: {method}()", optional=True)
    workflow = _owner(ctx)
    if ctx.run.storage is None and workflow is not None:
        if not workflow._history.kept:
            _not_kept(ctx)
        kept: list[tuple[str, str]] = workflow._history.remembered(ctx.frame.session_id, runs)
        return kept
    from plait._sync import sync

    return sync(past_runs(ctx, runs))  # a sync step's code waits for the storage, as Agno's does


_io.HISTORY_READER = of_current_step
