"""The shape of the code: the core's imports go one way, and no other distribution
reaches into the core's private modules.

Both checks read the source with :mod:`ast`, so they see every import, including those
made inside functions (an import deferred to a function is still a dependency: it only
moves the moment the cycle bites). Imports under ``if TYPE_CHECKING:`` are left out of
the cycle check, since they never run. The few modules the core names in a string instead
of importing (the registry, the built-in plugin) are listed, each with its reason, in
FOUND_BY_NAME: a new one fails too.
"""

from __future__ import annotations

import ast
import itertools
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import plait
from plait._public import PLAIT_EXPORTS

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "core" / "src"
PACKAGE = "plait"


def _module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(
    tree: ast.AST, module: str, *, is_package: bool, type_checking: bool
) -> Iterator[tuple[str, str | None, int]]:
    """(module, imported name or None, line) for every import statement, at any depth:
    ``import a.b`` gives ("a.b", None), ``from a import b`` gives ("a", "b")."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test) and not type_checking:
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if not is_package:
                    base.pop()
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                yield target, alias.name, node.lineno
        stack.extend(ast.iter_child_nodes(node))


def core_graph() -> dict[str, dict[str, int]]:
    """plait-internal imports: module -> {imported module: first line}."""
    files = {_module_name(p, CORE): p for p in sorted((CORE / PACKAGE).rglob("*.py"))}
    graph: dict[str, dict[str, int]] = {}
    for module, path in files.items():
        edges = graph.setdefault(module, {})
        tree = ast.parse(path.read_text(), str(path))
        for target, name, line in _imports(
            tree, module, is_package=path.name == "__init__.py", type_checking=False
        ):
            if name is not None and f"{target}.{name}" in files:
                target = f"{target}.{name}"  # from plait import _state: the submodule
            if target not in files:
                continue
            # Importing plait.a.b runs plait/a/__init__.py first, so that counts too, but not
            # for a module inside plait.a (its package is already importing), nor for the root
            # package (the facade that imports everything) unless named: ``from plait import Step``.
            parts = target.split(".")
            for depth in range(2, len(parts)):
                imported = ".".join(parts[:depth])
                if imported in files and imported != module and not module.startswith(imported + "."):
                    edges.setdefault(imported, line)
            if target != module:
                edges.setdefault(target, line)
    return graph


def find_cycles(graph: dict[str, dict[str, int]]) -> list[tuple[list[str], list[str]]]:
    """(component, one concrete cycle through it as a closed path) for every strongly
    connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, {})):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1 or node in graph.get(node, {}):
                components.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)

    cycles = []
    for component in components:
        members = set(component)
        start = component[0]
        # Shortest way back to the start, inside the component (breadth first).
        previous: dict[str, str] = {}
        frontier = [start]
        found = None
        while frontier and found is None:
            following = []
            for node in frontier:
                for nxt in sorted(graph[node]):
                    if nxt not in members:
                        continue
                    if nxt == start:
                        found = node
                        break
                    if nxt not in previous:
                        previous[nxt] = node
                        following.append(nxt)
                if found is not None:
                    break
            frontier = following
        path = [start]
        node = found
        while node is not None and node != start:
            path.insert(1, node)
            node = previous.get(node)
        cycles.append((component, [*path, start]))
    return cycles


def _describe(component: list[str], cycle: list[str], graph: dict[str, dict[str, int]]) -> str:
    hops = " -> ".join(f"{a} (line {graph[a][b]})" for a, b in itertools.pairwise(cycle))
    return f"{hops} -> {cycle[-1]}\n    ({len(component)} modules in this cycle: {', '.join(component)})"


def test_the_core_has_no_import_cycle() -> None:
    graph = core_graph()
    assert "plait.workflow" in graph and "plait.storage._base" in graph  # the scan saw the package
    cycles = find_cycles(graph)
    assert not cycles, "import cycles in the core (imports inside functions count):\n" + "\n".join(
        _describe(component, cycle, graph) for component, cycle in cycles
    )


#: The only places a core module names a higher one instead of importing it, each where the
#: higher module is, by construction, already loaded or meant to be loaded on demand:
FOUND_BY_NAME = {
    # the registry lookup of low modules: plait.plugins installs itself into plait._lookup
    ("plait._lookup", "plait.plugins"),
    # the built-in plugin, loaded by module name like any plugin
    ("plait.plugins", "plait._builtins"),
    # "is this a Workflow?": only if plait.workflow is loaded (sys.modules)
    ("plait._step", "plait.workflow"),
    # "is this a content part (an image, a file)?": only if plait._parts is loaded (sys.modules)
    ("plait._codec", "plait._parts"),
    ("plait._content", "plait._parts"),
    ("plait._durable", "plait._parts"),
    # a Branch runs on the executor that made it (every Branch and payload comes from it)
    ("plait.runners", "plait._engine"),
    # the lazy package (PEP 562): each public name is imported from its home on first lookup
    # (the private homes it takes from plait._public.PLAIT_EXPORTS)
    *(("plait", home) for home in set(plait._HOMES.values()) if home != "plait"),
    # the table of the names private modules export through plait (each module looks itself up)
    *(("plait._public", module) for module in PLAIT_EXPORTS),
}


def test_modules_named_instead_of_imported_are_the_known_ones() -> None:
    """A module named in a string (``import_module("plait.x")``, ``sys.modules.get(...)``) is a
    dependency the cycle check cannot see: each one is listed in FOUND_BY_NAME, with its reason."""
    files = {_module_name(p, CORE) for p in (CORE / PACKAGE).rglob("*.py")}
    found = set()
    for path in sorted((CORE / PACKAGE).rglob("*.py")):
        module = _module_name(path, CORE)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            value = node.value if isinstance(node, ast.Constant) else None
            if isinstance(value, str) and value in files and value not in (module, PACKAGE):
                found.add((module, value))
    assert found == FOUND_BY_NAME, f"new: {found - FOUND_BY_NAME}, gone: {FOUND_BY_NAME - found}"


def test_the_cycle_check_catches_a_function_level_import() -> None:
    graph = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3}, "d": {"a": 4}}
    assert find_cycles(graph) == [(["a", "b", "c"], ["a", "b", "c", "a"])]
    assert find_cycles({"a": {"a": 1}}) == [(["a"], ["a", "a"])]
    tree = ast.parse(
        textwrap.dedent(
            """
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from plait.workflow import Workflow
            def f():
                from plait.plugins import get_registry
            """
        )
    )
    names = {m for m, _, _ in _imports(tree, "plait.x", is_package=False, type_checking=False)}
    assert "plait.plugins" in names and "plait.workflow" not in names


# -- no distribution but the core imports a private core module --------------------------------


def member_sources() -> list[Path]:
    """Every distribution's ``src`` folder except the core's."""
    return sorted(
        src
        for pattern in ("plugins/*/src", "providers/*/src", "examples/plugins/*/src")
        for src in ROOT.glob(pattern)
        if src.is_dir()
    )


def private_core_imports(src: Path) -> list[str]:
    found = []
    for path in sorted(src.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        module = _module_name(path, src)
        for target, name, line in _imports(
            tree, module, is_package=path.name == "__init__.py", type_checking=True
        ):
            parts = target.split(".")
            if parts[0] != PACKAGE:
                continue
            # ``from plait.x import _helper``: a private name is off limits too.
            if any(part.startswith("_") for part in [*parts[1:], *([name] if name else [])]):
                what = f"from {target} import {name}" if name else f"import {target}"
                found.append(f"{path.relative_to(ROOT)}:{line}: {what}")
    return found


def test_no_member_imports_a_private_core_module() -> None:
    sources = member_sources()
    assert len(sources) >= 9, sources  # plugins, providers and the example plugin were all found
    found = [hit for src in sources for hit in private_core_imports(src)]
    assert not found, "private plait modules imported outside the core:\n" + "\n".join(found)


def test_the_core_imports_no_plugin() -> None:
    graph_sources = sorted((CORE / PACKAGE).rglob("*.py"))
    members = {
        path.name
        for src in member_sources()
        for path in src.iterdir()
        if path.is_dir() and (path / "__init__.py").exists()
    }
    assert "plait_otlp" in members
    found = []
    for path in graph_sources:
        tree = ast.parse(path.read_text(), str(path))
        module = _module_name(path, CORE)
        for target, _, line in _imports(
            tree, module, is_package=path.name == "__init__.py", type_checking=True
        ):
            if target.split(".")[0] in members:
                found.append(f"{path.relative_to(ROOT)}:{line}: {target}")
    assert not found, "the core imports a plugin:\n" + "\n".join(found)


def test_low_modules_reach_the_registry_without_importing_it() -> None:
    """plait.models resolves a model string through plait._lookup, which loads the registry
    module by name the first time (``import plait`` does not import it)."""
    code = textwrap.dedent(
        """
        import sys
        import plait
        from plait.models import get_model
        assert "plait.plugins" not in sys.modules
        print(type(get_model("test:echo")).__name__, "plait.plugins" in sys.modules)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["EchoModel", "True"]


def test_building_the_registry_and_a_run_import_no_pydantic() -> None:
    """A one-step run without storage needs neither plait.storage nor pydantic."""
    code = textwrap.dedent(
        """
        import sys
        from plait import Step, Workflow
        out = Workflow(name="w", steps=[Step(name="s", executor=lambda step_input: "ok")]).run("x")
        assert out.content == "ok", out
        from plait.plugins import get_registry
        assert get_registry().entries("storage")
        print(sorted(m for m in ("pydantic", "plait.storage", "plait._durable") if m in sys.modules))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout


#: where span attribute names are decided (ATTR and the helpers of plait.tracing)
_SPAN_NAMESPACES = ("gen_ai.", "openinference.", "plait.run.", "plait.step.", "plait.loop.", "plait.team.")


def test_span_attribute_names_live_in_tracing_only() -> None:
    found = []
    for path in sorted((CORE / "plait").rglob("*.py")):
        if path.name == "tracing.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            text = node.value if isinstance(node, ast.Constant) else None
            if isinstance(text, str) and text.startswith(_SPAN_NAMESPACES) and " " not in text:
                found.append(f"{path.relative_to(CORE)}:{node.lineno}: {text!r}")
    assert not found, "span attribute names outside plait/tracing.py (use ATTR):\n" + "\n".join(found)
