"""Arize Phoenix for the end-to-end tracing test, kept out of the project venv.

Phoenix has heavy dependencies that conflict with the project's, so it lives in
a virtual environment of its own, ``.venv-phoenix`` at the repository root::

    python3 tools/phoenix.py install      # create .venv-phoenix, install tools/phoenix.lock
    python3 tools/phoenix.py check        # exit 0 when it is installed

The test fixture (``tests/observability/test_phoenix.py``) uses :func:`start`,
:func:`wait_healthy` and :func:`stop`.

Phoenix's HTTP server binds ``PHOENIX_HOST`` (127.0.0.1 here), but its OTLP
gRPC receiver always binds ``[::]`` (every interface) and cannot be switched
off (``PHOENIX_GRPC_PORT=0`` only picks a random port). So :func:`start`
refuses to run outside a loopback-only network namespace, where ``[::]`` means
loopback: :func:`netns_command` wraps a command in ``unshare --net`` with
``lo`` up, and whoever talks to Phoenix (the test process) runs inside it too.

Standard library only: this file runs before anything else is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "PHOENIX_VERSION",
    "VENV",
    "PhoenixProcess",
    "free_port",
    "install",
    "installed",
    "loopback_only",
    "netns_available",
    "netns_command",
    "python",
    "start",
    "stop",
    "wait_healthy",
]

#: The Phoenix release the tests are written against.
PHOENIX_VERSION = "20.26.1"
ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-phoenix"
#: Phoenix and its dependencies at exact versions, written by `python3 dev.py lock`
LOCK = Path(__file__).resolve().parent / "phoenix.lock"
HOST = "127.0.0.1"


def python(venv: Path = VENV) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def installed(venv: Path = VENV, version: str = PHOENIX_VERSION) -> bool:
    """True when ``venv`` holds ``arize-phoenix==version``."""
    if not python(venv).exists():
        return False
    probe = [str(python(venv)), "-c", "import importlib.metadata as m; print(m.version('arize-phoenix'))"]
    result = subprocess.run(probe, capture_output=True, text=True, timeout=60)
    return result.returncode == 0 and result.stdout.strip() == version


def lock_header(version: str = PHOENIX_VERSION) -> str:
    """The first line of tools/phoenix.lock: what it was resolved for."""
    return f"# arize-phoenix=={version}"


def install(venv: Path = VENV, version: str = PHOENIX_VERSION) -> None:
    """Create ``venv`` (if needed) and install the locked Phoenix (tools/phoenix.lock) into it."""
    if not LOCK.exists() or LOCK.read_text().split("\n", 1)[0] != lock_header(version):
        sys.exit(
            f"{LOCK} is missing or not for arize-phoenix=={version}; re-resolve it with: python3 dev.py lock"
        )
    if not python(venv).exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python(venv)), "-m", "pip", "install", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(LOCK)], check=True)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def loopback_only() -> bool:
    """True when this process's network namespace has no interface but ``lo``."""
    # /proc/self/net follows the reader's namespace (/sys/class/net follows sysfs's mount).
    try:
        lines = Path("/proc/self/net/dev").read_text().splitlines()[2:]
    except OSError:
        return False
    return {line.split(":", 1)[0].strip() for line in lines} == {"lo"}


def netns_command(argv: list[str]) -> list[str]:
    """``argv`` run in a new network namespace holding only ``lo``, brought up."""
    user = [] if os.geteuid() == 0 else ["--map-root-user"]
    return ["unshare", "--net", *user, "sh", "-c", 'ip link set lo up && exec "$@"', "netns", *argv]


def netns_available() -> str | None:
    """None when :func:`netns_command` works here, else why not."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare (util-linux) and ip (iproute2) are needed to isolate Phoenix's network"
    probe = subprocess.run(netns_command(["true"]), capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        return f"cannot create a network namespace: {probe.stderr.strip() or probe.returncode}"
    return None


@dataclass
class PhoenixProcess:
    """A running Phoenix server: its process, URL and temporary working directory."""

    process: subprocess.Popen[bytes]
    port: int
    working_dir: Path
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def otlp_traces_endpoint(self) -> str:
        return f"{self.url}/v1/traces"

    def stop(self) -> None:
        """:func:`stop` this server by its PID, then let ``process`` see the exit."""
        stop(self.pid)
        self.process.wait(5)  # already reaped: Popen settles its returncode

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def start(venv: Path = VENV, *, port: int | None = None, working_dir: Path | None = None) -> PhoenixProcess:
    """Start ``phoenix serve`` on 127.0.0.1 with a fresh SQLite working directory.

    Only inside a loopback-only network namespace (see the module docstring).
    Returns at once; call :func:`wait_healthy` before sending anything.
    """
    if not loopback_only():
        raise RuntimeError(
            "Phoenix's gRPC receiver binds every interface: start it inside a loopback-only "
            "network namespace (tools/phoenix.py netns_command)"
        )
    port = port or free_port()
    working_dir = working_dir or Path(tempfile.mkdtemp(prefix="plait-phoenix-"))
    working_dir.mkdir(parents=True, exist_ok=True)
    env = {
        key: value
        for key, value in os.environ.items()
        # The child is Phoenix, not plait: none of the caller's telemetry settings apply to it.
        if not key.startswith(("OTEL_", "PHOENIX_", "PLAIT_"))
    }
    env.update(
        PHOENIX_HOST=HOST,
        PHOENIX_PORT=str(port),
        PHOENIX_GRPC_PORT=str(free_port()),  # [::] inside the namespace: loopback only
        PHOENIX_WORKING_DIR=str(working_dir),
        PHOENIX_TELEMETRY_ENABLED="false",
        PHOENIX_ENABLE_PROMETHEUS="false",
        PYTHONUNBUFFERED="1",
    )
    log_path = working_dir / "phoenix.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(python(venv)), "-m", "phoenix.server.main", "serve"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=working_dir,
            start_new_session=True,  # its own process group, so stop() reaches its children too
        )
    return PhoenixProcess(process, port, working_dir, log_path)


def wait_healthy(phoenix: PhoenixProcess, timeout: float = 90.0) -> None:
    """Wait until Phoenix answers ``GET /healthz``; raise with its log if it died or timed out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if phoenix.process.poll() is not None:
            raise RuntimeError(
                f"Phoenix exited with status {phoenix.process.returncode} before it was healthy:\n{phoenix.log()}"
            )
        try:
            with urllib.request.urlopen(f"{phoenix.url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    raise TimeoutError(f"Phoenix was not healthy on {phoenix.url} after {timeout:g}s:\n{phoenix.log()}")


def stop(pid: int, timeout: float = 15.0) -> None:
    """Stop the Phoenix started as ``pid`` (and its process group): SIGTERM, then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            finished, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # not our child, or already reaped
            finished = pid if not _alive(pid) else 0
        if finished:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/phoenix.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("install", help=f"create {VENV.name} and install arize-phoenix=={PHOENIX_VERSION}")
    commands.add_parser("check", help=f"exit 0 when Phoenix is installed in {VENV.name}")
    args = parser.parse_args(argv)
    if args.command == "install":
        install()
        return 0
    return 0 if installed() else 1


if __name__ == "__main__":
    sys.exit(main())
