"""``plait runs check MODULE:WORKFLOW``: before a deploy, the stored runs of a workflow that
its new code could not resume (plait._definition), and why."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from plait.cli._common import load_target, short_id

__all__ = ["add_check_parser", "check"]

#: the statuses of runs that may still be resumed (the others ended)
_RESUMABLE = ("RUNNING", "PAUSED", "ERROR", "CANCELLED")


def add_check_parser(runs_sub: Any) -> Any:
    check_parser = runs_sub.add_parser(
        "check",
        help="the unfinished runs of a workflow that this code could not resume (exit 1 if any)",
        description=(
            "Compare each unfinished run of MODULE:WORKFLOW with the workflow's code as it is now: "
            "a run whose completed (or paused) steps were changed, removed or moved since it started "
            "cannot resume without --on-changed. Use before a deploy."
        ),
    )
    check_parser.add_argument("workflow_target", metavar="MODULE:WORKFLOW")
    return check_parser


async def check(args: argparse.Namespace, storage: Any) -> int:
    """Print each unfinished run of the workflow with what keeps it from resuming."""
    from plait._definition import VERSION, changes, fingerprint, steps_ran
    from plait._io import normalize_status
    from plait.workflow import Workflow

    workflow = load_target(args.workflow_target)
    if not isinstance(workflow, Workflow):
        raise SystemExit(f"plait: {args.workflow_target} is {type(workflow).__name__}, expected a Workflow")
    current = fingerprint(workflow)
    report = []
    for status in _RESUMABLE:
        for record in await storage.list_runs(limit=100_000, status=status, workflow_id=workflow.id):
            stored = record.definition
            if stored is None or stored.get("version") != VERSION:
                report.append(
                    {"run_id": record.run_id, "status": normalize_status(record.status), "changes": None}
                )
                continue
            found = []
            if stored != current:
                checkpointed = [c.step_id for c in await storage.load_checkpoints(record.run_id)]
                found = changes(stored, current, await steps_ran(storage, record, checkpointed))
            report.append(
                {
                    "run_id": record.run_id,
                    "status": normalize_status(record.status),
                    "changes": [str(c) for c in found],
                }
            )
    blocked = [entry for entry in report if entry["changes"]]
    if args.json:
        print(json.dumps(report, indent=2))
    elif not report:
        print(f"no unfinished runs of workflow {workflow.name!r}")
    else:
        for entry in report:
            run = f"{short_id(entry['run_id'])}  {entry['status']:<9}"
            if entry["changes"] is None:
                print(f"{run}  not checked: stored by a plait that kept no definition")
            elif entry["changes"]:
                print(f"{run}  cannot resume: {'; '.join(entry['changes'])}")
            else:
                print(f"{run}  can resume")
        if blocked:
            print(
                f"{len(blocked)} of {len(report)} runs cannot resume with this code; resume them with "
                "--on-changed continue|restart_step, or before the deploy",
                file=sys.stderr,
            )
    return 1 if blocked else 0
