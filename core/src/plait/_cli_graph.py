"""``plait graph MODULE:WORKFLOW [--format mermaid|json]``: print a workflow's graph.

Mermaid (the default) pastes into a Markdown file GitHub renders; JSON is
:meth:`plait.Workflow.to_graph`, for programs (the served page draws it).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

__all__ = ["HELP", "configure", "handler"]

HELP = "print a workflow's graph as a Mermaid flowchart or JSON"


def configure(parser: argparse.ArgumentParser, load_target: Callable[[str], Any]) -> None:
    """The command's arguments, and its handler on ``parser``; ``load_target`` is the CLI's
    (``plait.cli.load_target``), given so this module does not import the CLI back."""
    parser.add_argument("target", help="MODULE:NAME or path/to/file.py:NAME of a Workflow")
    parser.add_argument(
        "--format", choices=("mermaid", "json"), default="mermaid", help="the output (default: mermaid)"
    )
    parser.set_defaults(handler=lambda args: handler(args, load_target))


def handler(args: argparse.Namespace, load_target: Callable[[str], Any]) -> int:
    """Print the graph of the workflow ``args.target`` names, in ``args.format``."""
    from plait.workflow import Workflow

    target = load_target(args.target)
    if not isinstance(target, Workflow):
        raise SystemExit(f"plait: {args.target!r} is a {type(target).__name__}, expected a Workflow")
    if args.format == "json":
        print(json.dumps(target.to_graph(), indent=2, ensure_ascii=False))
    else:
        print(target.to_mermaid(), end="")
    return 0
