"""What the commands of the ``plait`` CLI share: short run ids, the one-line failure (with the
traceback under ``--traceback``), where runs are stored, and loading ``MODULE:NAME`` targets."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

from plait._defaults import DEFAULT_STORAGE
from plait._io import normalize_status

__all__ = [
    "SHORT_ID",
    "absolute_target",
    "cancelled_line",
    "color",
    "fail",
    "json_or_text",
    "jsonable",
    "load_target",
    "short_id",
    "show_tracebacks",
    "statuses",
    "storage_help",
    "storage_url",
    "stored_workflow",
    "tracebacks_shown",
]

#: how many characters of a run id are printed for people (like git's short hashes)
SHORT_ID = 8
#: where a traceback was asked for (``--traceback``): the handlers show it with their message
_TRACEBACK = False


def show_tracebacks(shown: bool) -> None:
    """Whether failures show their traceback (``--traceback``, set once by :func:`plait.cli.main`)."""
    global _TRACEBACK
    _TRACEBACK = shown


def tracebacks_shown() -> bool:
    """Whether ``--traceback`` was given."""
    return _TRACEBACK


def short_id(run_id: str) -> str:
    """A run id as printed for people: its first :data:`SHORT_ID` characters."""
    return run_id[:SHORT_ID]


def fail(message: str, exc: BaseException | None = None) -> None:
    """An expected failure on stderr, one line per line of ``message``; with ``--traceback``,
    the traceback of ``exc`` first."""
    if exc is not None and _TRACEBACK:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    print(message, file=sys.stderr)


def cancelled_line(run_id: str | None) -> str:
    """What Ctrl-C under a command that runs a workflow prints: the run is stored as cancelled
    ("interrupted (Ctrl-C)"), and continues from its checkpoints with ``plait runs resume``."""
    if run_id is None:
        return "plait: cancelled"
    return f"plait: cancelled; resume with `plait runs resume {short_id(run_id)}`"


def statuses() -> list[str]:
    from plait._io import RunStatus

    return sorted({member.value.lower() for member in RunStatus})


def load_target(spec: str) -> Any:
    """Import ``module:name`` or ``path/to/file.py:name`` and return the object."""
    module_part, sep, attr = spec.rpartition(":")
    if not sep or not module_part or not attr:
        raise SystemExit(f"plait: expected MODULE:NAME or FILE.py:NAME, got {spec!r}")
    if module_part.endswith(".py"):
        path = Path(module_part).resolve()
        if not path.exists():
            raise SystemExit(f"plait: no such file {module_part!r}")
        sys.path.insert(0, str(path.parent))
        loaded = importlib.util.spec_from_file_location(path.stem, path)
        assert loaded is not None and loaded.loader is not None
        module = importlib.util.module_from_spec(loaded)
        sys.modules[path.stem] = module
        loaded.loader.exec_module(module)
    else:
        sys.path.insert(0, str(Path.cwd()))
        try:
            module = importlib.import_module(module_part)
        except ModuleNotFoundError as exc:
            if exc.name is None or not (module_part == exc.name or module_part.startswith(exc.name + ".")):
                raise  # the module is there, and something it imports is not: the user's error
            raise SystemExit(
                f"plait: no module named {exc.name!r} (from {spec!r}); run plait in the directory"
                " that holds it, or give the file: path/to/file.py:NAME"
            ) from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise SystemExit(f"plait: {module_part!r} has no attribute {attr!r}") from None


def storage_url(given: str | None) -> str:
    return given or os.environ.get("PLAIT_STORAGE") or DEFAULT_STORAGE


def storage_help() -> str:
    return "$PLAIT_STORAGE or " + DEFAULT_STORAGE


def absolute_target(spec: str) -> str:
    module_part, _, attr = spec.rpartition(":")
    if module_part.endswith(".py"):
        return f"{Path(module_part).resolve()}:{attr}"
    return spec


def jsonable(value: Any) -> Any:
    from plait._durable import to_json

    return to_json(value, "the run's content")


def json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def stored_workflow(args: argparse.Namespace, record: Any, url: str) -> Any:
    """The workflow of a stored run (``--workflow``, else the one recorded with it), on the run's
    storage; None (said on stderr) when the run recorded none."""
    from plait.workflow import Workflow

    spec = args.workflow or record.target
    if not spec:
        print("plait: this run has no recorded workflow; pass --workflow MODULE:NAME", file=sys.stderr)
        return None
    workflow = load_target(spec)
    if not isinstance(workflow, Workflow):
        raise SystemExit(f"plait: {spec} is {type(workflow).__name__}, expected a Workflow")
    if workflow.storage is None or args.storage:
        workflow.storage = url
    workflow.target = record.target or absolute_target(spec)
    return workflow


def color(status: str) -> str:
    colors = {"COMPLETED": "green", "ok": "green", "PAUSED": "yellow", "skipped": "yellow"}
    return colors.get(normalize_status(status), "red")
