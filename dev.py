#!/usr/bin/env python3
"""Development bootstrap, standard library only.

    python3 dev.py demo      # set up .venv with every member, run the main demo
    python3 dev.py test      # set up .venv, run the whole test suite (extra args go to pytest)
    python3 dev.py lint      # ruff and mypy
    python3 dev.py bench     # the benchmark against Agno and LangGraph

The virtual environment is created in .venv and re-installed only when
requirements-dev.txt or a member's pyproject.toml changed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".plait-installed"
DEMO = ROOT / "examples" / "research_and_write.py"


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for path in [
        ROOT / "requirements-dev.txt",
        ROOT / "core" / "pyproject.toml",
        *sorted(ROOT.glob("*/*/pyproject.toml")),  # providers/*, plugins/*
        *sorted(ROOT.glob("examples/plugins/*/pyproject.toml")),
    ]:
        if path.exists():
            digest.update(str(path.relative_to(ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def setup() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036  (a user may run this with an older Python)
        sys.exit(f"plait needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    fingerprint = _fingerprint()
    if STAMP.exists() and STAMP.read_text() == fingerprint:
        return
    print("installing plait and its members (this takes a minute the first time)", flush=True)
    pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True, cwd=ROOT)
    subprocess.run([*pip, "-r", "requirements-dev.txt"], check=True, cwd=ROOT)
    STAMP.write_text(fingerprint)


def run(*args: str) -> int:
    return subprocess.call([str(PYTHON), *args], cwd=ROOT)


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("demo", [])
    if command not in {"demo", "test", "lint", "bench", "setup"}:
        print(__doc__)
        return 2
    setup()
    if command == "demo":
        # The demo's runs persist to the embedded SQLite store, like `plait run`.
        os.environ.setdefault("PLAIT_STORAGE", "sqlite:///.plait/plait.db")
        code = run(str(DEMO), *rest)
        if code == 0:
            print(f"\nThe run is stored in .plait/plait.db: {BIN / 'plait'} runs list")
        return code
    if command == "test":
        return run("-m", "pytest", *rest)
    if command == "lint":
        # every distribution's package: core/src/plait, providers/*/src/*, plugins/*/src/*, ...
        inits = (p.relative_to(ROOT) for p in ROOT.glob("**/src/*/__init__.py"))
        packages = sorted(str(p.parent) for p in inits if not any(part.startswith(".") for part in p.parts))
        return (
            run("-m", "ruff", "check", ".")
            or run("-m", "ruff", "format", "--check", ".")
            or run("-m", "mypy", *packages)
        )
    if command == "bench":
        return run("bench/run.py", *rest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
