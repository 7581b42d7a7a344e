"""plait's own plugin registers every built-in step type, model, storage backend, sink and runner."""

from __future__ import annotations

from pathlib import Path

from plait import Approval, Condition, Loop, Parallel, Router, Step, Steps
from plait.plugins import BUILTIN_PLUGIN, build_registry
from plait.storage import MemoryStorage
from plait.testing import EchoModel, OfflineModel


def test_the_builtins_register_everything_plait_ships() -> None:
    registry = build_registry(entry_points=False)
    registered = {(r.kind, r.key) for r in registry.plugins[BUILTIN_PLUGIN].registered}
    step_types = {cls.step_type for cls in (Step, Steps, Parallel, Condition, Loop, Router, Approval)}
    assert {key for kind, key in registered if kind == "step_type"} == step_types
    assert Approval in registry.step_types  # listed by `plait plugins`
    assert {key for kind, key in registered if kind == "storage"} == {"memory", "sqlite"}
    assert {key for kind, key in registered if kind == "event_sink"} == {"console", "tree", "jsonl"}
    assert {key for kind, key in registered if kind == "model"} == {"test", "offline"}
    assert {key for kind, key in registered if kind == "runner"} == {"inprocess"}


def test_the_builtin_factories_build_what_they_name(tmp_path: Path) -> None:
    registry = build_registry(entry_points=False)
    assert isinstance(registry.get("storage", "memory")("memory://"), MemoryStorage)
    sqlite = registry.get("storage", "sqlite")(f"sqlite:///{tmp_path / 'runs.db'}")
    assert type(sqlite).__name__ == "SQLiteStorage"
    assert isinstance(registry.create_model("test", "echo"), EchoModel)
    assert isinstance(registry.create_model("offline", "demo", delay=0), OfflineModel)
    assert registry.create_model("offline", "demo", delay=0).delay == 0
