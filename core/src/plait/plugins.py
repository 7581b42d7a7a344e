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
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from plait import _entry_points as _installed
from plait import _lookup, hookspecs
from plait._lifecycle import LIFECYCLE as _LIFECYCLE
from plait._lifecycle import LifecycleHooks, Observer
from plait._lookup import KNOWN_DISTRIBUTIONS as KNOWN_DISTRIBUTIONS  # its home before plait._lookup
from plait._public import report_public_home
from plait._registering import collect as _collect
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


class _Pending:
    """An entry point not imported yet, and the hooks its source says it implements (None:
    unknown), read from the source when first asked (a lookup the built-ins answer, as
    ``plait runs list``'s ``sqlite://`` storage, reads none)."""

    __slots__ = ("_hooks", "_read", "entry_point")

    def __init__(self, entry_point: _installed.EntryPoint) -> None:
        self.entry_point = entry_point
        self._hooks: frozenset[str] | None = None
        self._read = False

    @property
    def hooks(self) -> frozenset[str] | None:
        if not self._read:
            self._hooks = _installed.implemented_hooks(self.entry_point, _HOOKS)
            self._read = True
        return self._hooks


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
        self._busy = 0  # loads under way (read without the lock: the fast path of a lookup)
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
        if self._lifecycle is _UNSET:  # (and again if a plugin imported later observes runs)
            self._load({"on_startup", *_LIFECYCLE})
            impls: dict[str, dict[str, pluggy.HookImpl]] = {}
            for name in _LIFECYCLE:
                for impl in getattr(self.manager.hook, name).get_hookimpls():
                    impls.setdefault(impl.plugin_name, {})[name] = impl
            observers = [Observer(plugin, found) for plugin, found in impls.items()]
            self._lifecycle = LifecycleHooks(observers, strict=self.strict) if observers else None
        return self._lifecycle  # type: ignore[no-any-return]

    @property
    def hook(self) -> Any:
        """The pluggy hook relay (``registry.hook.on_step_start(...)``), every plugin imported."""
        self._load(None)
        return self.manager.hook

    # -- importing plugins on demand -----------------------------------------------

    def _collect_deferred(self, hooks: set[str] | None) -> None:
        """Call the built-ins' deferred registration hooks among ``hooks`` (None: all)."""
        for deferred in [d for d in self._deferred if hooks is None or d[2] in hooks]:
            self._deferred.remove(deferred)
            _collect(self, deferred[0], deferred[1], frozenset({deferred[2]}))

    def _load(self, hooks: set[str] | None) -> None:
        """Import the pending entry points that implement (or may implement) one of ``hooks``
        (None: all of them), in their order; each one's ``on_startup`` runs once it is in."""
        if not (self._pending or self._deferred or self._busy):
            return  # everything is in (a load under way in another thread is waited for below)
        with self._loading:
            self._busy += 1
            try:
                self._collect_deferred(hooks)
                for pending in [
                    p
                    for p in self._pending
                    if hooks is None or p.hooks is None or not hooks.isdisjoint(p.hooks)
                ]:
                    if pending not in self._pending:  # (loaded by a hook of a plugin loaded before it)
                        continue
                    self._pending.remove(pending)
                    if pending.hooks is None or not pending.hooks.isdisjoint(_LIFECYCLE):
                        self._lifecycle = _UNSET  # a new observer: the relay is made again
                    _load_entry_point(self, pending.entry_point)
            finally:
                self._busy -= 1

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
        # the built-ins register a kind first, as when nothing was deferred (a clash is this plugin's)
        registry._collect_deferred({d[2] for d in registry._deferred} & set(info.hooks))
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
            registry._pending.append(_Pending(ep))
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
report_public_home(__name__, globals(), __all__)  # plait.plugins.LifecycleHooks, not plait._lifecycle
