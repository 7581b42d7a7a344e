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

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plait.plugins import Registry

__all__ = ["install", "registry"]

_get: Callable[[], Registry] | None = None

#: the module that builds the registry and calls :func:`install` when imported
REGISTRY_MODULE = "plait.plugins"


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
