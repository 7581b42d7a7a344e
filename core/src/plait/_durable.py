"""Durable runs: checkpoints, restoring them on resume, pauses for people, the step cache.

The executor calls in here only when a run has storage (checkpoints, cache) or
is being resumed (restored checkpoints, answers to pauses), so runs without
storage pay three attribute checks per step.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter
from pydantic_core import PydanticSerializationError, to_jsonable_python

from plait._io import StepOutput
from plait.errors import DefinitionError
from plait.storage import CacheEntry, StepCheckpoint, Storage, StorageError

__all__ = [
    "CachePolicy",
    "Checkpointer",
    "Durability",
    "dump_output",
    "load_output",
    "to_json",
]

from plait._pause import Durability

_output_adapter: TypeAdapter[StepOutput] | None = None


def to_json(value: Any, what: str) -> Any:
    """``value`` as JSON-compatible data, or a StorageError that says what could not be stored."""
    try:
        return to_jsonable_python(value, inf_nan_mode="constants")
    except (PydanticSerializationError, TypeError, ValueError) as exc:
        raise StorageError(
            f"{what} cannot be stored as JSON ({exc}); return JSON-compatible content "
            "(str, numbers, lists, dicts, pydantic models, dataclasses)"
        ) from None


def dump_output(output: StepOutput, step_id: str) -> dict[str, Any]:
    data: dict[str, Any] = to_json(output, f"the output of step {step_id!r}")
    return data


def load_output(data: dict[str, Any]) -> StepOutput:
    global _output_adapter
    if _output_adapter is None:
        _output_adapter = TypeAdapter(StepOutput)
    return _output_adapter.validate_python(data)


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
        self._task: asyncio.Task[None] | None = None

    async def record(self, step_id: str, output: StepOutput, state: dict[str, Any]) -> None:
        checkpoint = StepCheckpoint(
            run_id=self.run_id,
            step_id=step_id,
            output=dump_output(output, step_id),
            state=to_json(state, f"the session state after step {step_id!r}"),
        )
        if self.durability == "step":
            await self.storage.save_checkpoints([checkpoint])
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
            await self.storage.save_checkpoints(pending)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """Reuse a step's stored output when its identity and input are unchanged.

    ``ttl`` in seconds (None: forever). ``Step(..., cache=True)`` or
    ``cache=3600`` are shorthands. The cache lives in the workflow's storage.
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
        "input": step_input,
        "version": policy.version,
    }
    text = json.dumps(to_json(payload, f"the input of step {step_id!r} (for its cache key)"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


async def cache_get(storage: Storage, key: str) -> StepOutput | None:
    entry = await storage.get_cache(key)
    return None if entry is None else load_output(entry.output)


async def cache_put(
    storage: Storage, key: str, output: StepOutput, policy: CachePolicy, step_id: str
) -> None:
    expires = None if policy.ttl is None else time.time() + policy.ttl
    await storage.put_cache(CacheEntry(key=key, output=dump_output(output, step_id), expires_at=expires))
