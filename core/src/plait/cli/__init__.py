"""The ``plait`` command line: a client of the public API.

    plait plugins [--json]                      what is installed and what it registered
    plait run MODULE:WORKFLOW "input" [--json] [--strict]  run a workflow, streaming its events
    plait runs list | show ID | resume ID | approve ID | cancel ID   stored runs
    plait runs replay ID [--live]   the run again, every model and tool call answered from its record
    plait runs delete ID [--force] | prune [--older-than 30d] [--status S] [--workflow W] [--dry-run]
    plait sessions list | delete SESSION_ID   stored sessions (state and conversation history)
    plait runs recover MODULE:WORKFLOW   resume, once each, the runs whose process died
    plait worker MODULE:WORKFLOW [...] [--concurrency N] [--poll 1s]   claim and execute queued runs
    plait schedule list MODULE:WORKFLOW [...]   when workers start the runs of scheduled workflows
    plait graph MODULE:WORKFLOW [--format mermaid|json]   a workflow's graph
    plait --version | --traceback COMMAND ...

A RUN_ID may be given by any unique prefix (like git): ``plait runs show 8a27705f``. Runs are
listed with the first 8 characters of their ids; ``--json`` prints the full ones.

Expected failures (a module that is not there, a store that is down, a failed step) are one or
two lines on stderr, exit 1 (2 for a usage error); ``--traceback``, anywhere on the command line,
shows the full traceback. Ctrl-C during ``plait run`` (or ``plait runs resume``, ``approve``,
``replay``, ``fork``) stores the run as cancelled and says how to take it up again (exit 130);
a closed pipe (``plait runs list | head -1``) ends quietly.

Runs are stored in $PLAIT_STORAGE, by default the SQLite file .plait/plait.db.

Plugins add subcommands through the ``register_commands`` hook and options of
``plait run`` through ``register_run_options`` (plait-otlp adds ``--otlp``).

One module per job: :mod:`._run` (``plait run``), :mod:`._runs` (``plait runs``),
:mod:`._show` (what ``runs list`` and ``runs show`` print), :mod:`._travel` (fork, replay,
diff), :mod:`._retention` (``runs delete``, ``runs prune``, ``plait sessions``), :mod:`._plugins` (``plait plugins``), :mod:`._common` (what they share). This module
diff), :mod:`._worker` (``plait worker``, ``plait runs recover``), :mod:`._plugins` (``plait plugins``), :mod:`._common` (what they share). This module
parses the line and turns every failure into one line and an exit code.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from plait._defaults import DEFAULT_STORAGE
from plait._public import report_public_home
from plait.cli._common import load_target, short_id, show_tracebacks, tracebacks_shown
from plait.cli._graph import add_graph_parser
from plait.cli._plugins import add_plugins_parser
from plait.cli._retention import add_sessions_parser
from plait.cli._run import add_run_parser, check_plugin_options
from plait.cli._runs import add_runs_parser
from plait.cli._worker import add_schedule_parser, add_worker_parser

__all__ = ["DEFAULT_STORAGE", "build_parser", "load_target", "main", "short_id"]
report_public_home(__name__, globals(), __all__)  # plait.cli.load_target, not plait.cli._common


def _version() -> str:
    from plait._entry_points import installed_version  # not importlib.metadata: 20 ms less

    found = installed_version("plait")
    return f"plait {found}" if found else "plait (not installed)"  # (a checkout not installed)


class _Version(argparse.Action):
    """``--version``: the installed version, looked up only when asked (start-up stays fast)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        kwargs.pop("nargs", None)
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        print(_version())
        parser.exit()


#: the built-in commands plugins add nothing to (``plait run`` takes their options): a line
#: starting with one is parsed without asking the plugins for their commands and options
_WITHOUT_PLUGINS = frozenset({"runs", "sessions", "graph", "worker", "schedule", "plugins"})


def build_parser(*, plugins: bool = True) -> argparse.ArgumentParser:
    """The ``plait`` parser: the built-in commands, then those plugins add (``register_commands``);
    ``plugins=False``: the built-in commands only, ``plait run`` without the plugins' options."""

    parser = argparse.ArgumentParser(
        prog="plait", description="Deterministic, production-grade LLM workflows."
    )
    parser.add_argument("--version", action=_Version, help="print plait's version and exit")
    parser.add_argument(
        "--traceback",
        action="store_true",
        help="on a failure, show the full traceback (anywhere on the line)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_plugins_parser(sub)
    add_run_parser(sub, plugins=plugins)
    add_runs_parser(sub)
    add_sessions_parser(sub)
    add_graph_parser(sub)
    add_worker_parser(sub)
    add_schedule_parser(sub)
    if not plugins:
        return parser
    from plait.plugins import get_registry

    for name, entry in sorted(get_registry().entries("command").items()):
        configure, handler, help_text = entry.value
        command = sub.add_parser(name, help=f"{help_text} (from {entry.plugin})")
        configure(command)
        command.set_defaults(handler=handler)
    return parser


def main(argv: list[str] | None = None) -> int:
    """``plait``: parse ``argv`` (default: the command line), run the command, return its exit
    code. An unexpected error is one line (the traceback with ``--traceback``)."""
    given = list(sys.argv[1:] if argv is None else argv)
    end = given.index("--") if "--" in given else len(given)
    show_tracebacks("--traceback" in given[:end])  # a global option, accepted anywhere
    given = [a for i, a in enumerate(given) if a != "--traceback" or i >= end]
    try:
        return _main(given)
    except BrokenPipeError:
        # `plait runs list | head -1`: the reader has gone; say nothing more (and let Python's
        # own flush at exit find nothing to write)
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # a stdout without a file descriptor (captured in a test)
            pass
        return 141  # 128 + SIGPIPE, as a shell reports a command a closed pipe ended
    except KeyboardInterrupt:
        print("plait: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if tracebacks_shown():
            raise
        message = " ".join(str(exc).split()) or "(no message)"
        print(f"plait: {type(exc).__name__}: {message}", file=sys.stderr)
        print("plait: run it again with --traceback to see where", file=sys.stderr)
        return 1


def _main(argv: list[str]) -> int:
    if argv == ["--version"]:  # without loading the plugins
        print(_version())
        return 0
    parser = build_parser(plugins=not argv or argv[0] not in _WITHOUT_PLUGINS)
    check_plugin_options(argv)
    args, extra = parser.parse_known_args(argv)
    if (
        getattr(args, "command", None) == "run"
        and args.input is None
        and len(extra) == 1
        and not extra[0].startswith("-")
    ):
        args.input = extra.pop()  # the input after options: plait run wf:x --json '{"a": 1}'
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    result = handler(args)
    return int(result or 0)
