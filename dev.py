#!/usr/bin/env python3
"""Development bootstrap, standard library only.

    python3 dev.py demo           # set up .venv with every member, run the main demo
    python3 dev.py test           # set up .venv, run the whole test suite (extra args go to pytest)
    python3 dev.py test --latest  # the suite on the newest allowed versions, in .venv-latest
    python3 dev.py lint           # ruff and mypy
    python3 dev.py bench          # the benchmark against Agno and LangGraph
    python3 dev.py docs           # build the documentation site strictly into site/ (mkdocs.yml)
    python3 dev.py docs --serve   # preview it on http://127.0.0.1:8000, rebuilt as pages change
    python3 dev.py lock           # re-resolve requirements.lock after a dependency changed
    python3 dev.py lock --check   # exit 1 when requirements.lock is out of date (CI runs this)

.venv holds exactly the versions pinned in requirements.lock, which `dev.py lock`
resolves (with uv) from requirements-dev.txt and the members' pyproject.toml files.
The lock records a digest of those inputs: when a member's dependencies change
without re-locking, setup stops and says to run `python3 dev.py lock`. The
distributions themselves keep compatible ranges; only this environment is pinned.
The environment is re-installed only when the lock changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
LATEST_VENV = ROOT / ".venv-latest"
LOCK = ROOT / "requirements.lock"
DEMO = ROOT / "examples" / "research_and_write.py"
#: the resolver `dev.py lock` installs into .venv to write the lock (pip cannot lock)
UV = "uv==0.13.9"
#: the first line of the lock: the digest of the inputs it was resolved from
DIGEST_PREFIX = "# inputs-sha256: "
LOCK_COMMAND = "python3 dev.py lock"


def python(env: Path) -> Path:
    return env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def members(root: Path = ROOT) -> list[Path]:
    """Every distribution's pyproject.toml: core, providers/*, plugins/*, examples/plugins/*."""
    found = [root / "core" / "pyproject.toml", *root.glob("*/*/pyproject.toml")]
    found += root.glob("examples/plugins/*/pyproject.toml")
    return sorted(p for p in found if p.exists())


def inputs_digest(root: Path = ROOT) -> str:
    """A digest of what the lock is resolved from: requirements-dev.txt and, of every member,
    only what changes a resolution (name, Python range, dependencies, extras), so editing a
    description or a URL does not call for a new lock."""
    inputs: dict[str, object] = {"requirements-dev.txt": (root / "requirements-dev.txt").read_text()}
    for path in members(root):
        project = tomllib.loads(path.read_text()).get("project", {})
        inputs[path.relative_to(root).as_posix()] = {
            key: project.get(key)
            for key in ("name", "requires-python", "dependencies", "optional-dependencies")
        }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def lock_problem(root: Path = ROOT) -> str | None:
    """Why requirements.lock cannot be used as it is, or None when it is current."""
    lock = root / LOCK.name
    if not lock.exists():
        return f"{lock.name} is missing; create it with: {LOCK_COMMAND}"
    first = lock.read_text().split("\n", 1)[0]
    recorded = first.removeprefix(DIGEST_PREFIX) if first.startswith(DIGEST_PREFIX) else None
    if recorded != inputs_digest(root):
        return (
            f"{lock.name} is out of date: requirements-dev.txt or a member's dependencies changed "
            f"since it was resolved; re-resolve it with: {LOCK_COMMAND} (and commit the new lock)"
        )
    return None


def check_python() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036  (a user may run this with an older Python)
        sys.exit(f"plait needs Python 3.11 or newer; this is {sys.version.split()[0]}")


def create(env: Path) -> list[str]:
    """Create the virtual environment if needed; returns its pip command."""
    if not python(env).exists():
        print(f"creating virtual environment in {env}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(env)
    return [str(python(env)), "-m", "pip", "install", "--disable-pip-version-check", "-q"]


def setup() -> None:
    """.venv with exactly the locked versions (re-installed only when the lock changed)."""
    check_python()
    problem = lock_problem()
    if problem:
        sys.exit(problem)
    pip = create(VENV)
    stamp = VENV / ".plait-installed"
    wanted = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted:
        return
    print("installing plait and its members from requirements.lock (a minute the first time)", flush=True)
    subprocess.run([*pip, "-r", LOCK.name], check=True, cwd=ROOT)
    stamp.write_text(wanted)


def setup_latest() -> None:
    """.venv-latest with the newest versions the members allow: tomorrow's fresh install, today."""
    check_python()
    pip = create(LATEST_VENV)
    print("installing the newest allowed versions into .venv-latest (not the lock)", flush=True)
    subprocess.run([*pip, "--upgrade", "pip"], check=True, cwd=ROOT)
    subprocess.run(
        [*pip, "--upgrade", "--upgrade-strategy", "eager", "-r", "requirements-dev.txt"], check=True, cwd=ROOT
    )


def lock() -> int:
    """Resolve requirements-dev.txt (and through it every member) to exact versions."""
    check_python()
    pip = create(VENV)
    subprocess.run([*pip, UV], check=True, cwd=ROOT)
    uv = python(VENV).parent / ("uv.exe" if os.name == "nt" else "uv")
    resolved = subprocess.run(
        [
            str(uv),
            "pip",
            "compile",
            "requirements-dev.txt",
            "--universal",
            "--python-version",
            "3.11",
            "--no-header",
            "--quiet",
        ],
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout
    header = (
        f"{DIGEST_PREFIX}{inputs_digest()}\n"
        f"# Exact versions of the development environment, for every platform, Python 3.11+.\n"
        f"# Generated by `{LOCK_COMMAND}` from requirements-dev.txt and the members' pyproject.toml\n"
        f"# files: do not edit by hand. `python3 dev.py demo|test|lint` install exactly this.\n"
    )
    LOCK.write_text(header + resolved)
    print(f"wrote {LOCK.name}: {_count_pins(resolved)} pinned packages")
    # Phoenix (the end-to-end tracing test's backend) lives in .venv-phoenix: a lock of its own.
    sys.path.insert(0, str(ROOT / "tools"))
    import phoenix

    resolved = subprocess.run(
        [str(uv), "pip", "compile", "-", "--python-version", "3.11", "--no-header", "--quiet"],
        input=f"arize-phoenix=={phoenix.PHOENIX_VERSION}\n",
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout
    phoenix.LOCK.write_text(
        f"{phoenix.lock_header()}\n# Generated by `{LOCK_COMMAND}`: do not edit by hand.\n{resolved}"
    )
    print(f"wrote tools/{phoenix.LOCK.name}: {_count_pins(resolved)} pinned packages")
    return 0


def _count_pins(resolved: str) -> int:
    return sum(1 for line in resolved.splitlines() if "==" in line and not line.startswith((" ", "#")))


def run(*args: str, env: Path = VENV, extra_env: dict[str, str] | None = None) -> int:
    return subprocess.call([str(python(env)), *args], cwd=ROOT, env={**os.environ, **(extra_env or {})})


def parallel(args: list[str]) -> list[str]:
    """pytest-xdist's options for the suite: as many worker processes as cores, at most 4
    (its tests wait on subprocesses, servers and leases much of the time). None when the
    arguments choose (``-n 0`` runs in this process, ``-p no:xdist`` without the plugin)."""
    if any(arg.startswith(("-n", "--numprocesses", "--dist")) or "xdist" in arg for arg in args):
        return []
    return ["-n", str(min(os.cpu_count() or 1, 4))]


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("demo", [])
    if command not in {"demo", "test", "lint", "bench", "docs", "setup", "lock"}:
        print(__doc__)
        return 2
    if command == "lock":
        if rest == ["--check"]:
            problem = lock_problem()
            print(problem or f"{LOCK.name} is current")
            return 1 if problem else 0
        return lock()
    if command == "test" and "--latest" in rest:
        setup_latest()
        rest = [arg for arg in rest if arg != "--latest"]
        # PLAIT_UNLOCKED tells the lock test that this environment is not the locked one.
        return run("-m", "pytest", *parallel(rest), *rest, env=LATEST_VENV, extra_env={"PLAIT_UNLOCKED": "1"})
    setup()
    if command == "demo":
        # The demo's runs persist to the embedded SQLite store, like `plait run`.
        os.environ.setdefault("PLAIT_STORAGE", "sqlite:///.plait/plait.db")
        code = run(str(DEMO), *rest)
        if code == 0:
            print(f"\nThe run is stored in .plait/plait.db: {python(VENV).parent / 'plait'} runs list")
        return code
    if command == "test":
        return run("-m", "pytest", *parallel(rest), *rest)
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
    if command == "docs":
        # Material 9.7+ prints a notice about MkDocs 2.0 on every build; the build itself is checked
        os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
        if "--serve" in rest:
            return run("-m", "mkdocs", "serve", *(arg for arg in rest if arg != "--serve"))
        return run("-m", "mkdocs", "build", "--strict", *rest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
