"""A real MCP server for the plait-mcp tests, written with the SDK's MCPServer (mcp 1's FastMCP).

``python mcp_server.py`` serves over stdio; ``python mcp_server.py --http PORT`` serves
streamable HTTP on 127.0.0.1:PORT at /mcp.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Annotated

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

server = MCPServer("plait-test", log_level="WARNING")


@server.tool()
def add(
    a: Annotated[int, Field(description="The first addend")],
    b: Annotated[int, Field(description="The second addend")],
) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def echo(text: str) -> str:
    """Return the text as it was given."""
    return text


@server.tool()
def refuse(reason: str) -> str:
    """Fail on purpose with the reason given (an isError answer)."""
    raise ToolError(f"refused: {reason}")


@server.tool()
def crash_hard() -> str:
    """Raise an exception the server did not expect."""
    raise RuntimeError("internal detail")


@server.tool()
def pid() -> int:
    """The server's process id."""
    return os.getpid()


@server.tool()
def die() -> str:
    """Exit the server process in the middle of the call."""
    sys.stdout.flush()
    os._exit(3)


@server.tool()
async def wait(seconds: float, tag: str) -> str:
    """Sleep, then answer with the tag."""
    await asyncio.sleep(seconds)
    return f"waited {tag}"


@server.tool()
def environment(name: str) -> str:
    """A variable of the server's environment, and its working directory."""
    return f"{os.environ.get(name, '<unset>')} in {os.getcwd()}"


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
