"""``plait run MODULE:NAME "input"``: run a workflow, agent or team, streaming its events to
the console (or as JSON lines), with the plugins' ``plait run`` options. Ctrl-C stores the run
as cancelled and says how to resume it; a failed step is one line saying what to do."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from plait.cli._common import (
    absolute_target,
    cancelled_line,
    fail,
    load_target,
    short_id,
    storage_help,
    storage_url,
    tracebacks_shown,
)

__all__ = ["add_run_parser", "check_plugin_options", "run"]


def add_run_parser(sub: Any, *, plugins: bool = True) -> None:
    """``plait run`` and its options, the plugins' among them (``register_run_options``) unless
    ``plugins=False``."""

    run_parser = sub.add_parser("run", help="run a workflow (or agent) and stream its events to the console")
    run_parser.add_argument("target", help="MODULE:NAME or path/to/file.py:NAME of a Workflow, Agent or Team")
    run_parser.add_argument("input", nargs="?", default=None, help="the run's input")
    run_parser.add_argument("--session-id", default=None, help="continue this session")
    run_parser.add_argument("--user-id", default=None, help="the user the run is for (a workflow's run only)")
    run_parser.add_argument("--json", action="store_true", help="print events as JSON lines instead")
    run_parser.add_argument("--markdown", action="store_true", help="render the final content as Markdown")
    run_parser.add_argument("--tree", action="store_true", help="show the run as a live tree of its steps")
    run_parser.add_argument(
        "--strict", action="store_true", help="exit 1 when the run completed with errors (for CI)"
    )
    run_parser.add_argument(
        "--storage", default=None, help=f"where to store the run (default: {storage_help()})"
    )
    run_parser.set_defaults(handler=run)
    if not plugins:
        return
    from plait.plugins import get_registry

    for _, entry in sorted(get_registry().entries("run_option").items()):
        configure_option, _apply = entry.value
        configure_option(run_parser)


def check_plugin_options(argv: list[str]) -> None:
    """A plugin's ``plait run`` option given while the plugin is not installed: say what to install."""
    if not argv or argv[0] != "run":
        return
    from plait.plugins import KNOWN_DISTRIBUTIONS, get_registry

    registered = get_registry().entries("run_option")
    for given in argv[1:]:
        if given == "--":
            return
        name = given.partition("=")[0].removeprefix("--")
        distribution = KNOWN_DISTRIBUTIONS.get(("run_option", name))
        if given.startswith("--") and distribution is not None and name not in registered:
            raise SystemExit(
                f"plait: --{name} comes from the {distribution} plugin: pip install {distribution}"
            )


def run(args: argparse.Namespace) -> int:
    from plait.errors import PlaitError, StepError
    from plait.plugins import get_registry

    for _, entry in sorted(get_registry().entries("run_option").items()):
        _configure, apply_option = entry.value
        apply_option(args)
    target = load_target(args.target)
    if not hasattr(target, "run"):
        raise SystemExit(
            f"plait: {args.target} is {type(target).__name__}, expected a Workflow, Agent or Team"
        )
    options: dict[str, Any] = {"session_id": args.session_id} if args.session_id else {}
    from plait.workflow import Workflow

    if args.user_id is not None:
        if not isinstance(target, Workflow):
            raise SystemExit(
                f"plait: --user-id is for a Workflow's run; {args.target} is {type(target).__name__}"
            )
        options["user_id"] = args.user_id
    run_id = None
    if isinstance(target, Workflow):
        if args.storage or target.storage is None:
            target.storage = storage_url(args.storage)
        target.target = absolute_target(args.target)
        from plait._ids import new_id

        run_id = options["run_id"] = new_id()  # known before the run: Ctrl-C says how to resume it
    output: Any = None
    try:
        if args.json:
            for event in target.run(args.input, stream=True, stream_events=True, **options):
                print(event.to_json(), flush=True)
            if args.strict:
                output = target.get_last_run_output()
        else:
            from plait.console import print_run, print_summary

            if args.tree and isinstance(target, Workflow):
                from rich.console import Console

                from plait.sinks import TreeSink, flush_sinks

                output = target.run(args.input, sinks=[TreeSink()], **options)
                flush_sinks()
                print_summary(Console(), target, output, args.markdown)
            else:
                output = print_run(target, args.input, stream=True, markdown=args.markdown, options=options)
    except KeyboardInterrupt:
        print(cancelled_line(run_id), file=sys.stderr)
        return 130
    except PlaitError as exc:
        message = " ".join(str(exc).split())  # a driver's or pydantic's message may wrap
        if not isinstance(exc, StepError):  # the storage, the input, a plugin: what to change
            fail(f"plait: {message}", exc)
            return 1
        where = "" if tracebacks_shown() else "--traceback shows where it failed"
        if run_id is not None and _stored(target, run_id):
            then = f"once fixed, resume with `plait runs resume {short_id(run_id)}`"
            where = f"{then}; {where}" if where else then
        fail(f"plait: run failed: {message}" + (f"\nplait: {where}" if where else ""), exc)
        return 1
    if args.strict and output is not None and str(getattr(output, "status", "")) == "COMPLETED_WITH_ERRORS":
        print("plait: the run completed with errors (--strict)", file=sys.stderr)
        return 1
    return 0


def _stored(target: Any, run_id: str) -> bool:
    """Whether the run ``run_id`` of ``target`` reached its storage (a failed run can be resumed)."""
    from plait._sync import run_sync
    from plait.storage import resolve_storage

    if not isinstance(target.storage, str):
        return True  # a backend object of the user's: not opened a second time here

    async def look() -> bool:
        storage = resolve_storage(target.storage)
        if storage is None:
            return False
        try:
            await storage.setup()
            return await storage.get_run(run_id) is not None
        finally:
            await storage.close()

    try:
        return run_sync(look())
    except Exception:  # the store itself is what failed: no resume hint
        return False
