"""What the executor stores: step outputs and session state as JSON, checkpoints, the step cache.

:func:`dump_output` / :func:`load_output` (and the state pair) turn what a step
leaves behind into stored data and back; :class:`Checkpointer` writes a run's
checkpoints with its durability; :class:`CachePolicy` and the ``cache_*``
functions are the step cache. The executor calls in here only when a run has
storage (checkpoints, cache) or is being resumed (restored checkpoints), so runs
without storage pay three attribute checks per step. The run's own bookkeeping
(record, lease, resume, answers) is :mod:`plait._runs`; pauses are :mod:`plait._pause`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter
from pydantic_core import PydanticSerializationError, to_jsonable_python

from plait._codec import decode, encode
from plait._io import MEDIA_FIELDS, StepOutput, carries_media
from plait._public import publish as _publish
from plait.errors import DefinitionError
from plait.storage import CacheEntry, StepCheckpoint, Storage, StorageError
from plait.storage._shared import StateSharer

__all__ = [
    "CachePolicy",
    "Checkpointer",
    "Durability",
    "dump_input",
    "dump_media",
    "dump_output",
    "load_input",
    "load_media",
    "load_output",
    "to_json",
]

from plait._pause import Durability

_output_adapter: TypeAdapter[StepOutput] | None = None


def to_json(value: Any, what: str) -> Any:
    """``value`` as JSON-compatible data, or a StorageError that says what could not be stored."""
    try:
        return to_jsonable_python(value, inf_nan_mode="constants", bytes_mode="base64")
    except (PydanticSerializationError, TypeError, ValueError) as exc:
        raise StorageError(
            f"{what} cannot be stored as JSON ({exc}); return JSON-compatible content "
            "(str, numbers, lists, dicts, pydantic models, dataclasses)"
        ) from None


def dump_input(input: Any, what: str) -> Any:
    """A run's input as JSON: as it is, or tagged (plait._codec) when it holds content parts
    (images, audio, files), whose bytes are stored once (plait._blobs)."""
    parts = sys.modules.get("plait._parts")  # not imported: no input can hold a part
    if parts is not None and parts.has_media(input):
        return encode(input, what)
    return to_json(input, what)


def load_input(data: Any, what: str) -> Any:
    """The input :func:`dump_input` stored."""
    items = data if isinstance(data, list) else [data]
    if any(isinstance(item, dict) and item.get("$plait") == "part" for item in items):
        return decode(data, what)
    return data


def dump_media(media: dict[str, list[Any]] | None, what: str) -> dict[str, Any] | None:
    """A run's media (parts by option) as stored with its record (bytes by digest), or None."""
    if not media:
        return None
    data: dict[str, Any] = encode(media, what)
    return data


def load_media(data: dict[str, Any] | None, what: str) -> dict[str, Any]:
    """The media :func:`dump_media` stored, as keyword arguments of a run (``images=``...)."""
    if not data:
        return {}
    media: dict[str, Any] = decode(data, what)
    return media


def dump_output(output: StepOutput, step_id: str) -> dict[str, Any]:
    """A StepOutput as JSON; its content (and its inner outputs' content) in the tagged form of _codec."""
    what = f"the output of step {step_id!r}"
    media = output.media() if carries_media(output) else None
    plain = dataclasses.replace(output, content=None, steps=None)
    if media:
        plain.images = plain.videos = plain.audio = plain.files = None
    data: dict[str, Any] = to_json(plain, what)
    data["content"] = encode(output.content, what)
    if output.steps is not None:
        data["steps"] = [dump_output(inner, step_id) for inner in output.steps]
    if media:  # parts, their bytes by digest (plait._blobs)
        for option, items in media.items():
            data[option] = encode(items, f"the {option} of {what}")
    return data


def load_output(data: dict[str, Any], step_id: str, declared: Iterable[type] = ()) -> StepOutput:
    """The StepOutput :func:`dump_output` stored, its content rebuilt (classes only from ``declared``
    or the allowed ones)."""
    global _output_adapter
    if _output_adapter is None:
        _output_adapter = TypeAdapter(StepOutput)
    media = {option: data[option] for option in MEDIA_FIELDS if data.get(option)}
    output = _output_adapter.validate_python({**data, "content": None, "steps": None, **dict.fromkeys(media)})
    output.content = decode(data.get("content"), f"the stored output of step {step_id!r}", declared)
    for option, items in media.items():
        setattr(output, option, decode(items, f"the stored {option} of step {step_id!r}"))
    if data.get("steps") is not None:
        output.steps = [load_output(inner, step_id, declared) for inner in data["steps"]]
    return output


def dump_state(state: dict[str, Any], what: str) -> dict[str, Any]:
    data: dict[str, Any] = encode(state, what)
    return data


def load_state(data: dict[str, Any], what: str, declared: Iterable[type] = ()) -> dict[str, Any]:
    state: dict[str, Any] = decode(data, what, declared)
    return state


def declared_types(node: Any) -> list[type]:
    """The classes a node and the nodes inside it declare (annotations, agents' output schemas):
    the classes its stored content may be rebuilt into."""
    found: list[type] = []
    pending = [node]
    while pending:
        current = pending.pop()
        callee = getattr(current, "_callee", None)
        if callee is not None:
            found.extend(callee.declared_types)
        schema = getattr(getattr(current, "agent", None), "output_schema", None)
        if isinstance(schema, type):
            found.append(schema)
        pending.extend(current.children())
    return found


class Checkpointer:
    """Writes a run's checkpoints with the chosen durability.

    ``"step"``: each checkpoint is written before the next step starts (a crash
    loses nothing that completed). ``"batch"``: written in the background every
    ``interval`` seconds (a crash may redo the last interval's steps).
    ``"exit"``: written when the run ends, pauses or fails (a crash redoes the run).
    """

    def __init__(
        self, storage: Storage, run_id: str, durability: Durability, *, interval: float = 0.2
    ) -> None:
        if durability not in ("step", "batch", "exit"):
            raise DefinitionError(f"durability must be 'step', 'batch' or 'exit', got {durability!r}")
        self.storage = storage
        self.run_id = run_id
        self.durability = durability
        self.interval = interval
        self._buffer: list[StepCheckpoint] = []
        self._sharer = StateSharer(storage, run_id)  # large state values stored once
        self._task: asyncio.Task[None] | None = None
        #: called after each write of checkpoints (what a run's budgets spent is saved with them)
        self.after_save: Callable[[], Awaitable[None]] | None = None

    async def record(self, step_id: str, output: StepOutput, state: dict[str, Any]) -> None:
        checkpoint = StepCheckpoint(
            run_id=self.run_id,
            step_id=step_id,
            output=dump_output(output, step_id),
            state=dump_state(state, f"the session state after step {step_id!r}"),
        )
        if self.durability == "step":
            await self.save([checkpoint])
            return
        self._buffer.append(checkpoint)
        if self.durability == "batch" and self._task is None:
            self._task = asyncio.ensure_future(self._flush_periodically())

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.flush()

    async def flush(self) -> None:
        if self._buffer:
            pending, self._buffer = self._buffer, []
            await self.save(pending)

    async def save(self, checkpoints: list[StepCheckpoint]) -> None:
        """Write ``checkpoints`` now: their media, their large state values once (plait.storage._shared), them."""
        from plait._blobs import save_blobs

        await save_blobs(self.storage, *[(c.output, c.state) for c in checkpoints])  # their media first
        checkpoints, payloads = self._sharer.share(checkpoints)
        if payloads:  # the large state values that changed, before the checkpoints that name them
            await self.storage.save_calls([], payloads)
            self._sharer.stored(payloads)
        try:
            await self.storage.save_checkpoints(checkpoints)
        except PydanticSerializationError as exc:
            # JSON-compatible to Python, not to UTF-8: a lone surrogate in a string, say
            steps = ", ".join(repr(c.step_id) for c in checkpoints)
            raise StorageError(
                f"the output or session state of step {steps} cannot be stored as JSON: {exc}"
            ) from None
        if self.after_save is not None:
            await self.after_save()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """Reuse a step's stored output, and replay its session-state changes, when its
    identity and input are unchanged.

    ``ttl`` in seconds (None: forever). ``Step(..., cache=True)`` or
    ``cache=3600`` are shorthands. The cache lives in the workflow's storage. The
    identity covers the executor's code and configuration (plait._executors);
    ``version`` is part of it too, and lets a step whose configuration plait cannot
    read be cached: change it when that configuration changes.
    """

    ttl: float | None = None
    version: str = ""

    @classmethod
    def coerce(cls, value: Any, where: str) -> CachePolicy | None:
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, CachePolicy):
            return value
        if isinstance(value, (int, float)) and value > 0:
            return cls(ttl=float(value))
        raise DefinitionError(
            f"{where}: cache must be True, a positive number of seconds or a CachePolicy, got {value!r}"
        )


def cache_key(policy: CachePolicy, workflow_id: str, step_id: str, identity: Any, step_input: Any) -> str:
    payload = {
        "workflow": workflow_id,
        "step": step_id,
        "identity": identity,
        "input": encode(step_input, f"the input of step {step_id!r} (for its cache key)"),
        "version": policy.version,
    }
    text = json.dumps(payload, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(slots=True)
class CacheHit:
    """A step's cached result: its output and the session-state changes to replay with it."""

    output: StepOutput
    #: the step's session-state changes, as recorded by :func:`state_delta`
    state_delta: dict[str, Any]
    #: the conversation turn its agent added (stored messages), or None
    history: list[Any] | None = None


async def cache_get(storage: Storage, key: str, step_id: str, declared: Iterable[type]) -> CacheHit | None:
    entry = await storage.get_cache(key)
    if entry is None:
        return None
    from plait._blobs import load_blobs

    await load_blobs(storage, entry.output, entry.state_delta, entry.history)
    output = load_output(entry.output, step_id, declared)
    delta = decode(entry.state_delta, f"the cached session-state changes of step {step_id!r}", declared)
    return CacheHit(output, delta, entry.history)


async def cache_put(
    storage: Storage,
    key: str,
    output: StepOutput,
    policy: CachePolicy,
    step_id: str,
    state_delta: dict[str, Any],
    history: list[Any] | None = None,
) -> None:
    expires = None if policy.ttl is None else time.time() + policy.ttl
    delta = encode(state_delta, f"the session-state changes of step {step_id!r}")
    data = dump_output(output, step_id)
    from plait._blobs import save_blobs

    await save_blobs(storage, data, delta, history)
    await storage.put_cache(
        CacheEntry(key=key, output=data, state_delta=delta, history=history, expires_at=expires)
    )


def state_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What a step did to the session state, so a cache hit can do it again to the state it finds.

    The rules of Parallel's merge (plait._state): per changed key, ``["add", n]``
    for a number that changed (a counter or a bill goes up again on a hit),
    ``["append", items]`` for a list that only grew, ``["merge", delta]`` for a
    dict, ``["set", value]`` otherwise, ``["del"]`` for a removed key. A key the
    step created counts as 0, [] or {} before it (``state.get("n", 0) + 1``).
    """
    delta: dict[str, Any] = {}
    for key, new in after.items():
        old = before.get(key, _MISSING)
        if old is _MISSING:
            old = 0 if _is_number(new) else type(new)() if type(new) in (list, dict) else _MISSING
        if old is _MISSING:
            delta[key] = ["set", new]
        elif type(old) is type(new) and old == new and key in before:
            continue
        if _is_number(old) and _is_number(new):
            delta[key] = ["add", new - old]
        elif isinstance(old, list) and isinstance(new, list) and new[: len(old)] == old:
            delta[key] = ["append", new[len(old) :]]
        elif isinstance(old, dict) and isinstance(new, dict):
            delta[key] = ["merge", state_delta(old, new)]
        else:
            delta[key] = ["set", new]
    for key in before:
        if key not in after:
            delta[key] = ["del"]
    return delta


def apply_state_delta(state: dict[str, Any], delta: dict[str, Any]) -> None:
    """Replay :func:`state_delta`'s changes on ``state`` in place."""
    for key, change in delta.items():
        how = change[0]
        current = state.get(key)
        if how == "del":
            state.pop(key, None)
        elif how == "add" and _is_number(current):
            state[key] = current + change[1]
        elif how == "add":  # the key is gone or no longer a number: the change starts from zero
            state[key] = change[1]
        elif how == "append":
            state[key] = [*(current if isinstance(current, list) else []), *change[1]]
        elif how == "merge":
            target = dict(current) if isinstance(current, dict) else {}
            apply_state_delta(target, change[1])
            state[key] = target
        else:
            state[key] = change[1]


_MISSING: Any = object()


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# Last: the names plait exports report ``plait`` as their home (plait._public).
_publish(__name__, globals())
