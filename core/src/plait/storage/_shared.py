"""Large session-state values stored once per run, not once per checkpoint.

A checkpoint holds the session state after its step, so a workflow whose state holds a
100 KB document would store that document in each of its 100 checkpoints: 10 MB for a value
written once. Instead, each top-level value of a checkpoint's state whose JSON is at least
:data:`SHARE_AT` bytes is stored once among the storage's payloads (``Storage.save_calls([],
{key: json})``, the table recorded calls use) and the checkpoint holds a reference to it,
``{"$plait": "shared", "key": "state:<run id>:<sha256 of the JSON>"}``. A value that does
not change is not written again; a changed value is a new payload.

Why this shape:

- Every checkpoint stays whole: it names the values it had, never a delta from an earlier
  checkpoint, so replacing one checkpoint (a Loop iteration run again, a step restarted) or
  copying some into a fork breaks nothing.
- Keys belong to one run (the run id is part of the key), so ``delete_run`` deletes a run's
  values with it without asking whether another run refers to them: none can (a fork
  writes its own, :meth:`StateSharer.share`).
- Reading resolves every reference of a run's checkpoints in one ``load_payloads`` call
  (:func:`read_checkpoints`), checking each value against its digest. Checkpoints stored
  before this (the whole state inline) read as they are.

A backend without recorded calls (one that does not override ``save_calls``) keeps the whole
state in each checkpoint, as before.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from plait.storage._errors import StorageError

if TYPE_CHECKING:
    from plait.storage._base import StepCheckpoint, Storage

__all__ = ["SHARE_AT", "StateSharer", "read_checkpoints", "shared_keys"]

#: a top-level state value whose JSON is this many bytes or more is stored once per run
#: (``None``: never; the benchmark ``bench/checkpoint_bytes.py`` measures both)
SHARE_AT: int | None = 1024

_TAG = "$plait"
_KIND = "shared"


def _key_of(value: Any) -> str | None:
    if type(value) is dict and value.get(_TAG) == _KIND:
        key = value.get("key")
        return key if isinstance(key, str) else None
    return None


def shared_keys(states: Iterable[dict[str, Any]]) -> set[str]:
    """The payload keys the stored checkpoint ``states`` refer to (what deleting their run deletes)."""
    return {key for state in states for value in state.values() if (key := _key_of(value)) is not None}


class StateSharer:
    """The write side for one run: turns its checkpoints' large state values into references,
    remembering which values it has stored already."""

    def __init__(self, storage: Storage, run_id: str) -> None:
        from plait.storage._base import Storage

        self.enabled = type(storage).save_calls is not Storage.save_calls
        self.prefix = f"state:{run_id}:"
        self.written: set[str] = set()

    def share(self, checkpoints: list[StepCheckpoint]) -> tuple[list[StepCheckpoint], dict[str, str]]:
        """``checkpoints`` with their large state values as references, and the payloads (key:
        JSON) not stored yet; the caller stores the payloads first, then calls :meth:`stored`."""
        limit = SHARE_AT
        if not self.enabled or limit is None:
            return checkpoints, {}
        payloads: dict[str, str] = {}
        shared = []
        for checkpoint in checkpoints:
            state = checkpoint.state
            if _TAG in state:  # a state with keys that are not strings (tagged whole): as it is
                shared.append(checkpoint)
                continue
            refs: dict[str, Any] = {}
            for name, value in state.items():
                key = self._share(value, limit, payloads)
                if key is not None:
                    refs[name] = {_TAG: _KIND, "key": key}
            shared.append(checkpoint.model_copy(update={"state": {**state, **refs}}) if refs else checkpoint)
        return shared, payloads

    def _share(self, value: Any, limit: int, payloads: dict[str, str]) -> str | None:
        if isinstance(value, str):
            if len(value) * 4 + 2 < limit:  # at most 4 bytes a character: surely small
                return None
        elif not isinstance(value, (dict, list)) or not value:
            return None
        try:
            text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
            data = text.encode()
        except (ValueError, TypeError):  # not JSON as UTF-8 (a lone surrogate): stored inline,
            return None  # where the checkpoint's own write says what cannot be stored
        if len(data) < limit:
            return None
        key = self.prefix + hashlib.sha256(data).hexdigest()
        if key not in self.written:
            payloads[key] = text
        return key

    def stored(self, payloads: dict[str, str]) -> None:
        """Note ``payloads`` as stored (they are not sent again by this run)."""
        self.written.update(payloads)


async def read_checkpoints(storage: Storage, run_id: str) -> list[StepCheckpoint]:
    """Run ``run_id``'s checkpoints with their whole session state: the values stored once
    (:class:`StateSharer`) read back in one ``load_payloads`` call and checked against their
    digests. Use this instead of ``storage.load_checkpoints`` to read what a step left."""
    checkpoints = await storage.load_checkpoints(run_id)
    keys = sorted(shared_keys(c.state for c in checkpoints))
    if not keys:
        return checkpoints
    found = await storage.load_payloads(keys)
    values: dict[str, Any] = {}
    for key in keys:
        text = found.get(key)
        if text is None:
            raise StorageError(
                f"{storage!r}: a session-state value run {run_id!r}'s checkpoints refer to ({key}) "
                "is not in the storage (it was deleted, or never written)"
            )
        if hashlib.sha256(text.encode()).hexdigest() != key.rpartition(":")[2]:
            raise StorageError(
                f"{storage!r}: the stored session-state value {key} of run {run_id!r} does not "
                "have that digest (it was altered)"
            )
        values[key] = json.loads(text)
    resolved = []
    for checkpoint in checkpoints:
        state = checkpoint.state
        refs = {name: values[ref] for name, value in state.items() if (ref := _key_of(value)) is not None}
        resolved.append(checkpoint.model_copy(update={"state": {**state, **refs}}) if refs else checkpoint)
    return resolved
