"""``plait runs``: the stored runs (list, show, cancel) and continuing one (resume, approve);
fork, replay and diff are in :mod:`plait.cli._travel`, delete and prune in
:mod:`plait.cli._retention`. A RUN_ID is any unique prefix."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from plait._defaults import BUDGET_LIMITS, DEFAULT_STORAGE
from plait._definition import ON_CHANGED
from plait._io import normalize_status
from plait.cli._check import add_check_parser, check
from plait.cli._common import (
    SHORT_ID,
    cancelled_line,
    jsonable,
    short_id,
    statuses,
    storage_help,
    storage_url,
    stored_workflow,
)
from plait.cli._retention import add_retention_parsers, retention
from plait.cli._show import print_run, print_runs
from plait.cli._travel import add_fork_and_diff_parsers, add_replay_parser, diff, fork, replay
from plait.cli._worker import add_recover_parser

__all__ = ["PREFIX_SCAN", "add_runs_parser", "runs"]


#: how many stored runs a RUN_ID prefix is looked up among (newest first)
PREFIX_SCAN = 100_000


def add_runs_parser(sub: Any) -> None:
    """``plait runs`` and its actions, each with ``--storage`` and ``--json``."""
    runs_parser = sub.add_parser(
        "runs",
        help="stored runs: list, show, resume, approve, cancel, fork, diff, replay, check, delete, prune, "
        "recover",
    )
    runs_sub = runs_parser.add_subparsers(dest="runs_command", metavar="ACTION", required=True)
    listing = runs_sub.add_parser("list", help="the newest runs")
    listing.add_argument("--limit", type=int, default=20)
    listing.add_argument(
        "--status", default=None, help=f"only runs with this status ({', '.join(statuses())})"
    )
    listing.add_argument("--user-id", default=None, help="only runs of this user (run(..., user_id=...))")
    show = runs_sub.add_parser("show", help="a run's step tree with status, durations and tokens")
    show.add_argument("run_id")
    show.add_argument("--step", default=None, help="one step's input, output and state change")
    resume = runs_sub.add_parser("resume", help="continue an interrupted or failed run from its checkpoints")
    resume.add_argument("run_id")
    resume.add_argument(
        "--wait",
        action="store_true",
        help="wait while another process executes the run (until its lease ends)",
    )
    approve = runs_sub.add_parser("approve", help="answer a paused run and continue it")
    approve.add_argument("run_id")
    approve.add_argument("--step", default=None, help="the waiting step's id (default: the only one)")
    answer = approve.add_mutually_exclusive_group()
    answer.add_argument("--reject", action="store_true", help="reject instead of approve")
    answer.add_argument("--answer", default=None, help="the answer: JSON for input steps, a name for choices")
    for limit in BUDGET_LIMITS:  # a run paused by Budget(on_exceeded="pause"): raise its limits
        approve.add_argument(
            "--budget-" + limit.replace("_", "-"),
            dest="budget_" + limit,
            type=float if limit == "max_cost" else int,
            default=None,
            metavar="N",
            help=f"a run paused on a budget: go on with {limit}=N (its other limits kept)",
        )
    cancel = runs_sub.add_parser("cancel", help="cancel a running run (it stops before its next step)")
    cancel.add_argument("run_id")
    fork_parser, diff_parser = add_fork_and_diff_parsers(runs_sub)
    replay_parser = add_replay_parser(runs_sub)
    check_parser = add_check_parser(runs_sub)
    retention_parsers = add_retention_parsers(runs_sub)
    add_recover_parser(runs_sub)  # a handler of its own (plait.cli._worker)
    for command in (resume, approve):
        command.add_argument(
            "--on-changed",
            choices=ON_CHANGED,
            default="refuse",
            help="when steps the run already ran changed in the code since: refuse (default), "
            "continue with their stored results, or restart_step (run them again)",
        )
    for command in (
        listing,
        show,
        resume,
        approve,
        cancel,
        fork_parser,
        diff_parser,
        replay_parser,
        check_parser,
        *retention_parsers,
    ):
        command.add_argument("--storage", default=None, help=f"the run store (default: {storage_help()})")
        command.add_argument("--json", action="store_true", help="print JSON")
    for command in (resume, approve, fork_parser, replay_parser):
        command.add_argument(
            "--workflow", default=None, help="MODULE:NAME of the workflow (default: recorded with the run)"
        )
    runs_parser.set_defaults(handler=runs)


def runs(args: argparse.Namespace) -> int:
    from plait._sync import run_sync
    from plait.errors import PlaitError

    try:
        return run_sync(_runs_async(args))
    except KeyboardInterrupt:
        # Ctrl-C: a run that resume, approve, replay or fork was executing is stored as cancelled
        # ("interrupted (Ctrl-C)"); say how to take it up again
        print(_interrupted(args), file=sys.stderr)
        return 130
    except PlaitError as exc:
        # an unreachable or misconfigured store: one line (naming the redacted URL), no traceback
        print("plait: " + " ".join(str(exc).split()), file=sys.stderr)  # a driver's message may wrap
        return 1


def _interrupted(args: argparse.Namespace) -> str:
    """The line Ctrl-C prints under ``plait runs ACTION``. A replay is run again rather than
    resumed (a resumed replay would call the models live); a fork is too, as the simplest
    line to give (the fork's own id is not known here; resuming it with ``plait runs resume``
    works as well, its change at the fork step being stored with it)."""
    found = getattr(args, "found_run_id", None)
    if found is None or args.runs_command not in ("resume", "approve", "replay", "fork"):
        return "plait: interrupted"
    if args.runs_command == "replay":
        return f"plait: cancelled; the replay stopped: run `plait runs replay {short_id(found)}` again"
    if args.runs_command == "fork":
        return (
            f"plait: cancelled; the fork of {short_id(found)} stopped: run the same `plait runs fork` again"
        )
    return cancelled_line(found)


async def _runs_async(args: argparse.Namespace) -> int:
    from plait.storage import redact_url, resolve_storage

    status = None
    if args.runs_command == "list" and args.status is not None:
        from plait._io import RunStatus

        try:
            status = RunStatus(args.status).value
        except ValueError:
            print(
                f"plait: no status {args.status!r}; the statuses are: {', '.join(statuses())}",
                file=sys.stderr,
            )
            return 2
    url = storage_url(args.storage)
    storage = resolve_storage(url)
    assert storage is not None
    await storage.setup()
    try:
        if args.runs_command == "list":
            # user_id= only when asked: a third-party storage written before it need not take it
            filters = {"user_id": args.user_id} if args.user_id is not None else {}
            records = await storage.list_runs(limit=args.limit, status=status, **filters)
            if args.json:
                print(json.dumps([r.model_dump(mode="json") for r in records], indent=2))
            else:
                await print_runs(records, redact_url(url), storage)
            return 0
        if args.runs_command == "check":
            return await check(args, storage)
        if args.runs_command in ("delete", "prune"):
            return await retention(args, storage, _find_run, url)
        if args.runs_command == "diff":
            found = [await _find_run(storage, given, url) for given in (args.run_a, args.run_b)]
            for found_run in found:
                if isinstance(found_run, int):
                    return found_run
            args.run_a, args.run_b = (r.run_id for r in found)  # type: ignore[union-attr]
            return await diff(args, storage)
        found_run = await _find_run(storage, args.run_id, url)
        if isinstance(found_run, int):
            return found_run
        record = found_run
        args.found_run_id = record.run_id  # for the line Ctrl-C prints (a RUN_ID may be a prefix)
        if args.runs_command == "cancel":
            from plait._runs import request_cancel

            cancelled = await request_cancel(storage, record.run_id)
            if args.json:
                print(json.dumps({"run_id": record.run_id, "cancelled": bool(cancelled)}))
            elif cancelled:
                print(f"cancel requested: run {short_id(record.run_id)} stops before its next step")
            else:
                print(
                    f"plait: run {short_id(record.run_id)} is not running (it is {record.status})",
                    file=sys.stderr,
                )
            return 0 if cancelled else 1
        if args.runs_command == "approve" and normalize_status(record.status) != "PAUSED":
            done = normalize_status(record.status) in ("COMPLETED", "COMPLETED_WITH_ERRORS")
            state = "already completed" if done else f"is {normalize_status(record.status)}, not paused"
            print(f"plait: run {short_id(record.run_id)} {state}: it waits for no answer", file=sys.stderr)
            return 1
        if args.runs_command == "show":
            from plait.storage import read_checkpoints

            checkpoints = await read_checkpoints(storage, record.run_id)
            if args.json:
                data = record.model_dump(mode="json")
                data["steps"] = [c.model_dump(mode="json") for c in checkpoints]
                print(json.dumps(data, indent=2))
            elif args.step:
                from rich.console import Console

                from plait.cli._stored import step_detail

                try:
                    Console().print(step_detail(record, checkpoints, args.step))
                except LookupError as exc:
                    print(f"plait: {exc.args[0]}", file=sys.stderr)
                    return 1
            else:
                print_run(record, checkpoints, await storage.load_events(record.run_id))
            return 0
    finally:
        await storage.close()
    if args.runs_command == "fork":
        return await fork(args, record, url)
    if args.runs_command == "replay":
        return await replay(args, record, url)
    return await _continue(args, record, url)


async def _find_run(storage: Any, given: str, url: str) -> Any:
    """The stored run whose id is ``given`` or starts with it (a unique prefix, like git), else
    the exit code after saying on stderr that there is none, or which runs the prefix fits."""
    from plait.storage import redact_url

    record = await storage.get_run(given)
    if record is not None:
        return record
    candidates = (
        [r for r in await storage.list_runs(limit=PREFIX_SCAN) if r.run_id.startswith(given)] if given else []
    )
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        shown = ", ".join(
            f"{r.run_id[: max(SHORT_ID, len(given) + 4)]} ({r.workflow_name}, {r.status})"
            for r in candidates[:5]
        )
        more = f" and {len(candidates) - 5} more" if len(candidates) > 5 else ""
        print(
            f"plait: {len(candidates)} runs start with {given!r}: {shown}{more}\n"
            "plait: give more characters of the run id",
            file=sys.stderr,
        )
        return 2
    print(
        f"plait: no run {given!r} in {redact_url(url)}"
        " (runs are searched in --storage, else $PLAIT_STORAGE, else " + DEFAULT_STORAGE + ")",
        file=sys.stderr,
    )
    return 1


async def _continue(args: argparse.Namespace, record: Any, url: str) -> int:
    from plait.errors import PlaitError

    workflow = stored_workflow(args, record, url)
    if workflow is None:
        return 2
    options: dict[str, Any] = {"wait": bool(getattr(args, "wait", False)), "on_changed": args.on_changed}
    if args.runs_command == "approve":
        pending = (record.pause or {}).get("pending", [])
        raised = {limit: getattr(args, "budget_" + limit) for limit in BUDGET_LIMITS}
        raised = {limit: value for limit, value in raised.items() if value is not None}
        on_budget = bool(pending) and all(p.get("budget") for p in pending)
        if raised:
            if args.reject or args.answer is not None:
                print("plait: --budget-... raises a paused budget: it goes with approving", file=sys.stderr)
                return 2
            budget = _raised_budget(pending, raised)
            if budget is None:
                print(
                    f"plait: run {short_id(record.run_id)} is not paused on a budget: --budget-... does not apply",
                    file=sys.stderr,
                )
                return 2
            options["budget"] = budget
        step = args.step or (pending[0]["step_id"] if len(pending) == 1 else None)
        if step is None and on_budget and args.answer is None:  # every budget pause at once
            options["approve"] = not args.reject
        elif step is None:
            ids = ", ".join(p["step_id"] for p in pending) or "none"
            print(f"plait: pass --step; the run waits at: {ids}", file=sys.stderr)
            return 2
        elif args.answer is not None:
            try:
                value: Any = json.loads(args.answer)
            except json.JSONDecodeError:
                value = args.answer
        else:
            value = not args.reject
        if step is not None:
            options["answers"] = {step: value}
    try:
        output = await workflow.acontinue_run(record.run_id, **options)
    except (PlaitError, ValueError) as exc:
        print(f"plait: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(
            json.dumps(
                {"run_id": output.run_id, "status": str(output.status), "content": jsonable(output.content)}
            )
        )
    else:
        from rich.console import Console

        from plait.console import approve_command, print_summary

        print_summary(Console(), workflow, output, markdown=False)
        command = approve_command(output.run_id, workflow.storage)
        for request in output.pending or []:
            print(f"waiting at {request.step_id}: {request.prompt}" + (f"  ({command})" if command else ""))
    return 0


def _raised_budget(pending: list[dict[str, Any]], raised: dict[str, float]) -> Any:
    """The budget of the run's first budget pause with ``raised``'s limits; None: no budget pause."""
    from plait import Budget

    for request in pending:
        info = request.get("budget")
        if info:
            return Budget(**{**info["budget"], **raised})
    return None
