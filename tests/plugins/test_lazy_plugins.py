"""Plugins are imported when one of their hooks is needed, found without importing them.

The registry reads each entry point's module source for the ``@hookimpl`` functions
(:mod:`plait._entry_points`); where the source does not say for certain, the plugin is
imported whenever any hook may be needed, so a plugin is never missed, only imported early.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from importlib.machinery import PathFinder
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from plait._entry_points import EntryPoint, implemented_hooks, installed_version, scan
from plait.plugins import ENTRY_POINT_GROUP, Registry, build_registry
from tests.plugins.conftest import make_distribution

HOOKS = frozenset({"register_models", "register_storage", "on_startup", "on_step_end"})


def test_the_scan_finds_what_importlib_metadata_finds() -> None:
    expected = [
        (ep.name, ep.value, ep.dist.name if ep.dist else None, ep.dist.version if ep.dist else None)
        for ep in entry_points(group=ENTRY_POINT_GROUP)
    ]
    assert expected, "the development environment has the repository's plugins installed"
    assert [(ep.name, ep.value, *ep.distribution) for ep in scan(ENTRY_POINT_GROUP)] == expected
    from importlib.metadata import version

    assert installed_version("plait") == version("plait")
    assert installed_version("no-such-distribution-here") is None


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from plait import hookimpl\n@hookimpl\ndef register_models(register): ...\n", {"register_models"}),
        ("import plait\n@plait.hookimpl(tryfirst=True)\ndef on_startup(registry): ...\n", {"on_startup"}),
        ("def on_startup(registry): ...\n", set()),  # not marked: pluggy does not take it
        ("from elsewhere import on_step_end\n", None),  # bound by an import: cannot tell
        ("from plait import hookimpl as impl\n@impl\ndef on_startup(registry): ...\n", None),
        ("on_startup = make_hook()\n", None),
        ("from elsewhere import *\n", None),
        ("def __getattr__(name): ...\n", None),
        ("if True:\n    def on_startup(registry): ...\n", None),
        ("def broken(:\n", None),  # not Python: imported whenever a hook may be needed
    ],
)
def test_which_hooks_a_module_implements_read_from_its_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, expected: set[str] | None
) -> None:
    (tmp_path / "hooks_probe.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    found = implemented_hooks(EntryPoint("probe", "hooks_probe"), HOOKS)
    assert found == (None if expected is None else frozenset(expected))
    assert "hooks_probe" not in sys.modules  # read, not imported
    assert implemented_hooks(EntryPoint("probe", "hooks_probe:plugin"), HOOKS) is None  # an object
    assert implemented_hooks(EntryPoint("probe", "no_such_module_anywhere"), HOOKS) is None


OBSERVER = """
from plait import hookimpl
from observer_impl import on_step_end  # a hook the source does not show: imported for a run
"""
OBSERVER_IMPL = """
from plait import hookimpl

@hookimpl
def on_step_end(step_id, run_id, output):
    print("observed", step_id, flush=True)
"""
MODELS = """
from plait import hookimpl

@hookimpl
def register_models(register):
    register("lazy", lambda name, **options: None)
"""


def test_a_run_imports_the_observers_and_a_lookup_the_registrars(tmp_path: Path) -> None:
    make_distribution(
        tmp_path,
        "plait-lazy",
        {"observer": "observer_plugin", "lazymodels": "models_plugin"},
        {"observer_plugin": OBSERVER, "observer_impl": OBSERVER_IMPL, "models_plugin": MODELS},
    )
    code = (
        "import sys, json\nfrom plait import Step, Workflow\n"
        "Workflow(name='w', steps=[Step(name='s', executor=lambda si: 1)]).run(0)\n"
        "mine = lambda: sorted(m for m in ('observer_plugin', 'models_plugin') if m in sys.modules)\n"
        "after_run = mine()\n"
        "from plait._lookup import registry\n"
        "print(json.dumps([after_run, registry().get('model', 'lazy') is not None, mine()]))"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp_path),
        "PLAIT_LOAD_PLUGINS": "observer,lazymodels",
        "PLAIT_STRICT_PLUGINS": "1",  # hooks called inline, not from a thread of their own
    }
    env.pop("PLAIT_DISABLE_PLUGINS", None)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    observed, last = result.stdout.strip().splitlines()
    assert observed == "observed s"  # the observer was imported before the run, and called
    assert json.loads(last) == [["observer_plugin"], True, ["models_plugin", "observer_plugin"]]


def _look(registry: Registry, barrier: threading.Barrier, found: list[object]) -> None:
    barrier.wait()
    found.append(registry.get("model", "openai"))


def test_threads_looking_up_at_once_all_find_what_a_lazy_plugin_registers() -> None:
    """One thread imports the plugins of a kind; the others wait for it rather than miss."""
    for _ in range(5):
        registry = build_registry()
        barrier = threading.Barrier(4)
        found: list[object] = []
        threads = [threading.Thread(target=_look, args=(registry, barrier, found)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert len(found) == 4 and all(callable(f) for f in found)


def test_a_plugin_clashing_with_a_built_in_step_type_is_the_one_reported() -> None:
    """The built-in step types are registered when first needed, yet before any plugin's: a
    plugin registering ``Step`` is left out with the reason, and the built-in Step stays."""
    from plait import Step, hookimpl

    class Clash:
        @hookimpl
        def register_step_types(self, register: object) -> None:
            register(Step)  # type: ignore[operator]

    registry = build_registry({"clash": Clash()}, entry_points=False, strict=False)
    assert [e.name for e in registry.errors] == ["clash"]
    assert "registered by both 'plait.builtins' and 'clash'" in registry.errors[0].error
    assert registry.entries("step_type")["Step"].plugin == "plait.builtins"


def test_the_installed_distributions_are_read_once_until_a_directory_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry's scan, the plugin names and the version each ask for the installed
    distributions: one read of sys.path serves them, until a distribution comes or goes."""
    from plait import _entry_points

    def install(name: str) -> None:
        info = tmp_path / f"{name}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Name: {name}\nVersion: 1.0\n\n")
        (info / "entry_points.txt").write_text(f"[plait.test]\n{name} = {name}.plugin:hooks\n")

    install("first_dist")
    monkeypatch.setattr(sys, "path", [str(tmp_path)])  # only this directory: nothing else changes it
    # and the standard finder only (the importlib_metadata backport, once imported, adds its own:
    # then only importlib.metadata can tell, and the scan leaves it to it)
    standard = [f for f in sys.meta_path if not hasattr(f, "find_distributions") or f is PathFinder]
    monkeypatch.setattr(sys, "meta_path", standard)
    reads: list[int] = []
    read = _entry_points._read_metadata_dirs

    def counting() -> list[str] | None:
        reads.append(1)
        return read()

    monkeypatch.setattr(_entry_points, "_read_metadata_dirs", counting)
    assert [e.name for e in _entry_points.scan("plait.test")] == ["first_dist"]
    assert _entry_points.installed_version("first_dist") == "1.0"
    assert [e.name for e in _entry_points.scan("plait.test")] == ["first_dist"]
    assert len(reads) == 1
    install("second_dist")  # the directory changed: read again
    assert sorted(e.name for e in _entry_points.scan("plait.test")) == ["first_dist", "second_dist"]
    assert len(reads) == 2
