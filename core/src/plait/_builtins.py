"""plait's own plugin: the built-in step types, test models, storage backends, event sinks and runner.

Registered through the same hooks as any third-party plugin, under the name
``plait.builtins`` (:data:`plait.plugins.BUILTIN_MODULES` names this module).

Registering is cheap: models, storage backends and sinks are registered as small
factories that import their module when a name or URL asks for one (the storage
modules bring pydantic), so building the registry, and a run without storage,
import none of them. Step types are classes, registered as they are, when step
types are first asked for (the registry defers this hook: ``plait --help`` needs
no engine).
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


def echo_model(name: str, **options: Any) -> Any:
    """``"test:NAME"``: a :class:`plait.testing.EchoModel`."""
    from plait.testing import EchoModel

    return EchoModel(name, **options)


def offline_model(name: str, **options: Any) -> Any:
    """``"offline:NAME"``: a :class:`plait.testing.OfflineModel`."""
    from plait.testing import OfflineModel

    return OfflineModel(name, **options)


@hookimpl
def register_models(register: Any) -> None:
    register("test", echo_model)
    register("offline", offline_model)


def inprocess_runner(**options: Any) -> Any:
    """``"inprocess"``: the default runner (:func:`plait.runners.default_runner`)."""
    from plait.runners import default_runner

    return default_runner()


@hookimpl
def register_runners(register: Any) -> None:
    register("inprocess", inprocess_runner)


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


def console_sink(**options: Any) -> Any:
    """``"console"``: a :class:`plait.sinks.ConsoleSink`."""
    from plait.sinks import ConsoleSink

    return ConsoleSink(**options)


def tree_sink(**options: Any) -> Any:
    """``"tree"``: a :class:`plait.sinks.TreeSink`."""
    from plait.sinks import TreeSink

    return TreeSink(**options)


def jsonl_sink(**options: Any) -> Any:
    """``"jsonl"``: a :class:`plait.sinks.JsonlSink` (``path=``)."""
    from plait.sinks import JsonlSink

    return JsonlSink(**options)


@hookimpl
def register_event_sinks(register: Any) -> None:
    register("console", console_sink)
    register("tree", tree_sink)
    register("jsonl", jsonl_sink)
