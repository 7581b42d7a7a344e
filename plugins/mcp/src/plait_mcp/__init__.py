"""MCP tools for plait agents: ``MCPTools`` connects to an MCP server through the official SDK.

``Agent(tools=[MCPTools(["python", "server.py"])])`` (stdio) or
``Agent(tools=[MCPTools(url="http://127.0.0.1:8000/mcp")])`` (streamable HTTP): the server's
tools become the agent's, with their JSON schemas and descriptions. The SDK is imported when
a connection opens, so importing this package stays light.
"""

from __future__ import annotations

from plait_mcp._tools import MCPToolError, MCPTools

__all__ = ["MCPToolError", "MCPTools"]

MCPTools.__module__ = __name__
MCPToolError.__module__ = __name__
