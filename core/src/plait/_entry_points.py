"""The installed plugins, found without importing them (nor :mod:`importlib.metadata`).

Building the registry used to import ``importlib.metadata`` (and the email, zipfile and csv
packages it brings: about 20 ms), parse every plugin distribution's ``METADATA`` and import
every plugin's module, even for a run that needs none of them. Here:

* :func:`scan` reads the ``entry_points.txt`` of every distribution on ``sys.path`` (what
  ``importlib.metadata.entry_points(group=...)`` reads, in the same order, the first
  distribution of a name winning), and falls back to ``importlib.metadata`` where a path
  entry is not a directory (a zip file) or a finder other than the standard one lists
  distributions;
* :func:`implemented_hooks` tells which hooks a plugin module implements by reading its
  source (the functions decorated ``@hookimpl``), without importing it, so the registry
  imports a plugin only when one of its hooks is needed; ``None`` when the source does not
  say for certain (the plugin is then imported whenever any hook may be needed);
* :func:`installed_version` reads a distribution's version from its metadata's header.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.machinery
import os
import re
import sys
from dataclasses import dataclass
from typing import Any

__all__ = ["EntryPoint", "implemented_hooks", "installed_version", "scan"]

_SUFFIXES = (".dist-info", ".egg-info")


@dataclass(frozen=True, slots=True)
class EntryPoint:
    """One entry point of a group: ``name = module:attr``, and the distribution declaring it."""

    name: str
    value: str
    metadata_dir: str | None = None  # the .dist-info / .egg-info directory
    dist_name: str | None = None  # given when found through importlib.metadata
    dist_version: str | None = None

    @property
    def module(self) -> str:
        return self.value.partition(":")[0].strip()

    @property
    def attr(self) -> str:
        return self.value.partition(":")[2].partition("[")[0].strip()

    def load(self) -> Any:
        """Import the module and return the object the entry point names (as ``EntryPoint.load``)."""
        found: Any = importlib.import_module(self.module)
        for part in filter(None, self.attr.split(".")):
            found = getattr(found, part)
        return found

    @property
    def distribution(self) -> tuple[str | None, str | None]:
        """The declaring distribution's name and version (read from its metadata's header)."""
        if self.metadata_dir is None:
            return self.dist_name, self.dist_version
        return _header(self.metadata_dir)


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


#: the last :func:`_metadata_dirs` answer and what it was read from (sys.path's directories
#: and their modification times: installing or removing a distribution changes one)
_dirs_cache: list[Any] = [None, None]


def _metadata_dirs() -> list[str] | None:
    """Every distribution's metadata directory on sys.path, first of a name only; None when
    only importlib.metadata can tell (a zip file on sys.path, another distribution finder).
    Read again only when sys.path or one of its directories changed (a start-up asks up to
    three times: the registry's scan, the plugin names, the version)."""
    finders = [f for f in sys.meta_path if hasattr(f, "find_distributions")]
    if any(f is not importlib.machinery.PathFinder for f in finders):
        return None
    key: list[tuple[str, int | None]] = []
    for entry in sys.path:
        try:
            key.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            key.append((entry, None))
    if _dirs_cache[0] != key:
        _dirs_cache[:] = [key, _read_metadata_dirs()]
    found: list[str] | None = _dirs_cache[1]
    return None if found is None else list(found)


def _read_metadata_dirs() -> list[str] | None:
    seen: set[str] = set()
    found: list[str] = []
    for entry in sys.path:
        root = entry or "."
        try:
            names = os.listdir(root)
        except NotADirectoryError:
            return None
        except OSError:
            continue
        for child in names:
            if not child.lower().endswith(_SUFFIXES):
                continue
            key = _normalize(child.rpartition(".")[0].partition("-")[0])
            if key not in seen:
                seen.add(key)
                found.append(os.path.join(root, child))
    return found


def scan(group: str) -> list[EntryPoint]:
    """The entry points of ``group`` of the installed distributions, in importlib.metadata's order."""
    dirs = _metadata_dirs()
    if dirs is None:
        from importlib.metadata import entry_points

        return [
            EntryPoint(
                ep.name,
                ep.value,
                dist_name=ep.dist.name if ep.dist is not None else None,
                dist_version=ep.dist.version if ep.dist is not None else None,
            )
            for ep in entry_points(group=group)
        ]
    found: list[EntryPoint] = []
    for directory in dirs:
        try:
            with open(os.path.join(directory, "entry_points.txt"), encoding="utf-8") as file:
                text = file.read()
        except OSError:
            continue
        found.extend(EntryPoint(name, value, metadata_dir=directory) for name, value in _section(text, group))
    return found


def _section(text: str, group: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip()
        elif current == group and "=" in line:
            name, _, value = line.partition("=")
            pairs.append((name.strip(), value.strip()))
    return pairs


@functools.cache
def _header(directory: str) -> tuple[str | None, str | None]:
    fields: dict[str, str] = {}
    for filename in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(directory, filename), encoding="utf-8") as file:
                for line in file:
                    if not line.strip():
                        break  # the body (the long description) follows the header
                    key, sep, value = line.partition(":")
                    if sep and key in ("Name", "Version"):
                        fields.setdefault(key, value.strip())
            break
        except OSError:
            continue
    return fields.get("Name"), fields.get("Version")


def installed_version(distribution: str) -> str | None:
    """The installed version of ``distribution``, or None when it is not installed."""
    dirs = _metadata_dirs()
    if dirs is None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version(distribution)
        except PackageNotFoundError:
            return None
    key = _normalize(distribution)
    for directory in dirs:
        if _normalize(os.path.basename(directory).rpartition(".")[0].partition("-")[0]) == key:
            return _header(directory)[1]
    return None


def implemented_hooks(entry_point: EntryPoint, hook_names: frozenset[str]) -> frozenset[str] | None:
    """The hooks among ``hook_names`` that the entry point's module implements (its top-level
    functions decorated ``@hookimpl`` or ``@x.hookimpl``), read from its source; None when the
    source does not say for certain: the entry point names an object in the module, its source
    is not found, or a hook's name is bound some other way (imported, assigned, decorated with
    something else, ``from ... import *``, a module ``__getattr__``)."""
    if entry_point.attr:
        return None
    path = _source_of(entry_point.module)
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as file:
            tree = ast.parse(file.read(), path)
    except (OSError, SyntaxError, ValueError):
        return None
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name == "__getattr__":
                return None
            if node.name in hook_names and node.decorator_list:
                if not all(_is_hookimpl(d) for d in node.decorator_list):
                    return None
                found.add(node.name)
            continue  # an undecorated function is no implementation (pluggy takes marked ones)
        for inner in ast.walk(node):
            bound = _bound_names(inner)
            if "*" in bound or "__getattr__" in bound or bound & hook_names:
                return None
    return frozenset(found)


def _is_hookimpl(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return (isinstance(target, ast.Name) and target.id == "hookimpl") or (
        isinstance(target, ast.Attribute) and target.attr == "hookimpl"
    )


def _bound_names(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
        return {node.id}
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, ast.alias):
        return {(node.asname or node.name).partition(".")[0]}
    return set()


def _source_of(module: str) -> str | None:
    """The ``.py`` file of ``module``, found without importing it (nor its parent packages)."""
    loaded = sys.modules.get(module)
    if loaded is not None:
        path = getattr(loaded, "__file__", None)
        return path if isinstance(path, str) and path.endswith(".py") else None
    parts = module.split(".")
    spec = importlib.machinery.PathFinder.find_spec(parts[0])
    for index in range(1, len(parts)):
        if spec is None or not spec.submodule_search_locations:
            return None
        spec = importlib.machinery.PathFinder.find_spec(
            ".".join(parts[: index + 1]), list(spec.submodule_search_locations)
        )
    if spec is None or not isinstance(spec.origin, str) or not spec.origin.endswith(".py"):
        return None
    return spec.origin
