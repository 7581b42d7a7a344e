"""MCP tools for plait agents: ``MCPTools`` connects to an MCP server through the official SDK.

``Agent(tools=[MCPTools(["python", "server.py"])])`` (stdio) or
``Agent(tools=[MCPTools(url="http://127.0.0.1:8000/mcp")])`` (streamable HTTP): the server's
tools become the agent's, with their JSON schemas and descriptions. ``MCPTools`` is imported
on first use and the SDK when a connection opens, so loading plait's plugins (``plait
mcp-tools`` is this package's command) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plait_mcp._tools import MCPToolError, MCPTools

__all__ = ["MCPToolError", "MCPTools"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from plait_mcp import _tools

        found = getattr(_tools, name)
        found.__module__ = __name__
        return found
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
