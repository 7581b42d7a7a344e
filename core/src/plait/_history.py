"""Agents' conversation history: ``agent.run(..., session_id=...)`` keeps the conversation.

A run with a session (``session_id=`` given to ``run``/``arun``/``print_response``, or the
workflow run's session for an agent inside a step) appends the messages it added (the user's
input, the assistant's replies and tool calls, the tool results; never the system prompt) as
one :class:`~plait.storage.HistoryRecord` when it ends. With ``Agent(history=N)`` (Agno's
``add_history_to_context=True, num_history_runs=N``) the next run of that session sends the
last ``N`` runs' messages between the system prompt and the new input. Off by default, as in
Agno; ``history=True`` is Agno's default of :data:`DEFAULT_HISTORY_RUNS` runs.

Where it is kept: the agent's ``storage=`` (Agno's ``db=``, or ``$PLAIT_STORAGE``); inside a
workflow step, the workflow's storage; else in memory, for the most recent
:data:`MEMORY_SESSIONS` conversations. Stored as JSON (the codec's tagged form), appended, never
read-modified-written, so two processes adding to one session both land.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from plait._checks import check_storage_url
from plait.errors import DefinitionError
from plait.models import Message, Reasoning, ToolCall

if TYPE_CHECKING:
    from plait.storage import HistoryRecord, Storage

__all__ = [
    "DEFAULT_HISTORY_RUNS",
    "MEMORY_SESSIONS",
    "RECENT",
    "AgentHistory",
    "HistoryScope",
    "agent_history",
    "check_session_id",
    "decode_messages",
    "history_runs",
]

#: how many past runs ``history=True`` (Agno's ``add_history_to_context=True``) sends: Agno's default
DEFAULT_HISTORY_RUNS = 3
#: the last runs of a conversation a step's agent run is compared with before it is added
#: (the same step of the same workflow run saying the same again is not added twice)
RECENT = 8
#: conversations kept in memory without storage (least recently used dropped first), the same
#: bound as a workflow's sessions without storage
MEMORY_SESSIONS = 1000


@dataclass(frozen=True, slots=True)
class HistoryScope:
    """The session a run belongs to. ``storage`` is the enclosing workflow run's (None: the
    agent's own); ``explicit`` says ``session_id=`` was given to the run itself, which keeps
    the conversation even when the agent does not send history (as Agno stores every run); ``origin`` is the workflow run and
    step the run is part of."""

    session_id: str
    storage: Any = None
    explicit: bool = True
    #: the workflow run and step the run is part of (``run_id/step_id``): a step that runs
    #: again on resume, its calls answered from the record, does not add the same turn twice
    origin: str | None = None
    #: a replay's or fork's origin ``(session_id, created_at)``: the conversation continues
    #: that session's as it was then (the original run's turns left out), then its own
    seed: tuple[str, float] | None = None

    @classmethod
    def of_step(cls, ctx: Any) -> HistoryScope:
        """The session of an agent run inside workflow step ``ctx`` (a StepContext): the
        workflow run's, with its storage."""
        run = ctx.run
        return cls(
            ctx.frame.session_id, run.storage, False, f"{ctx.frame.run_id}/{ctx.step_id}", run.history_from
        )


def history_runs(where: str, history: Any, add_history_to_context: Any, num_history_runs: Any) -> int | None:
    """How many past runs a run sends (None: none), from ``history=`` or Agno's two options."""
    if history is not None and (add_history_to_context is not None or num_history_runs is not None):
        raise DefinitionError(
            f"{where}: give history= or Agno's add_history_to_context= / num_history_runs=, not both"
        )
    if history is None:
        if num_history_runs is not None and add_history_to_context is None:
            add_history_to_context = True  # num_history_runs=N alone asks for history
        if add_history_to_context is None or add_history_to_context is False:
            return None
        if add_history_to_context is not True:
            raise DefinitionError(
                f"{where}: add_history_to_context must be True or False, got {add_history_to_context!r}"
            )
        history = DEFAULT_HISTORY_RUNS if num_history_runs is None else num_history_runs
        option = "num_history_runs"
    else:
        option = "history"
    if history is False:
        return None
    if history is True:
        return DEFAULT_HISTORY_RUNS
    if not isinstance(history, int) or isinstance(history, bool) or history < 0:
        raise DefinitionError(
            f"{where}: {option} must be True, False or a number of past runs (an int >= 0), got {history!r}"
        )
    return history


def agent_history(
    where: str, history: Any, storage: Any, agno: dict[str, Any]
) -> tuple[int | None, AgentHistory]:
    """An agent's (or team's) ``history=`` and ``storage=``, taking Agno's names for them
    (``add_history_to_context``, ``num_history_runs``, ``num_history_messages``,
    ``max_tool_calls_from_history``, ``db``) out of its other options."""
    add = agno.pop("add_history_to_context", None)
    num_runs = agno.pop("num_history_runs", None)
    messages = _count(where, "num_history_messages", agno.pop("num_history_messages", None))
    max_tool_calls = _count(
        where, "max_tool_calls_from_history", agno.pop("max_tool_calls_from_history", None)
    )
    if messages is not None:
        if history is not None or num_runs is not None:
            raise DefinitionError(
                f"{where}: num_history_messages= bounds the history by messages, history= / "
                "num_history_runs= by runs: give one of them"
            )
        if add is None:
            add = True  # num_history_messages=N alone asks for history, as num_history_runs=N does
        runs = None if history_runs(where, None, add, None) is None else _ALL
    else:
        runs = history_runs(where, history, add, num_runs)
    if "db" in agno:
        from plait._workflow_checks import storage_from_db

        storage = storage_from_db(agno.pop("db"), storage, where)
    kept = AgentHistory(where, storage)
    kept.runs = runs
    kept.message_limit = None if runs is None else messages
    kept.max_tool_calls = max_tool_calls
    return (None if runs is _ALL else runs), kept


#: the runs a history bounded by messages reads (it stops reading when it has enough)
_ALL = -1


def _count(where: str, option: str, value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise DefinitionError(f"{where}: {option} must be a number (an int >= 0), got {value!r}")
    return value


class AgentHistory:
    """One agent's conversations: where they are kept and how runs read and extend them."""

    def __init__(self, where: str, storage: Any) -> None:
        if storage is None:
            storage = os.environ.get("PLAIT_STORAGE") or None
        if storage is not None:
            from plait.storage import Storage

            if not isinstance(storage, (str, Storage)):
                raise DefinitionError(
                    f"{where}: storage must be a Storage object or a URL such as 'sqlite:///runs.db', "
                    f"got {type(storage).__name__}"
                )
            check_storage_url(storage, where)
        self.where = where
        self.spec: Any = storage
        #: what a run sends: the last ``runs`` runs (None: no history; ``_ALL``: as many as the
        #: last ``message_limit`` messages take), at most ``max_tool_calls`` tool results in them
        self.runs: int | None = None
        self.message_limit: int | None = None
        self.max_tool_calls: int | None = None
        self._storage: Storage | None = None
        self._lock = threading.Lock()
        self._memory: OrderedDict[tuple[str, str], list[HistoryRecord]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        """Whether a run sends history (and so always keeps its turn)."""
        return self.runs is not None

    def __getstate__(self) -> dict[str, Any]:  # shipped to another process: the definition only
        return {
            "where": self.where,
            "spec": self.spec,
            "policy": (self.runs, self.message_limit, self.max_tool_calls),
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["where"], state["spec"])  # type: ignore[misc]
        self.runs, self.message_limit, self.max_tool_calls = state["policy"]

    async def _store(self, scope_storage: Any = None) -> Storage | None:
        """The storage that holds this conversation: the workflow's, the agent's, or None (memory)."""
        if scope_storage is not None:
            return scope_storage  # type: ignore[no-any-return]
        if self.spec is None:
            return None
        if self._storage is None:
            from plait.storage import resolve_storage

            with self._lock:
                if self._storage is None:
                    self._storage = resolve_storage(self.spec)
        assert self._storage is not None
        await self._storage.setup()  # idempotent
        return self._storage

    async def records(
        self, session_id: str, agent_id: str, limit: int | None, scope_storage: Any = None
    ) -> list[HistoryRecord]:
        """The conversation's last ``limit`` runs (None: all), oldest first."""
        check_session_id(session_id, self.where)
        storage = await self._store(scope_storage)
        if storage is not None:
            from plait._blobs import load_blobs

            stored = await storage.load_history(session_id, agent_id, limit=limit)
            await load_blobs(storage, *[r.messages for r in stored])  # the media they refer to
            return stored
        with self._lock:
            found = list(self._memory.get((session_id, agent_id), []))
        if limit is not None:
            found = found[-limit:] if limit > 0 else []
        return found

    async def messages(self, scope: HistoryScope, agent_id: str) -> list[Message]:
        """What a run of ``scope`` sends before its input: the last runs' messages (Agno's
        ``num_history_runs``), or the last messages (``num_history_messages``, never starting
        with a tool result), with at most ``max_tool_calls`` tool calls (the latest kept)."""
        found = [
            m for record in await self.sent(scope, agent_id) for m in decode_messages(record, self.where)
        ]
        if self.message_limit is not None:
            found = found[-self.message_limit :] if self.message_limit else []
            while found and found[0].role == "tool":  # its call was cut off: not sent alone
                found.pop(0)
        if self.max_tool_calls is not None:
            found = keep_tool_calls(found, self.max_tool_calls)
        return found

    async def sent(self, scope: HistoryScope, agent_id: str) -> list[HistoryRecord]:
        """The past runs whose messages a run of ``scope`` sends, oldest first."""
        if self.runs is _ALL:
            assert self.message_limit is not None
            wanted = max(1, self.message_limit)  # runs, read until they hold enough messages
            while True:
                found = await self._sent(scope, agent_id, wanted)
                if len(found) < wanted or sum(len(r.messages) for r in found) >= self.message_limit:
                    return found
                wanted *= 2
        return await self._sent(scope, agent_id, self.runs)

    async def _sent(self, scope: HistoryScope, agent_id: str, runs: int | None) -> list[HistoryRecord]:
        if not runs:
            return []
        if scope.origin is None:
            found = await self.records(scope.session_id, agent_id, runs, scope.storage)
        else:  # not the turn this very step added before (a resume runs it again): what it sent then
            found = await self.records(scope.session_id, agent_id, runs + RECENT, scope.storage)
            found = [r for r in found if r.origin != scope.origin]
        if scope.seed is not None and len(found) < runs:
            session_id, before = scope.seed  # a replay: the original's conversation before it ran
            earlier = await self.records(session_id, agent_id, None, scope.storage)
            found = [r for r in earlier if r.created_at < before] + found
        return found[-runs:]

    async def append(self, scope: HistoryScope, agent_id: str, run_id: str, messages: list[Message]) -> None:
        """Add one run's messages to its conversation."""
        from plait._io import CODEC
        from plait.storage import HistoryRecord

        what = f"the messages of {self.where} (run {run_id})"
        record = HistoryRecord(
            session_id=scope.session_id,
            agent_id=agent_id,
            run_id=run_id,
            messages=CODEC.encode([m for m in messages if m.role != "system"], what),
            origin=scope.origin,
        )
        if scope.origin is not None:  # a step run again (a resume, a retry) that said the same
            recent = await self.records(scope.session_id, agent_id, RECENT, scope.storage)
            if any(r.origin == scope.origin and r.messages == record.messages for r in recent):
                return
        storage = await self._store(scope.storage)
        if storage is not None:
            from plait._blobs import save_blobs

            await save_blobs(storage, record.messages)
            await storage.append_history(record)
            return
        key = (scope.session_id, agent_id)
        with self._lock:
            self._memory.setdefault(key, []).append(record)
            self._memory.move_to_end(key)
            while len(self._memory) > MEMORY_SESSIONS:
                self._memory.popitem(last=False)

    async def clear(self, session_id: str, agent_id: str, scope_storage: Any = None) -> None:
        check_session_id(session_id, self.where)
        storage = await self._store(scope_storage)
        if storage is not None:
            await storage.clear_history(session_id, agent_id)
        with self._lock:
            self._memory.pop((session_id, agent_id), None)


def keep_tool_calls(messages: list[Message], limit: int) -> list[Message]:
    """``messages`` with only the latest ``limit`` tool calls (Agno's ``max_tool_calls_from_history``):
    older tool results are left out, and so are their calls in the assistant messages (an
    assistant message left with neither calls nor text goes too)."""
    results = [m.tool_call_id for m in messages if m.role == "tool"]
    if len(results) <= limit:
        return messages
    keep = set(results[len(results) - limit :]) if limit else set()
    kept: list[Message] = []
    for message in messages:
        if message.role == "tool":
            if message.tool_call_id in keep:
                kept.append(message)
        elif message.role == "assistant" and message.tool_calls:
            calls = [call for call in message.tool_calls if call.id in keep]
            if calls or message.content:
                kept.append(replace(message, tool_calls=calls))
        else:
            kept.append(message)
    return kept


def decode_messages(record: HistoryRecord, where: str) -> list[Message]:
    """A stored run's messages as :class:`~plait.models.Message` objects."""
    from plait._io import CODEC

    what = f"the stored history of {where} (run {record.run_id})"
    decoded = CODEC.decode(record.messages, what, [Message, ToolCall, Reasoning])
    return list(decoded or [])


def check_session_id(session_id: Any, where: str) -> None:
    """A session id is a non-empty string (a DefinitionError naming the agent otherwise)."""
    if not isinstance(session_id, str) or not session_id:
        raise DefinitionError(f"{where}: session_id must be a non-empty string, got {session_id!r}")
