"""The ``plait`` command line: a client of the public API.

    plait plugins [--json]                      what is installed and what it registered
    plait run MODULE:WORKFLOW "input" [--json]  run a workflow, streaming its events

Plugins add subcommands through the ``register_commands`` hook.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "load_target", "main"]


def build_parser() -> argparse.ArgumentParser:
    from plait.plugins import get_registry

    parser = argparse.ArgumentParser(
        prog="plait", description="Deterministic, production-grade LLM workflows."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    plugins = sub.add_parser("plugins", help="list installed plugins, what they registered, and load errors")
    plugins.add_argument("--json", action="store_true", help="print JSON instead of a table")
    plugins.set_defaults(handler=_plugins)

    run = sub.add_parser("run", help="run a workflow (or agent) and stream its events to the console")
    run.add_argument("target", help="MODULE:NAME or path/to/file.py:NAME of a Workflow, Agent or Team")
    run.add_argument("input", nargs="?", default=None, help="the run's input")
    run.add_argument("--session-id", default=None, help="continue this session")
    run.add_argument("--json", action="store_true", help="print events as JSON lines instead")
    run.add_argument("--markdown", action="store_true", help="render the final content as Markdown")
    run.set_defaults(handler=_run)

    for name, entry in sorted(get_registry().entries("command").items()):
        configure, handler, help_text = entry.value
        command = sub.add_parser(name, help=f"{help_text} (from {entry.plugin})")
        configure(command)
        command.set_defaults(handler=handler)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    result = handler(args)
    return int(result or 0)


def _plugins(args: argparse.Namespace) -> int:
    from plait.plugins import get_registry

    registry = get_registry()
    plugins: list[dict[str, Any]] = [
        {
            "name": info.name,
            "distribution": info.distribution,
            "version": info.version,
            "hooks": info.hooks,
            "registered": [{"kind": r.kind, "key": r.key} for r in info.registered],
        }
        for info in registry.plugins.values()
    ]
    errors = [{"name": e.name, "distribution": e.distribution, "error": e.error} for e in registry.errors]
    if args.json:
        print(json.dumps({"plugins": plugins, "errors": errors}, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="plait plugins")
    for column in ("plugin", "distribution", "version", "hooks", "registered"):
        table.add_column(column)
    for plugin in plugins:
        registered = ", ".join(f"{r['kind']}:{r['key']}" for r in plugin["registered"])
        table.add_row(
            plugin["name"],
            plugin["distribution"] or "",
            plugin["version"] or "",
            "\n".join(plugin["hooks"]),
            registered,
        )
    console.print(table)
    for error in errors:
        console.print(
            f"[red]failed to load[/red] {error['name']} ({error['distribution']}): {error['error']}"
        )
    return 0


def load_target(spec: str) -> Any:
    """Import ``module:name`` or ``path/to/file.py:name`` and return the object."""
    module_part, sep, attr = spec.rpartition(":")
    if not sep or not module_part or not attr:
        raise SystemExit(f"plait: expected MODULE:NAME or FILE.py:NAME, got {spec!r}")
    if module_part.endswith(".py"):
        path = Path(module_part).resolve()
        if not path.exists():
            raise SystemExit(f"plait: no such file {module_part!r}")
        sys.path.insert(0, str(path.parent))
        loaded = importlib.util.spec_from_file_location(path.stem, path)
        assert loaded is not None and loaded.loader is not None
        module = importlib.util.module_from_spec(loaded)
        sys.modules[path.stem] = module
        loaded.loader.exec_module(module)
    else:
        sys.path.insert(0, str(Path.cwd()))
        module = importlib.import_module(module_part)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise SystemExit(f"plait: {module_part!r} has no attribute {attr!r}") from None


def _run(args: argparse.Namespace) -> int:
    from plait.errors import PlaitError

    target = load_target(args.target)
    if not hasattr(target, "run"):
        raise SystemExit(
            f"plait: {args.target} is {type(target).__name__}, expected a Workflow, Agent or Team"
        )
    options = {"session_id": args.session_id} if args.session_id else {}
    try:
        if args.json:
            for event in target.run(args.input, stream=True, stream_events=True, **options):
                print(event.to_json(), flush=True)
            return 0
        from plait.console import print_run

        print_run(target, args.input, stream=True, markdown=args.markdown, options=options)
    except PlaitError as exc:
        print(f"plait: run failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
