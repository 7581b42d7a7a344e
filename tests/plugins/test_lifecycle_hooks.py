"""Lifecycle hooks are observers: a failing or blocking one never breaks or stalls a run."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from plait import Step, Workflow, hookimpl
from plait.errors import PluginError
from plait.plugins import Registry, build_registry, set_registry
from plait.sinks import flush_sinks
from plait.storage import MemoryStorage


@contextmanager
def plugin_registry(plugins: dict[str, object], *, strict: bool = False) -> Iterator[Registry]:
    """The process registry with the built-ins and ``plugins`` by name, for one test."""
    registry = build_registry(plugins, entry_points=False, strict=strict)
    previous = set_registry(registry)
    try:
        yield registry
    finally:
        set_registry(previous)


def _chain(n: int = 3) -> list[Step]:
    return [Step(name=f"s{i}", executor=lambda step_input: "ok") for i in range(n)]


class Raising:
    @hookimpl
    def on_step_start(self, step: Any) -> None:
        raise RuntimeError("observer broke on start")

    @hookimpl
    def on_step_end(self, step: Any) -> None:
        raise RuntimeError("observer broke on end")

    @hookimpl
    def on_workflow_end(self, status: str) -> None:
        raise RuntimeError("observer broke on workflow end")


def test_a_raising_hook_is_reported_once_by_plugin_name_and_the_run_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    storage = MemoryStorage()
    with plugin_registry({"raising-observer": Raising()}), caplog.at_level(logging.WARNING):
        output = Workflow(name="w", steps=_chain(), storage=storage).run("x")
        assert flush_sinks(timeout=5)
    assert output.status.value == "COMPLETED"
    assert output.content == "ok"
    record = asyncio.run(storage.get_run(output.run_id))
    assert record is not None and record.status == "COMPLETED"
    reports = [r for r in caplog.records if "raising-observer" in r.getMessage()]
    assert len(reports) == 1, [r.getMessage() for r in caplog.records]


def test_strict_mode_makes_a_raising_hook_fail_loudly_with_the_plugin_named() -> None:
    class RaisingOnStart:
        @hookimpl
        def on_step_start(self, step: Any) -> None:
            raise RuntimeError("observer broke on start")

    with (
        plugin_registry({"raising-observer": RaisingOnStart()}, strict=True),
        pytest.raises(PluginError, match=r"'raising-observer' failed in on_step_start: .*observer broke"),
    ):
        Workflow(name="w", steps=_chain()).run("x")


def test_a_blocking_hook_does_not_stall_the_loop_so_the_timeout_fires() -> None:
    release = threading.Event()
    returned = threading.Event()

    class Blocking:
        @hookimpl
        def on_step_start(self, step: Any) -> None:
            release.wait(30)
            returned.set()

    async def slow(step_input: Any) -> str:
        await asyncio.sleep(20)
        return "late"

    try:
        with plugin_registry({"blocking-observer": Blocking()}):
            workflow = Workflow(name="w", steps=[Step(name="slow", executor=slow)], timeout=0.5)
            with pytest.raises(Exception, match=r"0\.5") as caught:
                asyncio.run(asyncio.wait_for(workflow.arun("x"), 60))
            # The workflow's own timeout ended the run while the hook was still blocked.
            assert not returned.is_set()
            assert not isinstance(caught.value, TimeoutError) or str(caught.value)
    finally:
        release.set()
        assert flush_sinks(timeout=5)


def test_hooks_see_every_step_in_order_with_any_subset_of_arguments() -> None:
    seen: list[tuple[str, str]] = []

    class Recorder:
        @hookimpl
        def on_step_start(self, step_id: str) -> None:
            seen.append(("start", step_id))

        @hookimpl
        def on_workflow_end(self, status: str) -> None:
            seen.append(("end", status))

    with plugin_registry({"recorder": Recorder()}):
        Workflow(name="w", steps=_chain(2)).run("x")
        assert flush_sinks(timeout=5)
    assert seen == [("start", "s0"), ("start", "s1"), ("end", "COMPLETED")]


def test_unmarked_functions_are_not_hooks_and_plugins_lists_the_real_ones() -> None:
    calls: list[str] = []

    class Mixed:
        def register_models(self, register: Any) -> None:  # no @hookimpl: not a hook
            calls.append("unmarked")

        @hookimpl
        def register_storage(self, register: Any) -> None:
            calls.append("marked")

    registry = build_registry({"mixed": Mixed()}, entry_points=False)
    assert calls == ["marked"]
    assert registry.plugins["mixed"].hooks == ["register_storage"]


REQUEST_ID: Any = __import__("contextvars").ContextVar("request_id", default=None)


class ContextReader:
    """A plugin that logs with the caller's request id, as a web app's observer would."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any, str]] = []

    @hookimpl
    def on_step_start(self, step: Any) -> None:
        self.seen.append(("start", REQUEST_ID.get(), threading.current_thread().name))

    def handle(self, event: Any) -> None:  # as an event sink
        self.seen.append((type(event).__name__, REQUEST_ID.get(), threading.current_thread().name))


def test_hooks_and_sinks_see_the_contextvars_of_the_run_that_emitted() -> None:
    reader, sink = ContextReader(), ContextReader()
    with plugin_registry({"context-reader": reader}):
        workflow = Workflow(name="w", steps=_chain(1), sinks=[sink])

        def serve(request_id: str) -> None:  # a threaded web server's handler
            REQUEST_ID.set(request_id)
            workflow.run("x")

        threads = [threading.Thread(target=serve, args=(f"req-{i}",)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert flush_sinks(timeout=5)
    assert sorted(rid for kind, rid, _ in reader.seen) == ["req-0", "req-1", "req-2", "req-3"]
    assert all(name.startswith("plait-sink") for _, _, name in reader.seen)  # on the dispatcher
    assert {rid for _, rid, _ in sink.seen} == {"req-0", "req-1", "req-2", "req-3"}
    assert None not in {rid for _, rid, _ in sink.seen}
