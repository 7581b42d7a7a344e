"""The plugin manager and the registry of everything plugins registered.

Plugins come from the ``plait`` entry-point group and are imported lazily, each
when one of its hooks is first needed: building the registry reads the entry
points and each plugin module's source (:mod:`plait._entry_points`: which hooks
it implements), not the modules. A model string imports the plugins that
register models, a storage URL those that register storage, ``plait``'s parser
those that add commands and options, a run those that observe runs or start up
(``on_startup``, ``on_workflow_*``, ``on_step_*``), and listing the plugins
(``plait plugins``, :attr:`Registry.plugins`, :attr:`Registry.errors`) all of
them. A plugin whose source does not say which hooks it implements is imported
whenever any may be needed. A plugin that fails to import, names a
hook that does not exist, or registers something invalid is recorded in
:attr:`Registry.errors` and left out; the host and the other plugins carry on.
``PLAIT_STRICT_PLUGINS=1`` (or ``strict=True``) raises instead.

Lifecycle hooks (``on_workflow_*``, ``on_step_*``) are observers, isolated like
event sinks: each observing plugin is fed from a bounded queue on a thread of
its own, so a hook that raises is reported once (naming the plugin) and a hook
that blocks stalls neither the run nor its event loop. In strict mode they are
called inline instead, and a failure raises :class:`PluginError` naming the
plugin and the hook.

Environment switches, read when the registry is built:

* ``PLAIT_LOAD_PLUGINS=a,b``: load only these entry points (empty: none).
* ``PLAIT_DISABLE_PLUGINS=a,b``: load all entry points but these.

The built-in step types, models, storage, sinks and runner register through the
very same hooks, as the plugin ``plait.builtins``: the modules named in
:data:`BUILTIN_MODULES`, imported by name when the registry is built (so this
module imports none of what they register, and the core's imports stay one-way).

Low modules that resolve names through the registry (a model string, a storage
URL, a sink or runner name) reach it through :mod:`plait._lookup`, which this
module fills in when imported.
"""

from __future__ import annotations

import importlib
import os
import threading
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from plait import _entry_points as _installed
from plait import _lookup, hookspecs
from plait._lookup import KNOWN_DISTRIBUTIONS as KNOWN_DISTRIBUTIONS  # its home before plait._lookup
from plait.errors import PluginError

__all__ = [
    "ENTRY_POINT_GROUP",
    "LifecycleHooks",
    "PluginInfo",
    "PluginLoadError",
    "Registration",
    "Registry",
    "build_registry",
    "get_registry",
    "lifecycle_hooks",
    "set_registry",
]

ENTRY_POINT_GROUP = _lookup.ENTRY_POINT_GROUP
BUILTIN_PLUGIN = "plait.builtins"
#: The built-in plugins (name: module), imported by name when a registry is built.
BUILTIN_MODULES = {BUILTIN_PLUGIN: "plait._builtins"}


@dataclass(frozen=True, slots=True)
class Registration:
    """One thing a plugin registered, and which plugin registered it."""

    kind: str
    key: str
    value: Any
    plugin: str


@dataclass(slots=True)
class PluginInfo:
    """A loaded plugin: its name, the distribution it came from and its hooks."""

    name: str
    distribution: str | None = None
    version: str | None = None
    hooks: list[str] = field(default_factory=list)
    registered: list[Registration] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PluginLoadError:
    """A plugin that could not be loaded or registered, with the reason."""

    name: str
    distribution: str | None
    error: str
    traceback: str


_UNSET: Any = object()
_KINDS = ("step_type", "model", "storage", "event_sink", "runner", "command", "run_option")
_LIFECYCLE = ("on_workflow_start", "on_workflow_end", "on_step_start", "on_step_end")
_HOOKS = frozenset(n for n in dir(hookspecs) if n.startswith(("register_", "on_")))
#: the hook that registers each kind (what a lookup of that kind may need imported)
_KIND_HOOKS = {
    "step_type": "register_step_types",
    "model": "register_models",
    "storage": "register_storage",
    "event_sink": "register_event_sinks",
    "runner": "register_runners",
    "command": "register_commands",
    "run_option": "register_run_options",
}


@dataclass(slots=True)
class _Pending:
    """An entry point not imported yet, and the hooks its source says it implements (None: unknown)."""

    entry_point: _installed.EntryPoint
    hooks: frozenset[str] | None


class _Observer:
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

    def __init__(self, observers: list[_Observer], *, strict: bool) -> None:
        self._strict = strict
        if not strict:
            from plait.sinks import dispatcher_for

            # A dispatcher per plugin: its own bounded queue and thread, as a sink has.
            feeds: dict[str, list[Callable[[Any], None]]] = {name: [] for name in _LIFECYCLE}
            for observer in observers:
                dispatch = dispatcher_for(observer, kind="lifecycle hooks of")
                for name in observer.impls:
                    feeds[name].append(dispatch)
            self._feeds = feeds
        self._observers = {name: [o for o in observers if name in o.impls] for name in _LIFECYCLE}

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


class Registry:
    """What the loaded plugins registered, by kind and key.

    Build one with :func:`build_registry`; the process-wide one is
    :func:`get_registry`.
    """

    def __init__(self, manager: pluggy.PluginManager, *, strict: bool = False) -> None:
        self.manager = manager
        self.strict = strict
        self._plugins: dict[str, PluginInfo] = {}
        self._errors: list[PluginLoadError] = []
        self._entries: dict[str, dict[str, Registration]] = {kind: {} for kind in _KINDS}
        self._lifecycle: Any = _UNSET
        self._pending: list[_Pending] = []  # entry points not imported yet, in their order
        self._order: dict[str, int] = {}  # every plugin's place (built-ins, given, entry points)
        self._loading = threading.RLock()
        self._deferred: list[tuple[str, object, str]] = []  # (plugin, object, hook) not called yet

    # -- lookups -------------------------------------------------------------------

    @property
    def plugins(self) -> dict[str, PluginInfo]:
        """Every loaded plugin by name (listing them imports the plugins not imported yet)."""
        self._load(None)
        rank = self._order
        for info in self._plugins.values():  # by kind, as registered when all came at once
            info.registered.sort(key=lambda entry: _KINDS.index(entry.kind))
        return dict(sorted(self._plugins.items(), key=lambda item: rank.get(item[0], len(rank))))

    @property
    def errors(self) -> list[PluginLoadError]:
        """The plugins that could not be loaded, with the reason (all plugins are imported first)."""
        self._load(None)
        rank = self._order
        return sorted(self._errors, key=lambda error: rank.get(error.name, len(rank)))

    def entries(self, kind: str) -> dict[str, Registration]:
        """Everything registered of ``kind`` (``"model"``, ``"storage"``, ...), by key."""
        self._load({_KIND_HOOKS[kind]})
        return self._entries[kind]

    def get(self, kind: str, key: str) -> Any:
        """The registered value, or a :class:`PluginError` that lists what is known."""
        entry = self._entries[kind].get(key)
        if entry is None and (self._pending or self._deferred):
            entry = self.entries(kind).get(key)
        if entry is None:
            raise PluginError(self.unknown(kind, key))
        return entry.value

    def unknown(self, kind: str, key: str) -> str:
        """What to say of ``key``, which names no registered ``kind``: what is registered, and
        the plugin to install (a known distribution's name) or the closest known name."""
        known = ", ".join(sorted(self._entries[kind])) or "none"
        hint = ""
        if (kind, key) in KNOWN_DISTRIBUTIONS:
            hint = f"; install it with: pip install {KNOWN_DISTRIBUTIONS[kind, key]}"
        else:
            import difflib

            names = set(self._entries[kind]) | {k for d, k in KNOWN_DISTRIBUTIONS if d == kind}
            close = difflib.get_close_matches(key, sorted(names), n=1, cutoff=0.6)
            if close:
                hint = f"; did you mean {close[0]!r}?"
        return f"no {kind.replace('_', ' ')} named {key!r} is registered (known: {known}){hint}"

    def create_model(self, prefix: str, name: str, **options: Any) -> Any:
        """Build the model ``prefix:name`` through its registered factory."""
        factory = self.get("model", prefix)
        return factory(name, **options)

    @property
    def step_types(self) -> list[Any]:
        return [entry.value for entry in self.entries("step_type").values()]

    @property
    def lifecycle_hooks(self) -> LifecycleHooks | None:
        """The observers of runs, or None when no plugin observes them (runs then skip hook calls).

        Imports the plugins that observe runs or start up (one may configure tracing)."""
        if self._lifecycle is _UNSET or self._pending:
            self._load({"on_startup", *_LIFECYCLE})
        if self._lifecycle is _UNSET:
            impls: dict[str, dict[str, pluggy.HookImpl]] = {}
            for name in _LIFECYCLE:
                for impl in getattr(self.manager.hook, name).get_hookimpls():
                    impls.setdefault(impl.plugin_name, {})[name] = impl
            observers = [_Observer(plugin, found) for plugin, found in impls.items()]
            self._lifecycle = LifecycleHooks(observers, strict=self.strict) if observers else None
        return self._lifecycle  # type: ignore[no-any-return]

    @property
    def hook(self) -> Any:
        """The pluggy hook relay (``registry.hook.on_step_start(...)``), every plugin imported."""
        self._load(None)
        return self.manager.hook

    # -- importing plugins on demand -----------------------------------------------

    def _load(self, hooks: set[str] | None) -> None:
        """Import the pending entry points that implement (or may implement) one of ``hooks``
        (None: all of them), in their order; each one's ``on_startup`` runs once it is in."""
        if self._deferred:
            with self._loading:
                for deferred in [d for d in self._deferred if hooks is None or d[2] in hooks]:
                    self._deferred.remove(deferred)
                    _collect(self, deferred[0], deferred[1], frozenset({deferred[2]}))
        if not self._pending:
            return
        with self._loading:
            wanted = [
                p for p in self._pending if hooks is None or p.hooks is None or not hooks.isdisjoint(p.hooks)
            ]
            for pending in wanted:
                if pending in self._pending:  # (a plugin's own hooks may have loaded it already)
                    self._pending.remove(pending)
                    self._lifecycle = _UNSET
                    _load_entry_point(self, pending.entry_point)

    # -- registration --------------------------------------------------------------

    def _register(self, kind: str, key: str, value: Any, plugin: str) -> None:
        existing = self._entries[kind].get(key)
        if existing is not None and existing.plugin != plugin:
            raise PluginError(
                f"{kind.replace('_', ' ')} {key!r} is registered by both {existing.plugin!r} and {plugin!r}; "
                "uninstall or disable one of them (PLAIT_DISABLE_PLUGINS)"
            )
        entry = Registration(kind, key, value, plugin)
        self._entries[kind][key] = entry
        self._plugins[plugin].registered.append(entry)


def _check_name(kind: str, key: object) -> str:
    if not isinstance(key, str) or not key or any(c.isspace() for c in key) or ":" in key:
        raise PluginError(f"{kind} name must be a non-empty string without spaces or ':', got {key!r}")
    return key


def _require_callable(kind: str, key: str, value: object) -> None:
    if not callable(value):
        raise PluginError(f"{kind} {key!r}: expected a callable factory, got {value!r}")


def _collect(
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


def _env_list(name: str) -> set[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _hook_names(manager: pluggy.PluginManager, plugin: object) -> list[str]:
    return sorted(caller.name for caller in manager.get_hookcallers(plugin) or [])


def _add_plugin(
    registry: Registry,
    name: str,
    plugin: object,
    *,
    distribution: str | None,
    version: str | None,
    strict: bool,
    defer: frozenset[str] = frozenset(),
) -> None:
    manager = registry.manager
    registry._plugins[name] = info = PluginInfo(name, distribution, version)
    try:
        manager.register(plugin, name=name)
        try:
            manager.check_pending()
        except pluggy.PluginValidationError as exc:
            manager.unregister(plugin)
            valid = ", ".join(sorted(n for n in dir(hookspecs) if n.startswith(("register_", "on_"))))
            raise PluginError(f"{exc} (known hooks: {valid})") from exc
        info.hooks = _hook_names(manager, plugin)
        _collect(registry, name, plugin, None if not defer else frozenset(_KIND_HOOKS.values()) - defer)
        registry._deferred.extend((name, plugin, hook) for hook in sorted(defer))
    except Exception as exc:
        if manager.is_registered(plugin):
            manager.unregister(plugin)
        for entry in info.registered:
            registry._entries[entry.kind].pop(entry.key, None)
        del registry._plugins[name]
        if strict:
            raise
        registry._errors.append(
            PluginLoadError(name, distribution, f"{type(exc).__name__}: {exc}", traceback.format_exc())
        )


def _entry_points() -> Iterable[_installed.EntryPoint]:
    return _installed.scan(ENTRY_POINT_GROUP)


def _load_entry_point(registry: Registry, ep: _installed.EntryPoint) -> None:
    """Import one entry point's plugin, register what it registers, and start it."""
    strict = registry.strict
    dist, version = ep.distribution
    try:
        plugin = ep.load()
    except Exception as exc:
        if strict:
            raise PluginError(f"plugin {ep.name!r} ({dist}) failed to import: {exc}") from exc
        registry._errors.append(
            PluginLoadError(ep.name, dist, f"{type(exc).__name__}: {exc}", traceback.format_exc())
        )
        return
    _add_plugin(registry, ep.name, plugin, distribution=dist, version=version, strict=strict)
    if ep.name in registry._plugins:
        _start(registry, strict, plugin)


def build_registry(
    plugins: Iterable[object] | dict[str, object] = (),
    *,
    entry_points: bool = True,
    builtins: bool = True,
    strict: bool | None = None,
) -> Registry:
    """Build a registry from the built-ins, the given plugin objects and (optionally)
    the installed entry points, honouring the environment switches."""
    if strict is None:
        strict = os.environ.get("PLAIT_STRICT_PLUGINS", "") not in ("", "0", "false")
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    registry = Registry(manager, strict=strict)
    order = registry._order
    if builtins:
        for name, module in BUILTIN_MODULES.items():
            order.setdefault(name, len(order))
            _add_plugin(
                registry,
                name,
                importlib.import_module(module),
                distribution="plait",
                version=_installed.installed_version("plait"),
                strict=True,
                # its step types are the engine's classes: registered when first asked for
                defer=frozenset({"register_step_types"}),
            )
    named = plugins.items() if isinstance(plugins, dict) else ((_plugin_name(p), p) for p in plugins)
    for name, plugin in named:
        order.setdefault(name, len(order))
        _add_plugin(registry, name, plugin, distribution=None, version=None, strict=strict)
    _start(registry, strict)
    if entry_points:
        only = _env_list("PLAIT_LOAD_PLUGINS")
        disabled = _env_list("PLAIT_DISABLE_PLUGINS") or set()
        for ep in _entry_points():
            if (only is not None and ep.name not in only) or ep.name in disabled:
                continue
            order.setdefault(ep.name, len(order))
            registry._pending.append(_Pending(ep, _installed.implemented_hooks(ep, _HOOKS)))
    return registry


def _start(registry: Registry, strict: bool, plugin: object | None = None) -> None:
    """Call ``on_startup`` once, of every plugin registered so far (or of ``plugin`` alone);
    a failing one is reported by name."""
    for impl in registry.manager.hook.on_startup.get_hookimpls():
        if plugin is not None and impl.plugin is not plugin:
            continue
        try:
            impl.function(registry=registry)
        except Exception as exc:
            if strict:
                raise
            info = registry._plugins.get(impl.plugin_name)
            registry._errors.append(
                PluginLoadError(
                    impl.plugin_name,
                    info.distribution if info else None,
                    f"on_startup failed: {type(exc).__name__}: {exc}",
                    traceback.format_exc(),
                )
            )


def _plugin_name(plugin: object) -> str:
    return getattr(plugin, "__name__", None) or type(plugin).__name__


_registry: Registry | None = None
_lock = threading.Lock()


def get_registry() -> Registry:
    """The process-wide registry, built on first use."""
    global _registry
    if _registry is None:
        with _lock:
            if _registry is None:
                _registry = build_registry()
    return _registry


def set_registry(registry: Registry | None) -> Registry | None:
    """Replace the process-wide registry (``None`` rebuilds it on next use); returns the old one."""
    global _registry
    with _lock:
        old, _registry = _registry, registry
    return old


def lifecycle_hooks() -> LifecycleHooks | None:
    """The process registry's lifecycle hook relay, or None when no plugin observes runs."""
    return get_registry().lifecycle_hooks


_lookup.install(get_registry)
