"""``plait plugins``: what is installed, what each plugin registered, and what failed to load."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_plugins_parser", "plugins"]


def add_plugins_parser(sub: Any) -> None:
    """``plait plugins [--json]``."""
    parser = sub.add_parser("plugins", help="list installed plugins, what they registered, and load errors")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=plugins)


def plugins(args: argparse.Namespace) -> int:
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
