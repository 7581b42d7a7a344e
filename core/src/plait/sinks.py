"""Event sinks: every event of a run, delivered off the run's path.

A sink is any object with ``handle(event)`` (and optionally ``close()``).
Attach sinks with ``Workflow(sinks=[...])`` or ``run(..., sinks=[...])``, as
objects or by registered name (``"console"``, ``"jsonl"`` with options through
:func:`create_sink`). Each sink gets its own bounded queue and thread: a slow
sink drops events once its queue is full instead of stalling the run, and a
failing sink is reported once (``logging`` warning) and never fails the run.
:func:`flush_sinks` waits ``timeout`` seconds at most in all, and interpreter
exit waits :data:`EXIT_TIMEOUT` seconds at most in all, however many sinks are stuck.
"""

from __future__ import annotations

import atexit
import contextvars
import logging
import queue
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from plait.events import Event

__all__ = [
    "ConsoleSink",
    "EventSink",
    "JsonlSink",
    "SinkDispatcher",
    "TreeSink",
    "create_sink",
    "dispatcher_for",
    "flush_sinks",
]

logger = logging.getLogger("plait.sinks")


@runtime_checkable
class EventSink(Protocol):
    def handle(self, event: Event) -> None: ...


class JsonlSink:
    """Appends each event as one JSON line to ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")

    def handle(self, event: Event) -> None:
        self._file.write(event.to_json() + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __repr__(self) -> str:
        return f"JsonlSink({str(self.path)!r})"


_RUN_ENDS = ("WorkflowCompleted", "WorkflowError", "WorkflowPaused", "WorkflowCancelled")


class TreeSink:
    """Shows each run as a tree of its steps with status and timing: redrawn in place on a
    terminal while the run goes, printed once when it ends elsewhere."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self._trees: dict[str, Any] = {}

    def handle(self, event: Event) -> None:
        from plait._tree import RunTree

        root = (event.run_id or "").split(":", 1)[0]  # nested run ids extend their top-level run's
        tree = self._trees.get(root)
        if tree is None:
            tree = self._trees[root] = RunTree(**self.options)
        tree.handle(event)
        if event.nested_depth == 0 and event.event in _RUN_ENDS:
            del self._trees[root]


class ConsoleSink:
    """Prints events as an indented outline (the renderer of ``print_response``)."""

    def __init__(self, **options: Any) -> None:
        from plait.console import ConsoleRenderer

        self._renderer = ConsoleRenderer(**options)

    def handle(self, event: Event) -> None:
        self._renderer.handle(event)


_STOP = object()


class SinkDispatcher:
    """Feeds one sink from a bounded queue on a thread of its own; each event is handled in
    a copy of the context it was emitted in (contextvars)."""

    def __init__(self, sink: Any, *, maxsize: int = 10_000, kind: str = "event sink") -> None:
        self.sink = sink
        self.kind = kind
        self.queue: queue.Queue[Any] = queue.Queue(maxsize)
        self.dropped = 0
        self.failures = 0
        self._reported_drop = False
        self._reported_failure = False
        self._thread = threading.Thread(
            target=self._work, name=f"plait-sink-{type(sink).__name__}", daemon=True
        )
        self._thread.start()

    def __call__(self, event: Event) -> None:
        try:
            # with the caller's context: the sink sees the contextvars (a request id, the
            # current OpenTelemetry span) that were set where the event was emitted
            self.queue.put_nowait((contextvars.copy_context(), event))
        except queue.Full:
            self.dropped += 1
            if not self._reported_drop:
                self._reported_drop = True
                logger.warning(
                    "%s %r is too slow: its queue is full, events are being dropped", self.kind, self.sink
                )

    def _work(self) -> None:
        while True:
            item = self.queue.get()
            try:
                if item is _STOP:
                    return
                context, event = item
                context.run(self.sink.handle, event)
            except Exception:
                self.failures += 1
                if not self._reported_failure:
                    self._reported_failure = True
                    logger.warning(
                        "%s %r failed; its later failures are counted, not logged",
                        self.kind,
                        self.sink,
                        exc_info=True,
                    )
            finally:
                self.queue.task_done()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until the sink handled every queued event; False on timeout."""
        # Wait on the queue's own condition (what Queue.join waits on) with a
        # timeout, so a stuck sink costs no helper thread.
        q = self.queue
        with q.all_tasks_done:
            return q.all_tasks_done.wait_for(lambda: not q.unfinished_tasks, max(timeout, 0.0))

    def close(self, timeout: float = 5.0) -> None:
        """Flush, stop the thread and close the sink, within ``timeout`` in all.

        A sink still stuck after the flush is left to its daemon thread (it never
        gets ``close()``): waiting longer for it would only delay the caller."""
        deadline = time.monotonic() + timeout
        if not self.flush(timeout):
            return
        try:
            self.queue.put_nowait(_STOP)
        except queue.Full:
            return
        self._thread.join(max(deadline - time.monotonic(), 0.0))
        if self._thread.is_alive():
            return
        close = getattr(self.sink, "close", None)
        if callable(close):
            try:
                close()
            except Exception:
                logger.warning("event sink %r failed to close", self.sink, exc_info=True)


_dispatchers: weakref.WeakKeyDictionary[Any, SinkDispatcher] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def dispatcher_for(sink: Any, *, kind: str = "event sink") -> SinkDispatcher:
    """The dispatcher of a sink object (one per sink, shared by every run); ``kind``
    names it in warnings (plugins' lifecycle hooks are fed the same way)."""
    with _lock:
        dispatcher = _dispatchers.get(sink)
        if dispatcher is None:
            dispatcher = _dispatchers[sink] = SinkDispatcher(sink, kind=kind)
        return dispatcher


def create_sink(name: str, **options: Any) -> Any:
    """Build a sink registered under ``name`` (``create_sink("jsonl", path="events.jsonl")``)."""
    from plait._lookup import registry

    return registry().get("event_sink", name)(**options)


def flush_sinks(timeout: float = 5.0) -> bool:
    """Wait until every sink (and every plugin's lifecycle hooks) handled every event
    so far, ``timeout`` seconds at most in all; False if some sink did not."""
    with _lock:
        dispatchers = list(_dispatchers.values())
    deadline = time.monotonic() + timeout
    flushed = [d.flush(deadline - time.monotonic()) for d in dispatchers]
    return all(flushed)


#: How long interpreter exit waits, at most in all, for sinks to drain and close.
EXIT_TIMEOUT = 2.0


@atexit.register
def _close_all() -> None:
    with _lock:
        dispatchers = list(_dispatchers.values())
    deadline = time.monotonic() + EXIT_TIMEOUT
    for dispatcher in dispatchers:
        dispatcher.close(timeout=max(deadline - time.monotonic(), 0.0))
