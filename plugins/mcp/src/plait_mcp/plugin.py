"""The ``mcp`` entry point: registers ``plait mcp-tools``, which lists what an MCP server gives an agent."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from plait.hookspecs import hookimpl

__all__ = ["configure", "list_tools", "register_commands"]


def configure(parser: argparse.ArgumentParser) -> None:
    """``plait mcp-tools``'s arguments: MCPTools' options, on the command line."""
    parser.add_argument(
        "command", nargs="?", default=None, help='a stdio server, as one string: "python server.py"'
    )
    parser.add_argument("--url", default=None, help="a streamable HTTP server: http://127.0.0.1:8000/mcp")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="for a stdio server")
    parser.add_argument("--cwd", default=None, help="a stdio server's working directory")
    parser.add_argument("--header", action="append", default=[], metavar="NAME=VALUE", help="for --url")
    parser.add_argument("--include", action="append", default=None, metavar="TOOL", help="keep only TOOL")
    parser.add_argument("--exclude", action="append", default=None, metavar="TOOL", help="leave TOOL out")
    parser.add_argument("--prefix", default=None, help="tool_name_prefix=")
    parser.add_argument("--json", action="store_true", help="the tools' definitions as JSON")


def list_tools(args: argparse.Namespace) -> int:
    """Connect, print the tools an agent would get (names, descriptions, parameters), disconnect."""
    import asyncio

    from plait.errors import PlaitError
    from plait_mcp import MCPTools

    try:
        tools = MCPTools(
            args.command,
            url=args.url,
            env=_pairs("--env", args.env) if args.env else None,
            cwd=args.cwd,
            headers=_pairs("--header", args.header) if args.header else None,
            include_tools=args.include,
            exclude_tools=args.exclude,
            tool_name_prefix=args.prefix,
        )
        definitions = asyncio.run(_definitions(tools))
    except PlaitError as exc:
        raise SystemExit(f"plait mcp-tools: {exc}")
    if args.json:
        print(json.dumps([dataclasses.asdict(d) for d in definitions], indent=2, ensure_ascii=False))
        return 0
    print(f"{tools.label}: {len(definitions)} tool{'' if len(definitions) == 1 else 's'}")
    for definition in definitions:
        summary = (definition.description or "").strip().split("\n", 1)[0]
        print(f"\n{definition.name}" + (f": {summary}" if summary else ""))
        properties = definition.parameters.get("properties", {})
        required = set(definition.parameters.get("required", ()))
        for name, schema in properties.items():
            kind = schema.get("type", "any") if isinstance(schema, dict) else "any"
            note = "" if name in required else ", optional"
            text = schema.get("description", "") if isinstance(schema, dict) else ""
            print(f"  {name} ({kind}{note})" + (f": {text}" if text else ""))
    return 0


async def _definitions(tools: Any) -> list[Any]:
    async with tools.open() as found:
        return [t.definition for t in found]


def _pairs(option: str, values: list[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name:
            raise SystemExit(f"plait mcp-tools: {option} expects NAME=VALUE, got {value!r}")
        pairs[name] = text
    return pairs


@hookimpl
def register_commands(register: Any) -> None:
    register("mcp-tools", configure, list_tools, help="list the tools an MCP server gives an agent")
