"""One event loop per storage object, for backends whose driver binds to a loop.

asyncio database drivers (psycopg's pool, redis-py's client) bind their
connections, locks and background tasks to the event loop that first used them.
One ``Workflow`` is shared by every thread of a threaded web server, and each
``run()`` from a thread drives a loop of its own, and ``asyncio.run`` closes its
loop when it returns: a loop-bound client then fails ("bound to a different event
loop", "Event loop is closed") or waits forever on a future of a dead loop.

:func:`own_event_loop` makes such a backend loop-independent: every public async
method runs on one event loop that the storage owns, in a daemon thread started
on first use, and the caller awaits the result from whatever loop it is on
(cancelling the caller cancels the operation). The cost is a thread hand-off per
call, small beside a network round trip. SQLite and memory storage need none of
this: they hold no loop-bound state.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import inspect
import threading
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["own_event_loop"]

S = TypeVar("S", bound=type)

_loops: weakref.WeakKeyDictionary[Any, asyncio.AbstractEventLoop] = weakref.WeakKeyDictionary()
_threads: weakref.WeakKeyDictionary[Any, threading.Thread] = weakref.WeakKeyDictionary()
_loops_lock = threading.Lock()
#: seconds each storage still open at interpreter exit gets to close
EXIT_TIMEOUT = 5.0


def _close_at_exit() -> None:
    """Close the storages a program left open before the interpreter stops their daemon
    threads: a driver's background tasks (psycopg's pool workers) then end instead of being
    destroyed pending ("Task was destroyed but it is pending!"), and connections close cleanly."""
    with _loops_lock:
        open_ = [(s, loop, _threads.get(s)) for s, loop in _loops.items() if not loop.is_closed()]
        _loops.clear()
    for storage, loop, thread in open_:
        close = getattr(type(storage).close, "__wrapped__", None)  # the method, not its wrapper
        with contextlib.suppress(Exception):
            if close is not None:
                asyncio.run_coroutine_threadsafe(close(storage), loop).result(EXIT_TIMEOUT)
        with contextlib.suppress(RuntimeError):  # closed meanwhile
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(EXIT_TIMEOUT)


atexit.register(_close_at_exit)


def _loop_of(storage: Any) -> asyncio.AbstractEventLoop:
    with _loops_lock:
        loop = _loops.get(storage)
        if loop is None or loop.is_closed():
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def serve(loop: asyncio.AbstractEventLoop = loop) -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                try:
                    loop.run_forever()
                finally:
                    loop.close()

            name = f"plait-storage-{type(storage).__name__}"
            thread = threading.Thread(target=serve, name=name, daemon=True)
            thread.start()
            ready.wait()
            _loops[storage] = loop
            _threads[storage] = thread
        return loop


def _stop_loop(storage: Any) -> None:
    with _loops_lock:
        loop = _loops.pop(storage, None)
    if loop is not None and not loop.is_closed():
        loop.call_soon_threadsafe(loop.stop)


def _on_own_loop(method: Callable[..., Coroutine[Any, Any, Any]], *, stops: bool) -> Callable[..., Any]:
    @functools.wraps(method)
    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        loop = _loop_of(self)
        try:
            if asyncio.get_running_loop() is loop:  # a method calling another one
                return await method(self, *args, **kwargs)
            future = asyncio.run_coroutine_threadsafe(method(self, *args, **kwargs), loop)
            return await asyncio.wrap_future(future)
        finally:
            if stops:
                _stop_loop(self)

    return wrapper


def own_event_loop(cls: S) -> S:
    """Class decorator for a :class:`~plait.storage.Storage` whose client binds to an event
    loop: every public async method (the protocol's and the backend's own) runs on the
    storage's own loop, so one object serves any number of threads and event loops.
    ``close()`` also stops that loop's thread (a later call starts a new one)."""
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.iscoroutinefunction(member):
            setattr(cls, name, _on_own_loop(member, stops=name == "close"))
    return cls
