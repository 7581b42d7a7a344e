"""The development environment is locked: requirements.lock is current, and it is what is installed."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import dev

ROOT = Path(__file__).resolve().parent.parent


def _copy_inputs(tmp_path: Path) -> Path:
    """The lock's inputs and the lock itself, in a tree of their own."""
    for name in ("requirements-dev.txt", "requirements.lock"):
        shutil.copy(ROOT / name, tmp_path / name)
    for pyproject in dev.members(ROOT):
        target = tmp_path / pyproject.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(pyproject, target)
    return tmp_path


def test_the_committed_lock_is_current() -> None:
    assert dev.lock_problem(ROOT) is None


def test_a_changed_dependency_makes_the_lock_stale_with_a_message_saying_what_to_run(tmp_path: Path) -> None:
    root = _copy_inputs(tmp_path)
    assert dev.lock_problem(root) is None
    pyproject = root / "providers" / "openai" / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('"openai>=1.55.3,<3"', '"openai>=1.55.3,<3", "tenacity"')
    )
    problem = dev.lock_problem(root)
    assert problem is not None
    assert "out of date" in problem and "python3 dev.py lock" in problem


def test_editing_what_does_not_change_a_resolution_keeps_the_lock_current(tmp_path: Path) -> None:
    root = _copy_inputs(tmp_path)
    pyproject = root / "core" / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(re.sub(r'description = ".*"', 'description = "edited"', text, count=1))
    assert dev.lock_problem(root) is None


def test_a_missing_lock_says_how_to_make_one(tmp_path: Path) -> None:
    root = _copy_inputs(tmp_path)
    (root / "requirements.lock").unlink()
    assert "python3 dev.py lock" in (dev.lock_problem(root) or "")


def test_lock_check_command_fails_on_a_stale_lock(tmp_path: Path) -> None:
    root = _copy_inputs(tmp_path)
    shutil.copy(ROOT / "dev.py", root / "dev.py")
    (root / "requirements-dev.txt").write_text((root / "requirements-dev.txt").read_text() + "tenacity\n")
    result = subprocess.run(
        [sys.executable, "dev.py", "lock", "--check"], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "python3 dev.py lock" in result.stdout


@pytest.mark.skipif(
    bool(os.environ.get("PLAIT_UNLOCKED")), reason="dev.py test --latest runs unlocked on purpose"
)
def test_the_environment_holds_exactly_the_locked_versions() -> None:
    pins = re.findall(
        r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;]+)(?:\s*;\s*(.+))?$", (ROOT / "requirements.lock").read_text(), re.M
    )
    assert len(pins) > 50
    wrong = []
    for name, version, marker in pins:
        if marker and not _marker_holds(marker):
            continue
        name = name.split("[", 1)[0]
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            wrong.append(f"{name}: locked {version}, not installed")
            continue
        if installed != version:
            wrong.append(f"{name}: locked {version}, installed {installed}")
    assert not wrong, "the environment is not the lock; run python3 dev.py setup:\n" + "\n".join(wrong)


def _marker_holds(marker: str) -> bool:
    from packaging.markers import Marker

    return Marker(marker).evaluate()


def test_the_phoenix_lock_is_for_the_pinned_phoenix() -> None:
    from tools import phoenix

    assert phoenix.LOCK.read_text().split("\n", 1)[0] == phoenix.lock_header()
    assert f"arize-phoenix=={phoenix.PHOENIX_VERSION}" in phoenix.LOCK.read_text()


def test_every_distribution_carries_the_license() -> None:
    # hatchling puts a member's own LICENSE in its wheel and sdist (dist-info/licenses); the
    # repository's is outside every member, so each keeps a copy, the same text
    licence = (ROOT / "LICENSE").read_text()
    for pyproject in dev.members(ROOT):
        copy = pyproject.parent / "LICENSE"
        assert copy.is_file() and not copy.is_symlink(), f"{copy} is missing (an sdist cannot follow a link)"
        assert copy.read_text() == licence, f"{copy} differs from the repository's LICENSE"
