"""The ``serve`` entry point: registers ``plait serve`` (FastAPI and uvicorn load when it runs)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from plait.hookspecs import hookimpl

__all__ = ["configure", "register_commands", "serve"]


def configure(parser: argparse.ArgumentParser) -> None:
    """``plait serve``'s arguments."""
    parser.add_argument("targets", nargs="+", metavar="MODULE:WORKFLOW", help="the workflows to serve")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    parser.add_argument(
        "--storage", default=None, help="storage URL (default: $PLAIT_STORAGE or sqlite:///.plait/plait.db)"
    )
    parser.add_argument(
        "--token",
        default=None,
        help="bearer token every request must carry (default: $PLAIT_SERVE_TOKEN); required off loopback",
    )
    parser.add_argument(
        "--cors", action="append", default=[], metavar="ORIGIN", help="allow a browser origin (repeatable)"
    )
    parser.add_argument(
        "--body-limit", type=int, default=None, help="largest request body in bytes (default: 1 MiB)"
    )


def serve(args: argparse.Namespace) -> int:
    """Load the workflows ``args.targets`` name and serve them until interrupted."""
    import uvicorn

    from plait.cli import load_target
    from plait.workflow import Workflow
    from plait_serve._app import DEFAULT_BODY_LIMIT, create_app
    from plait_serve._security import is_loopback

    token = args.token or os.environ.get("PLAIT_SERVE_TOKEN") or None
    if not is_loopback(args.host) and not token:
        raise SystemExit(
            f"plait serve: binding to {args.host!r} exposes the server beyond this machine; "
            "give a bearer token with --token or $PLAIT_SERVE_TOKEN (or bind to 127.0.0.1)"
        )
    workflows = []
    for spec in args.targets:
        target = load_target(spec)
        if not isinstance(target, Workflow):
            raise SystemExit(f"plait serve: {spec!r} is a {type(target).__name__}, expected a Workflow")
        workflows.append(target)
    app = create_app(
        workflows,
        storage=args.storage,
        token=token,
        cors_origins=args.cors,
        body_limit=args.body_limit or DEFAULT_BODY_LIMIT,
    )
    print(
        f"plait serve: {', '.join(w.name for w in workflows)} on http://{args.host}:{args.port}/", flush=True
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


@hookimpl
def register_commands(register: Any) -> None:
    register("serve", configure, serve, "serve workflows over HTTP: runs, events (SSE), approvals")
