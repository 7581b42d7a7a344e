"""``RunContext.once`` / ``aonce``: a side effect's result recorded for its run and key.

The result is stored before ``once`` returns: in the workflow's storage as a cache entry
under a key no step cache uses (``plait-once:`` and a digest of the run id and the
caller's key), its value in the tagged JSON of :mod:`plait._codec` (nothing is pickled); without
storage, in memory for the run. Calls with one key are serialised within a process, so
two branches of a Parallel asking for the same key run ``fn`` once.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from plait._codec import declared_types, decode, encode
from plait.errors import DefinitionError
from plait.storage import CacheEntry

if TYPE_CHECKING:
    from plait._context import RunState
    from plait._run_context import RunContext

__all__ = ["aonce", "once"]

_PREFIX = "plait-once:"
_MISSING: Any = object()
_guard = threading.Lock()


def _key(context: RunContext, key: str) -> str:
    if not isinstance(key, str) or not key:
        raise DefinitionError(
            f"run_context.once needs a non-empty str key (step {context.step_id!r}), got {key!r}"
        )
    import hashlib

    # hashed: any run id and key fit every backend's keys (PostgreSQL text holds no NUL);
    # the prefix keeps it apart from the step cache's keys (bare hex digests)
    return _PREFIX + hashlib.sha256(f"{context.run_id}\x00{key}".encode()).hexdigest()


def _declared(fn: Callable[..., Any]) -> list[type]:
    """The classes ``fn``'s return annotation names: what a stored result may be rebuilt into."""
    try:
        hint = typing.get_type_hints(fn).get("return")
    except Exception:  # an unresolvable annotation: only the allowed classes then
        return []
    return declared_types([hint]) if hint is not None else []


def _locks(run: RunState) -> dict[str, Any]:
    with _guard:
        if run.once_lock is None:
            run.once_lock = {}
            run.once_results = {}
        locks: dict[str, Any] = run.once_lock
        return locks


def _thread_lock(run: RunState, key: str) -> threading.Lock:
    locks = _locks(run)
    with _guard:
        lock: threading.Lock | None = locks.get(key)
        if lock is None:
            lock = locks[key] = threading.Lock()
        return lock


async def _load(run: RunState, key: str, what: str, declared: list[type]) -> Any:
    if run.storage is None:
        assert run.once_results is not None
        return run.once_results.get(key, _MISSING)
    entry = await run.storage.get_cache(key)
    if entry is None:
        return _MISSING
    from plait._blobs import load_blobs

    await load_blobs(run.storage, entry.output)
    return decode(entry.output.get("value"), what, declared)


async def _store(run: RunState, key: str, value: Any, what: str) -> None:
    data = encode(value, what)  # checked (and classes remembered) with or without storage
    if run.storage is None:
        assert run.once_results is not None
        run.once_results[key] = decode(data, what)
        return
    from plait._blobs import save_blobs

    await save_blobs(run.storage, data)
    await run.storage.put_cache(CacheEntry(key=key, output={"value": data}))


def once(context: RunContext, key: str, fn: Callable[[], Any]) -> Any:
    """:meth:`plait.RunContext.once`."""
    ctx = context._ctx
    if ctx is None:  # an agent's tool outside any workflow: no run to record it for
        return fn()
    from plait._sync import run_sync

    run = ctx.run
    stored = _key(context, key)
    what = f"the result of run_context.once({key!r}) in step {context.step_id!r}"
    declared = _declared(fn)
    with _thread_lock(run, stored):
        found = run_sync(_load(run, stored, what, declared))
        if found is not _MISSING:
            return found
        value = fn()
        if inspect.isawaitable(value):
            if inspect.iscoroutine(value):
                value.close()  # never awaited: not a warning on top of the error
            raise DefinitionError(
                f"run_context.once({key!r}) in step {context.step_id!r}: fn returned an awaitable; "
                "use `await run_context.aonce(key, fn)` for async functions"
            )
        run_sync(_store(run, stored, value, what))
        return run_sync(_load(run, stored, what, declared))


async def aonce(context: RunContext, key: str, fn: Callable[[], Any]) -> Any:
    """:meth:`plait.RunContext.aonce`."""
    ctx = context._ctx
    if ctx is None:
        value = fn()
        return await value if inspect.isawaitable(value) else value
    run = ctx.run
    stored = _key(context, key)
    what = f"the result of run_context.aonce({key!r}) in step {context.step_id!r}"
    declared = _declared(fn)
    locks = _locks(run)
    with _guard:
        lock = locks.get(stored + "\x00async")
        if lock is None:
            lock = locks[stored + "\x00async"] = asyncio.Lock()
    async with lock:
        found = await _load(run, stored, what, declared)
        if found is not _MISSING:
            return found
        value = fn()
        if inspect.isawaitable(value):
            value = await value
        await _store(run, stored, value, what)
        return await _load(run, stored, what, declared)
