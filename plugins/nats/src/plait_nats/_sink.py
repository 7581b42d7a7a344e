"""The NATS JetStream event sink: every event of a run, published as JSON.

plait calls a sink's ``handle(event)`` synchronously from the sink's own thread.
nats-py is asyncio-only, so the sink keeps one private event loop running in a
background thread for its client, and ``handle`` waits for each publish to be
acknowledged by JetStream: a failure raises there, where plait's dispatcher
reports it once without failing the run.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from plait.events import Event

__all__ = ["NatsSink"]

logger = logging.getLogger("plait.nats")

T = TypeVar("T")

_RUN_ENDED = frozenset({"WorkflowCompleted", "WorkflowError", "WorkflowCancelled"})


class NatsSink:
    """Publishes each event's JSON to NATS JetStream.

    Events go to ``{subject}.{run_id}``, where ``run_id`` is the outermost
    run's id, so ``plait.events.<run_id>`` follows one run with its nested
    workflows (each message's JSON still carries its own ``run_id``). With
    ``per_run_subject=False`` every event goes to ``subject`` itself. The
    ``stream`` is created on first use, capturing ``subject`` and
    ``subject.>``, unless it exists already (then it is used as configured).

    The connection is made on the first event; nats-py reconnects after a
    dropped connection. A publish that JetStream does not acknowledge within
    ``timeout`` seconds raises from :meth:`handle`. After a failed connection
    attempt, events fail at once for ``retry_connect_after`` seconds instead
    of each waiting for a server that is down.

    Example::

        from plait import Workflow
        from plait_nats import NatsSink

        workflow = Workflow(name="report", steps=[...], sinks=[NatsSink("nats://127.0.0.1:4222")])
    """

    def __init__(
        self,
        url: str = "nats://127.0.0.1:4222",
        subject: str = "plait.events",
        stream: str = "PLAIT_EVENTS",
        *,
        per_run_subject: bool = True,
        timeout: float = 5.0,
        connect_timeout: float = 2.0,
        retry_connect_after: float = 5.0,
    ) -> None:
        self.url = url
        self.subject = subject
        self.stream = stream
        self.per_run_subject = per_run_subject
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.retry_connect_after = retry_connect_after
        self._client: Client | None = None
        self._jetstream: JetStreamContext | None = None
        self._connect_error: BaseException | None = None
        self._retry_at = 0.0
        self._roots: dict[str, str] = {}  # nested run id -> outermost run id
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"NatsSink({self.url!r}, subject={self.subject!r}, stream={self.stream!r})"

    # -- the sink protocol ---------------------------------------------------------

    def handle(self, event: Event) -> None:
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        subject = self.subject_for(event)
        headers = {"Plait-Event": event.event}
        if event.run_id:
            headers["Plait-Run-Id"] = event.run_id
        payload = event.to_json().encode()
        self._call(self._publish(subject, payload, headers), self.timeout + self.connect_timeout + 1)

    def close(self) -> None:
        """Flush and close the connection, then stop the sink's loop thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            if self._client is not None and not self._client.is_closed:
                asyncio.run_coroutine_threadsafe(self._disconnect(), loop).result(self.timeout)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(self.timeout)
            if not thread.is_alive():
                loop.close()

    # -- subjects ------------------------------------------------------------------

    def subject_for(self, event: Event) -> str:
        """The subject ``event`` is published to (see the class docstring)."""
        if not self.per_run_subject or not event.run_id:
            return self.subject
        run_id = event.run_id
        parent = getattr(event, "parent_run_id", None)
        if event.event == "WorkflowStarted" and parent:
            self._roots[run_id] = self._roots.get(parent, parent)
        root = self._roots.get(run_id, run_id)
        if event.event in _RUN_ENDED:
            self._roots.pop(run_id, None)
        return f"{self.subject}.{root}"

    # -- the private loop ----------------------------------------------------------

    def _call(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        loop = self._ensure_loop()
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout)

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="plait-nats-loop", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    async def _publish(self, subject: str, payload: bytes, headers: dict[str, str]) -> None:
        jetstream = await self._connected()
        await jetstream.publish(subject, payload, timeout=self.timeout, headers=headers)

    async def _connected(self) -> JetStreamContext:
        if self._jetstream is not None and self._client is not None and not self._client.is_closed:
            return self._jetstream
        now = time.monotonic()
        if self._connect_error is not None and now < self._retry_at:
            raise ConnectionError(
                f"{self!r}: not connected (last attempt failed: {self._connect_error})"
            ) from self._connect_error
        client = Client()
        try:
            await self._connect(client)
            jetstream = client.jetstream(timeout=self.timeout)
            await self._ensure_stream(jetstream)
        except Exception as exc:
            self._connect_error = exc
            self._retry_at = now + self.retry_connect_after
            await client.close()
            raise
        self._client, self._jetstream, self._connect_error = client, jetstream, None
        return jetstream

    async def _connect(self, client: Client) -> None:
        # Reconnect forever once connected (publishes fail by timeout meanwhile), but
        # bound the first connection: nats-py would retry it forever too.
        connecting = client.connect(
            self.url,
            name="plait-nats",
            connect_timeout=self.connect_timeout,  # type: ignore[arg-type]
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
            max_reconnect_attempts=-1,
        )
        try:
            await asyncio.wait_for(connecting, self.connect_timeout)
        except TimeoutError:
            raise ConnectionError(
                f"{self!r}: could not connect within {self.connect_timeout:g}s: {client.last_error or 'timed out'}"
            ) from None

    async def _ensure_stream(self, jetstream: JetStreamContext) -> None:
        try:
            await jetstream.stream_info(self.stream)
        except NotFoundError:
            await jetstream.add_stream(name=self.stream, subjects=[self.subject, f"{self.subject}.>"])

    async def _disconnect(self) -> None:
        if self._client is not None:
            await self._client.drain()

    # nats-py reports connection trouble through callbacks; the dispatcher reports
    # failed publishes, so these stay quiet unless asked.
    async def _on_error(self, error: Exception) -> None:
        logger.debug("%r: %s", self, error)

    async def _on_disconnected(self) -> None:
        if self._jetstream is not None and not self._closed:  # not a failed first attempt or close()
            logger.info("%r: disconnected; nats-py is reconnecting", self)

    async def _on_reconnected(self) -> None:
        logger.info("%r: reconnected", self)
