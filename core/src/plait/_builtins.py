"""plait's own plugin: the built-in step types, test models and runner.

Registered through the same hooks as any third-party plugin, under the name
``plait.builtins``.
"""

from __future__ import annotations

from typing import Any

from plait.hookspecs import hookimpl


@hookimpl
def register_step_types(register: Any) -> None:
    from plait.primitives import Condition, Loop, Parallel, Router, Step, Steps

    for step_type in (Step, Steps, Parallel, Condition, Loop, Router):
        register(step_type)


@hookimpl
def register_models(register: Any) -> None:
    from plait.testing import EchoModel, OfflineModel

    register("test", EchoModel)
    register("offline", OfflineModel)


@hookimpl
def register_runners(register: Any) -> None:
    from plait.runners import default_runner

    register("inprocess", lambda **options: default_runner())


@hookimpl
def register_storage(register: Any) -> None:
    from plait.storage import MemoryStorage
    from plait.storage._sqlite import SQLiteStorage

    register("memory", MemoryStorage)
    register("sqlite", SQLiteStorage)


@hookimpl
def register_event_sinks(register: Any) -> None:
    from plait.sinks import ConsoleSink, JsonlSink, TreeSink

    register("console", ConsoleSink)
    register("tree", TreeSink)
    register("jsonl", JsonlSink)
