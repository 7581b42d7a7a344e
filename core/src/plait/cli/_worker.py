"""``plait worker MODULE:WORKFLOW [...]``: claim and execute stored runs until SIGTERM/SIGINT;
``plait runs recover MODULE:WORKFLOW``: resume, once each, the runs whose process died;
``plait schedule list MODULE:WORKFLOW [...]``: when workers start scheduled workflows' runs."""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from plait.cli._common import absolute_target, load_target, short_id, storage_help, storage_url

__all__ = [
    "add_recover_parser",
    "add_schedule_parser",
    "add_worker_parser",
    "duration",
    "recover",
    "schedules",
    "worker",
]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration(text: str) -> float:
    """``1s``, ``500ms``, ``2m``, ``1h`` or a number of seconds."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*", text)
    if found is None or float(found.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"expected a duration such as 1s, 500ms, 2m or 0.5, got {text!r}")
    return float(found.group(1)) * _UNITS[found.group(2) or "s"]


def add_worker_parser(sub: Any) -> None:
    """``plait worker``'s arguments, and its handler."""
    parser = sub.add_parser(
        "worker", help="claim and execute queued runs and runs whose process died, until SIGTERM"
    )
    parser.add_argument("targets", nargs="+", metavar="MODULE:WORKFLOW", help="the workflows to serve")
    parser.add_argument("--storage", default=None, help=f"the run store (default: {storage_help()})")
    parser.add_argument("--concurrency", type=int, default=4, help="runs executed at once (default: 4)")
    parser.add_argument(
        "--poll",
        type=duration,
        default=1.0,
        help="how often to look for runs when there are none (default: 1s)",
    )
    parser.add_argument(
        "--lease-ttl",
        type=duration,
        default=None,
        help="how long a run stays claimed if this worker dies (default: the workflows' lease_ttl, 30s)",
    )
    parser.add_argument(
        "--grace",
        type=duration,
        default=30.0,
        help="on SIGTERM, how long the runs in hand may take to finish before they are given back (default: 30s)",
    )
    parser.add_argument(
        "--prune-every",
        type=duration,
        default=300.0,
        help="how often to delete the finished runs past their workflow's retention= (default: 5m, and at start)",
    )
    parser.add_argument(
        "--max-concurrent-runs",
        type=int,
        default=None,
        metavar="N",
        help="runs of each workflow executed at once across every worker on the storage (default: the workflow's max_concurrent_runs)",
    )
    parser.set_defaults(handler=worker)


def _workflows(targets: list[str], url: str, given: bool) -> list[Any]:
    from plait.workflow import Workflow

    found = []
    for spec in targets:
        workflow = load_target(spec)
        if not isinstance(workflow, Workflow):
            raise SystemExit(f"plait: {spec} is {type(workflow).__name__}, expected a Workflow")
        if workflow.storage is None or given:
            workflow.storage, workflow._storage = url, None
        workflow.target = workflow.target or absolute_target(spec)
        found.append(workflow)
    return found


def worker(args: argparse.Namespace) -> int:
    """Serve the workflows until SIGTERM or SIGINT (a second one gives back the runs in hand at once)."""
    import asyncio
    import signal

    from plait._worker import Worker

    workflows = _workflows(args.targets, storage_url(args.storage), args.storage is not None)
    if args.max_concurrent_runs is not None:
        if args.max_concurrent_runs < 1:
            raise SystemExit(f"plait: --max-concurrent-runs must be >= 1, got {args.max_concurrent_runs}")
        for workflow in workflows:
            workflow.max_concurrent_runs = args.max_concurrent_runs
    served = Worker(
        workflows,
        concurrency=args.concurrency,
        poll=args.poll,
        lease_ttl=args.lease_ttl,
        grace=args.grace,
        prune_every=args.prune_every,
    )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        signals = 0

        def on_signal(number: int) -> None:
            nonlocal signals
            signals += 1
            if signals > 1:
                served.grace = 0.0  # asked twice: give the runs back now
            print(f"plait worker: {signal.Signals(number).name}: stopping", file=sys.stderr, flush=True)
            served.stop()

        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, on_signal, number)
        await served.run()

    asyncio.run(main())
    stats = served.stats
    print(
        f"plait worker: stopped; {len(stats.finished)} run(s) finished, {len(stats.failed)} failed, "
        f"{len(stats.given_back)} given back",
        file=sys.stderr,
    )
    return 0


def add_recover_parser(runs_sub: Any) -> None:
    """``plait runs recover``'s arguments, and its handler."""
    parser = runs_sub.add_parser(
        "recover", help="resume, once each, a workflow's runs whose process died (their lease expired)"
    )
    parser.add_argument("target", metavar="MODULE:WORKFLOW")
    parser.add_argument("--storage", default=None, help=f"the run store (default: {storage_help()})")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=recover)


def recover(args: argparse.Namespace) -> int:
    """Resume the crashed runs of one workflow; exit 1 when one of them failed again."""
    (workflow,) = _workflows([args.target], storage_url(args.storage), args.storage is not None)
    done = workflow.recover()
    if args.json:
        print(json.dumps(done, indent=2))
    elif not done:
        print(f"no run of {workflow.id} to recover")
    for run_id, status in done.items() if not args.json else ():
        print(f"{short_id(run_id)}  {status}")
    return 1 if any(s not in ("COMPLETED", "COMPLETED_WITH_ERRORS", "PAUSED") for s in done.values()) else 0


def add_schedule_parser(sub: Any) -> None:
    """``plait schedule list``'s arguments, and its handler."""
    parser = sub.add_parser(
        "schedule",
        help="the schedules of workflows: when workers start their runs",
        description=(
            'Schedules are declared in code, on the workflow: Workflow(schedule="0 * * * *", '
            'timezone="Europe/Paris", catch_up=False). Every `plait worker` serving that workflow '
            "starts one run per tick, exactly once across all workers. There is no `schedule add`: "
            "a worker can only run workflows it imports, so the schedule lives with the code it runs, "
            "reviewed and deployed with it."
        ),
    )
    actions = parser.add_subparsers(dest="schedule_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="each workflow's schedule, last tick started and next tick")
    listing.add_argument("targets", nargs="+", metavar="MODULE:WORKFLOW")
    listing.add_argument("--storage", default=None, help=f"the run store (default: {storage_help()})")
    listing.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=schedules)


def schedules(args: argparse.Namespace) -> int:
    """Print the schedules of the workflows ``args.targets`` names (ticks in UTC)."""
    from plait._schedule import describe
    from plait._sync import run_sync

    workflows = _workflows(args.targets, storage_url(args.storage), args.storage is not None)

    async def collect() -> list[dict[str, Any]]:
        found = []
        for workflow in workflows:
            if workflow._schedule is None:
                found.append({"workflow": workflow.id, "schedule": None})
                continue
            storage = await workflow._ready_storage()
            found.append(await describe(workflow, storage))
            await workflow.aclose()
        return found

    found = run_sync(collect())
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    for row in found:
        if row["schedule"] is None:
            print(f"{row['workflow']}  (no schedule)")
            continue
        catch_up = "catch up" if row["catch_up"] else "skip missed"
        print(
            f"{row['workflow']}  {row['schedule']}  {row['timezone']}  {catch_up}  "
            f"last {row['last_tick'] or '-'}  next {row['next_tick']}"
        )
    return 0
