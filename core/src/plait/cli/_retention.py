"""Retention from the command line: ``plait runs delete`` and ``plait runs prune`` (added to
``plait runs``), and ``plait sessions list`` / ``plait sessions delete``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from plait.cli._common import short_id, statuses, storage_help, storage_url

__all__ = ["add_retention_parsers", "add_sessions_parser", "retention"]


def add_retention_parsers(runs_sub: Any) -> list[Any]:
    """``plait runs delete`` and ``plait runs prune``; returns them (``--storage``/``--json``
    are added with the other actions')."""
    delete = runs_sub.add_parser("delete", help="delete a run and everything that belongs to it")
    delete.add_argument("run_id")
    delete.add_argument(
        "--force",
        action="store_true",
        help="delete it even while a live process executes it (holds its lease)",
    )
    prune = runs_sub.add_parser(
        "prune", help="delete old finished runs (without --older-than: each workflow's retention=)"
    )
    prune.add_argument(
        "--older-than",
        default=None,
        metavar="AGE",
        help="runs last updated longer ago than this: 30d, 12h, 90m, 45s, 2w "
        "(default: each run's own workflow retention=; runs without one are kept)",
    )
    prune.add_argument(
        "--status",
        default=None,
        help=f"only runs with this status ({', '.join(statuses())}; default: completed, "
        "completed_with_errors, error and cancelled, never a paused or running run)",
    )
    prune.add_argument(
        "--workflow", default=None, metavar="ID", help="only runs of the workflow with this id"
    )
    prune.add_argument("--dry-run", action="store_true", help="list the runs it would delete, delete nothing")
    return [delete, prune]


def add_sessions_parser(sub: Any) -> None:
    """``plait sessions list`` and ``plait sessions delete SESSION_ID``."""
    parser = sub.add_parser("sessions", help="stored sessions: list, delete")
    actions = parser.add_subparsers(dest="sessions_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="the most recently updated sessions")
    listing.add_argument("--limit", type=int, default=20)
    listing.add_argument("--workflow", default=None, metavar="ID", help="only sessions of this workflow id")
    delete = actions.add_parser("delete", help="delete a session's state and conversation history")
    delete.add_argument("session_id")
    for command in (listing, delete):
        command.add_argument("--storage", default=None, help=f"the store (default: {storage_help()})")
        command.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=sessions)


async def retention(
    args: argparse.Namespace, storage: Any, find_run: Callable[[Any, str, str], Awaitable[Any]], url: str
) -> int:
    """``plait runs delete`` / ``plait runs prune`` on an open ``storage``."""
    from plait.storage import RunClaimedError

    if args.runs_command == "prune":
        return await _prune(args, storage)
    found = await find_run(storage, args.run_id, url)
    if isinstance(found, int):
        return found
    try:
        deleted = await storage.delete_run(found.run_id, force=args.force)
    except RunClaimedError as exc:
        print(f"plait: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"run_id": found.run_id, "deleted": deleted}))
    elif deleted:
        print(f"deleted run {short_id(found.run_id)} ({found.workflow_name}, {found.status})")
    else:
        print(f"plait: run {short_id(found.run_id)} was deleted meanwhile", file=sys.stderr)
    return 0


async def _prune(args: argparse.Namespace, storage: Any) -> int:
    from plait._io import RunStatus
    from plait.errors import DefinitionError
    from plait.storage import parse_duration
    from plait.storage._retention import prunable

    status = None
    if args.status is not None:
        try:
            status = RunStatus(args.status.upper()).value
        except ValueError:
            print(
                f"plait: no status {args.status!r}; the statuses are: {', '.join(statuses())}",
                file=sys.stderr,
            )
            return 2
    if args.older_than is not None:
        try:
            parse_duration(args.older_than, "--older-than")
        except DefinitionError as exc:
            print(f"plait: {exc}", file=sys.stderr)
            return 2
    filters = {"status": status, "workflow_id": args.workflow}
    if args.dry_run:
        runs = await prunable(storage, args.older_than, **filters)
        if args.json:
            print(json.dumps({"would_delete": [r.run_id for r in runs]}))
            return 0
        print(f"would delete {len(runs)} run{'' if len(runs) == 1 else 's'}")
        for run in runs:
            print(
                f"  {short_id(run.run_id)}  {run.workflow_name}  {run.status}  updated {_when(run.updated_at)}"
            )
        return 0
    deleted = await storage.prune(args.older_than, **filters)
    if args.json:
        print(json.dumps({"deleted": deleted}))
    else:
        rule = f"older than {args.older_than}" if args.older_than else "past their workflow's retention"
        print(f"deleted {deleted} run{'' if deleted == 1 else 's'} ({rule})")
    return 0


def sessions(args: argparse.Namespace) -> int:
    from plait._sync import run_sync
    from plait.errors import PlaitError

    try:
        return run_sync(_sessions(args))
    except PlaitError as exc:
        print("plait: " + " ".join(str(exc).split()), file=sys.stderr)
        return 1


async def _sessions(args: argparse.Namespace) -> int:
    from plait.storage import redact_url, resolve_storage

    url = storage_url(args.storage)
    storage = resolve_storage(url)
    assert storage is not None
    await storage.setup()
    try:
        if args.sessions_command == "list":
            found = await storage.list_sessions(limit=args.limit, workflow_id=args.workflow)
            if args.json:
                print(json.dumps([s.model_dump(mode="json") for s in found], indent=2))
            elif not found:
                print(f"no sessions in {redact_url(url)}")
            for session in [] if args.json else found:
                workflow = session.workflow_id or "(conversation only)"
                print(
                    f"{session.session_id}  {workflow}  updated {_when(session.updated_at)}  {len(session.state)} keys"
                )
            return 0
        deleted = await storage.delete_session(args.session_id)
        if args.json:
            print(json.dumps({"session_id": args.session_id, "deleted": deleted}))
        elif deleted:
            print(
                f"deleted session {args.session_id} (its state and conversation history; its runs are kept)"
            )
        else:
            print(f"plait: no session {args.session_id!r} in {redact_url(url)}", file=sys.stderr)
        return 0 if deleted else 1
    finally:
        await storage.close()


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))
