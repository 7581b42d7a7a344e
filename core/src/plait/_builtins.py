"""plait's own plugin: the built-in step types, test models, storage backends, event sinks and runner.

Registered through the same hooks as any third-party plugin, under the name
``plait.builtins`` (:data:`plait.plugins.BUILTIN_MODULES` names this module).

Registering is cheap: the storage backends are registered as small factories that
import their module (and pydantic) when a URL asks for one, so building the registry,
and a run without storage, import neither.
"""

from __future__ import annotations

from typing import Any

from plait.hookspecs import hookimpl


@hookimpl
def register_step_types(register: Any) -> None:
    from plait.approval import Approval
    from plait.primitives import Condition, Loop, Parallel, Router, Step, Steps

    for step_type in (Step, Steps, Parallel, Condition, Loop, Router, Approval):
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


def memory_storage(url: str) -> Any:
    """``memory://``: a :class:`plait.storage.MemoryStorage`."""
    from plait.storage import MemoryStorage

    return MemoryStorage(url)


def sqlite_storage(url: str) -> Any:
    """``sqlite:///path.db``: a SQLite backend."""
    from plait.storage._sqlite import SQLiteStorage

    return SQLiteStorage(url)


@hookimpl
def register_storage(register: Any) -> None:
    register("memory", memory_storage)
    register("sqlite", sqlite_storage)


@hookimpl
def register_event_sinks(register: Any) -> None:
    from plait.sinks import ConsoleSink, JsonlSink, TreeSink

    register("console", ConsoleSink)
    register("tree", TreeSink)
    register("jsonl", JsonlSink)
