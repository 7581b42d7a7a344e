"""``plait graph MODULE:WORKFLOW [--format mermaid|json]``: print a workflow's graph.

Mermaid (the default) pastes into a Markdown file GitHub renders; JSON is
:meth:`plait.Workflow.to_graph`, for programs (the served page draws it).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from plait.cli._common import load_target

__all__ = ["add_graph_parser", "graph"]


def add_graph_parser(sub: Any) -> None:
    """``plait graph``'s arguments, and its handler."""
    parser = sub.add_parser("graph", help="print a workflow's graph as a Mermaid flowchart or JSON")
    parser.add_argument("target", help="MODULE:NAME or path/to/file.py:NAME of a Workflow")
    parser.add_argument(
        "--format", choices=("mermaid", "json"), default="mermaid", help="the output (default: mermaid)"
    )
    parser.set_defaults(handler=graph)


def graph(args: argparse.Namespace) -> int:
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
