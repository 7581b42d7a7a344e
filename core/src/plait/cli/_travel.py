"""Time travel on stored runs: ``plait runs fork`` (a new run changed at a step),
``plait runs replay`` (the run again, answered from its record) and ``plait runs diff``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from plait.cli._common import json_or_text, jsonable, short_id, stored_workflow

__all__ = ["add_fork_and_diff_parsers", "add_replay_parser", "diff", "fork", "replay"]


def add_replay_parser(runs_sub: Any) -> argparse.ArgumentParser:
    replay: argparse.ArgumentParser = runs_sub.add_parser(
        "replay",
        help="run a stored run again under the current code, answering its model and tool calls from its record",
    )
    replay.add_argument("run_id")
    replay.add_argument(
        "--live", action="store_true", help="send calls the record does not have to the model (default: stop)"
    )
    return replay


async def replay(args: argparse.Namespace, record: Any, url: str) -> int:
    """``plait runs replay RUN_ID``: a new run (lineage replay_of) with zero live calls."""
    from plait.errors import PlaitError, ReplayDivergenceError

    workflow = stored_workflow(args, record, url)
    if workflow is None:
        return 2
    try:
        output = await workflow.areplay(record.run_id, live=args.live)
    except ReplayDivergenceError as exc:
        print(f"plait: the replay diverged at step {exc.step_id!r}:\n{exc}", file=sys.stderr)
        return 1
    except (PlaitError, ValueError) as exc:
        print(f"plait: {exc}", file=sys.stderr)
        return 1
    finally:
        await workflow.aclose()
    differences = output.replay_differences or []
    if args.json:
        data = {
            "run_id": output.run_id,
            "replay_of": record.run_id,
            "status": str(output.status),
            "content": jsonable(output.content),
            "differences": jsonable(differences),
        }
        print(json.dumps(data))
        return 0
    print(f"replay of {short_id(record.run_id)}: run {short_id(output.run_id)}, {output.status}")
    print(f"content: {output.content}")
    if not differences:
        print("every step's output is the same as the original's")
    for difference in differences:
        print(f"differs at {difference['step_id']}: {difference['original']!r} -> {difference['replay']!r}")
    return 0


def add_fork_and_diff_parsers(runs_sub: Any) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """``plait runs fork`` and ``plait runs diff``."""
    fork = runs_sub.add_parser("fork", help="a new run from a stored one, changed at a step, live from there")
    fork.add_argument("run_id")
    fork.add_argument("--at", required=True, help="the step id to fork at (see `plait runs show RUN_ID`)")
    fork.add_argument("--state", default=None, help="session-state changes at the fork step, a JSON object")
    given = fork.add_mutually_exclusive_group()
    given.add_argument("--input", default=None, help="the fork step's new input (JSON, else text)")
    given.add_argument(
        "--output", default=None, help="the fork step's output instead of running it (JSON, else text)"
    )
    fork.add_argument("--replay", action="store_true", help="answer calls that still match from the record")
    diff = runs_sub.add_parser("diff", help="two stored runs step by step, and where they first diverge")
    diff.add_argument("run_a")
    diff.add_argument("run_b")
    diff.add_argument("--width", type=int, default=80, help="wrap the text at this many columns (default 80)")
    return fork, diff


async def fork(args: argparse.Namespace, record: Any, url: str) -> int:
    from plait._fork import UNSET
    from plait.errors import PlaitError

    state = None
    if args.state is not None:
        try:
            state = json.loads(args.state)
        except json.JSONDecodeError as exc:
            print(
                f'plait: --state must be a JSON object, like \'{{"tone": "formal"}}\' ({exc})',
                file=sys.stderr,
            )
            return 2
        if not isinstance(state, dict):
            print(f"plait: --state must be a JSON object, got {args.state}", file=sys.stderr)
            return 2
    workflow = stored_workflow(args, record, url)
    if workflow is None:
        return 2
    try:
        output = await workflow.afork(
            record.run_id,
            at=args.at,
            state=state,
            input=UNSET if args.input is None else json_or_text(args.input),
            output=UNSET if args.output is None else json_or_text(args.output),
            replay=args.replay,
        )
    except (PlaitError, ValueError) as exc:
        print(f"plait: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(
            json.dumps(
                {
                    "run_id": output.run_id,
                    "status": str(output.status),
                    "lineage": output.lineage,
                    "content": jsonable(output.content),
                }
            )
        )
    else:
        from rich.console import Console

        from plait.console import print_summary

        print(f"fork {short_id(output.run_id)} of run {short_id(record.run_id)} at {args.at}")
        print_summary(Console(), workflow, output, markdown=False)
    return 0


async def diff(args: argparse.Namespace, storage: Any) -> int:
    from plait._diff import adiff_runs
    from plait.errors import DefinitionError

    try:
        result = await adiff_runs(args.run_a, args.run_b, storage=storage)
    except DefinitionError as exc:
        print(f"plait: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        print(result.format(width=args.width))
    return 0
