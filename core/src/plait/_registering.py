"""Calling a plugin's registration hooks, and checking what each one registers."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from plait.errors import PluginError

if TYPE_CHECKING:
    from plait.plugins import Registry

__all__ = ["collect"]


def _check_name(kind: str, key: object) -> str:
    if not isinstance(key, str) or not key or any(c.isspace() for c in key) or ":" in key:
        raise PluginError(f"{kind} name must be a non-empty string without spaces or ':', got {key!r}")
    return key


def _require_callable(kind: str, key: str, value: object) -> None:
    if not callable(value):
        raise PluginError(f"{kind} {key!r}: expected a callable factory, got {value!r}")


def collect(
    registry: Registry, plugin_name: str, plugin: object, hooks: frozenset[str] | None = None
) -> None:
    """Call the plugin's registration hooks (or those among ``hooks``), validating each value it gives."""

    def step_type(cls: object) -> None:
        from plait._node import StepNode  # here: the parser of `plait --help` needs no engine

        if not (isinstance(cls, type) and issubclass(cls, StepNode)):
            raise PluginError(f"register_step_types: expected a subclass of plait.StepNode, got {cls!r}")
        key = _check_name("step type", getattr(cls, "step_type", None))
        registry._register("step_type", key, cls, plugin_name)

    def factory(kind: str) -> Callable[..., None]:
        def register(key: str, value: Any) -> None:
            key = _check_name(kind, key)
            _require_callable(kind, key, value)
            registry._register(kind, key, value, plugin_name)

        return register

    def command(
        name: str, configure: Callable[..., Any], handler: Callable[..., Any], help: str = ""
    ) -> None:
        name = _check_name("command", name)
        _require_callable("command", name, handler)
        _require_callable("command", name, configure)
        registry._register("command", name, (configure, handler, help), plugin_name)

    def run_option(name: str, configure: Callable[..., Any], apply: Callable[..., Any]) -> None:
        name = _check_name("run option", name)
        _require_callable("run option", name, configure)
        _require_callable("run option", name, apply)
        registry._register("run_option", name, (configure, apply), plugin_name)

    callbacks: dict[str, Callable[..., None]] = {
        "register_step_types": step_type,
        "register_models": factory("model"),
        "register_storage": factory("storage"),
        "register_event_sinks": factory("event_sink"),
        "register_runners": factory("runner"),
        "register_commands": command,
        "register_run_options": run_option,
    }
    for hook_name, callback in callbacks.items():
        if hooks is not None and hook_name not in hooks:
            continue
        # Call this plugin's own implementations (pluggy's: only what @hookimpl marks),
        # so whatever it registers is attributed to it and a failure is reported against it alone.
        for impl in getattr(registry.manager.hook, hook_name).get_hookimpls():
            if impl.plugin is plugin:
                impl.function(register=callback)
