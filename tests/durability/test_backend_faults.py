"""Many runs at once against each backend, and a backend that goes away mid-run.

The fault test puts a TCP proxy we control between plait and the real server:
cutting it makes the server unreachable mid-run (a clear StorageError, the run
recorded as far as it got); restoring it lets `continue_run` finish the run
without redoing its completed steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from plait import Parallel, Step, StepInput, Workflow
from plait._sync import run_sync
from plait.storage import RunClaimedError, StorageError
from tests.services import require_package, require_service


async def test_hundred_concurrent_runs(storage_url: str) -> None:
    def step(step_input: StepInput, run_context) -> str:  # type: ignore[no-untyped-def]
        run_context.session_state["n"] = run_context.session_state.get("n", 0) + 1
        return f"{step_input.input}-{run_context.session_state['n']}"

    workflow = Workflow(
        name="busy",
        steps=[step, Parallel(step, Step(name="again", executor=step), name="p")],
        storage=storage_url,
    )
    prefix = uuid.uuid4().hex
    try:
        outputs = await asyncio.gather(
            *(workflow.arun(f"r{i}", session_id=f"{prefix}-{i}") for i in range(100))
        )
        storage = await workflow._ready_storage()
        assert storage is not None
        for output in outputs:
            record = await storage.get_run(output.run_id)
            assert record is not None and record.status == "COMPLETED" and record.content == output.content
            checkpoints = await storage.load_checkpoints(output.run_id)
            assert sorted(c.step_id for c in checkpoints) == ["p", "p/again", "p/step", "step"]
            session = await storage.load_session(output.session_id)
            assert session is not None and session.state == {"n": 3}
    finally:
        await workflow.aclose()


class Proxy:
    """A TCP proxy on 127.0.0.1 to a local server; `cut()` drops every connection and
    refuses new ones until `restore()`."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.open = True
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        self.open = False
        with self.lock:
            for s in self.sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self.sockets.clear()

    def restore(self) -> None:
        self.open = True

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.fixture(params=["postgres", "redis"])
def proxied(request: pytest.FixtureRequest) -> Iterator[tuple[Any, Proxy]]:
    """A storage reaching its server through a proxy, with short timeouts (the defaults
    wait 30 s for a restarting server to come back)."""
    if request.param == "postgres":
        require_service("postgresql")
        require_package("plait_postgres", "plait-postgres")
        from plait_postgres import PostgresStorage

        proxy = Proxy(5432)
        storage: Any = PostgresStorage(
            f"postgresql://127.0.0.1:{proxy.port}/test", connect_timeout=1, timeout=2
        )
    else:
        require_service("redis")
        require_package("plait_redis", "plait-redis")
        from plait_redis import RedisStorage

        proxy = Proxy(6379)
        storage = RedisStorage(f"redis://127.0.0.1:{proxy.port}/0", connect_timeout=1, timeout=2, retries=1)
    try:
        yield storage, proxy
    finally:
        proxy.restore()
        run_sync(storage.close())
        proxy.close()


def test_backend_unreachable_mid_run_fails_clearly_and_resumes_when_back(proxied: tuple[Any, Proxy]) -> None:
    storage, proxy = proxied
    ran: list[str] = []

    def first(step_input: StepInput) -> str:
        ran.append("first")
        return "one"

    def second(step_input: StepInput) -> str:
        ran.append("second")
        if ran.count("second") == 1:
            proxy.cut()  # the database goes away while this step runs (the first time)
        return "two"

    def third(step_input: StepInput) -> str:
        ran.append("third")
        return "three"

    workflow = Workflow(name="faulty", steps=[first, second, third], storage=storage)
    run_id = f"fault-{uuid.uuid4()}"
    with pytest.raises(StorageError) as info:
        workflow.run("x", run_id=run_id)
    assert "127.0.0.1" in str(info.value)
    assert ran == ["first", "second"]
    proxy.restore()
    # The server is back; the connection pool may still be in its reconnect backoff.
    deadline = time.monotonic() + 60
    while True:
        try:
            output = workflow.continue_run(run_id)
            break
        except RunClaimedError as exc:
            # the failed run could not delete its lease while the server was away; this
            # process let go of it, so its own resume takes it over instead of waiting it out
            raise AssertionError(f"the abandoned lease blocked the resume: {exc}") from None
        except StorageError:
            assert time.monotonic() < deadline, "the storage never recovered"
            time.sleep(0.5)
    assert output.content == "three"
    # `second` completed but its checkpoint could not be written, so it ran again; `first` did not
    assert ran == ["first", "second", "second", "third"]
