"""Starting ``plait worker`` processes on tests/workers/app.py and reading what they did."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

APP = Path(__file__).with_name("app.py")


def environment(name: str, url: str, log: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PLAIT_TEST_WORKFLOW": name, "PLAIT_STORAGE": url, "PLAIT_TEST_LOG": str(log)}
    env.update(extra)
    return env


def workflow(name: str, url: str, log: Path, **extra: str) -> Any:
    """The app's workflow in this process, under the test's name and storage."""
    import importlib.util

    saved = dict(os.environ)
    os.environ.update(environment(name, url, log, **extra))  # what the app reads when it loads
    try:
        spec = importlib.util.spec_from_file_location(f"worker_app_{name.replace('-', '_')}", APP)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:  # the rest of the suite must not inherit this test's storage
        os.environ.clear()
        os.environ.update(saved)
    return module.workflow


def start_worker(env: dict[str, str], *options: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "plait",
            "worker",
            f"{APP}:workflow",
            "--storage",
            env["PLAIT_STORAGE"],
            *options,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def lines(log: Path) -> list[list[str]]:
    return [line.split() for line in log.read_text().splitlines()] if log.exists() else []


def executions(log: Path, step: str) -> Counter[str]:
    """How many times each run executed ``step``."""
    return Counter(parts[1] for parts in lines(log) if parts[0] == step)


def wait_for(condition: Any, what: str, timeout: float = 60.0, procs: tuple[Any, ...] = ()) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for proc in procs:
            if proc.poll() is not None:
                raise AssertionError(f"a worker exited early: {proc.communicate()}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def stop(proc: subprocess.Popen[str], timeout: float = 60.0) -> tuple[str, str]:
    if proc.poll() is None:
        proc.terminate()
    out, err = proc.communicate(timeout=timeout)
    return out, err
