"""The lifecycle hooks of plugins that observe runs, isolated from the run.

Each observing plugin is fed from a bounded queue on a thread of its own (as an event sink
is), so a hook that raises is reported once, naming the plugin, and one that blocks stalls
neither the run nor its event loop; in strict mode they are called inline and a failure
raises :class:`plait.errors.PluginError` naming the plugin and the hook.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

from plait.errors import PluginError

__all__ = ["LIFECYCLE", "LifecycleHooks", "Observer"]

#: the hooks that observe runs
LIFECYCLE = ("on_workflow_start", "on_workflow_end", "on_step_start", "on_step_end")


class Observer:
    """One plugin's lifecycle hooks, called with the arguments each one names."""

    def __init__(self, plugin: str, impls: dict[str, pluggy.HookImpl]) -> None:
        self.plugin = plugin
        self.impls = impls

    def handle(self, call: tuple[str, dict[str, Any]]) -> None:
        name, kwargs = call
        impl = self.impls[name]
        impl.function(*[kwargs[arg] for arg in impl.argnames])

    def __repr__(self) -> str:
        return f"plugin {self.plugin!r}"


class LifecycleHooks:
    """Calls the plugins observing runs, isolated from the run (see the module docs)."""

    def __init__(self, observers: list[Observer], *, strict: bool) -> None:
        self._strict = strict
        if not strict:
            from plait.sinks import dispatcher_for

            # A dispatcher per plugin: its own bounded queue and thread, as a sink has.
            feeds: dict[str, list[Callable[[Any], None]]] = {name: [] for name in LIFECYCLE}
            for observer in observers:
                dispatch = dispatcher_for(observer, kind="lifecycle hooks of")
                for name in observer.impls:
                    feeds[name].append(dispatch)
            self._feeds = feeds
        self._observers = {name: [o for o in observers if name in o.impls] for name in LIFECYCLE}

    def _call(self, name: str, kwargs: dict[str, Any]) -> None:
        if not self._strict:
            for dispatch in self._feeds[name]:
                dispatch((name, kwargs))
            return
        for observer in self._observers[name]:
            try:
                observer.handle((name, kwargs))
            except Exception as exc:
                raise PluginError(
                    f"plugin {observer.plugin!r} failed in {name}: {type(exc).__name__}: {exc}"
                ) from exc

    def on_workflow_start(self, **kwargs: Any) -> None:
        self._call("on_workflow_start", kwargs)

    def on_workflow_end(self, **kwargs: Any) -> None:
        self._call("on_workflow_end", kwargs)

    def on_step_start(self, **kwargs: Any) -> None:
        self._call("on_step_start", kwargs)

    def on_step_end(self, **kwargs: Any) -> None:
        self._call("on_step_end", kwargs)
