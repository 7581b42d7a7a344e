"""The registry of plugins, as the modules below it see it.

Low modules resolve names through the registry: a model string (``"openai:gpt-4o"``),
a storage URL, a sink or runner name, a foreign object placed in ``steps=[...]``. The
registry, though, is built from modules above them (the built-in primitives, sinks and
storage), so they must not import :mod:`plait.plugins`: the arrows would point both
ways. They call :func:`registry` here instead, and :mod:`plait.plugins` installs the
real lookup when it is imported. Nothing here imports upward: when nobody has imported
the registry yet, it is loaded by module name, as the built-in plugins are.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plait.plugins import Registry

__all__ = ["BUILTIN_NAMES", "KNOWN_DISTRIBUTIONS", "install", "registry", "unknown_name"]

_get: Callable[[], Registry] | None = None

#: the module that builds the registry and calls :func:`install` when imported
REGISTRY_MODULE = "plait.plugins"
#: the entry-point group plugins are found in (:data:`plait.plugins.ENTRY_POINT_GROUP`)
ENTRY_POINT_GROUP = "plait"

#: What the repository's plugin distributions register, by (kind, key): install hints for
#: a model prefix, storage scheme, runner, sink or `plait run` option asked for without its
#: plugin (also :data:`plait.plugins.KNOWN_DISTRIBUTIONS`).
KNOWN_DISTRIBUTIONS = {
    ("model", "openai"): "plait-openai",
    ("model", "anthropic"): "plait-anthropic",
    ("model", "litellm"): "plait-litellm",
    ("storage", "postgresql"): "plait-postgres",
    ("storage", "postgres"): "plait-postgres",
    ("storage", "redis"): "plait-redis",
    ("runner", "ray"): "plait-ray",
    ("event_sink", "nats"): "plait-nats",
    ("run_option", "otlp"): "plait-otlp",
}

#: The model prefixes plait itself registers (:mod:`plait._builtins`), by kind: known
#: without building the registry (a test keeps this in step with what it registers).
BUILTIN_NAMES = {"model": frozenset({"test", "offline"}), "storage": frozenset({"memory", "sqlite"})}


def install(get: Callable[[], Registry]) -> None:
    """Make ``get`` the way to the process registry (``plait.plugins`` does this)."""
    global _get
    _get = get


def registry() -> Registry:
    """The process-wide registry (built on first use)."""
    if _get is None:
        importlib.import_module(REGISTRY_MODULE)
        assert _get is not None, f"{REGISTRY_MODULE} did not install the registry lookup"
    return _get()


def unknown_name(kind: str, key: str) -> str | None:
    """Why ``key`` names no ``kind`` (``"model"``: a model prefix), or None when it does or may.

    For a definition-time check (``Agent(model="opnai:gpt-4o-mini")``) that must stay cheap: a
    built-in name, one a known plait distribution provides (installed or not: a missing one
    gets its install hint when used) or the name of an installed plugin's entry point passes
    without building the registry. Any other name is looked up in the registry (built here if
    no one has yet), and a name it lacks gets its message, with the closest known name.
    """
    if key in BUILTIN_NAMES.get(kind, ()) or (kind, key) in KNOWN_DISTRIBUTIONS:
        return None
    if key in _entry_point_names():
        return None  # most likely what that plugin registers; asked for certain when used
    found = registry()
    if key in found.entries(kind):
        return None
    return found.unknown(kind, key)


@functools.cache
def _entry_point_names() -> frozenset[str]:
    """The names of the installed plugins' entry points (read once: a scan of every
    distribution's ``entry_points.txt``, which building the registry reads again only if it must)."""
    from plait._entry_points import scan

    return frozenset(ep.name for ep in scan(ENTRY_POINT_GROUP))
