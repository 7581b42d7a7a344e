"""``MCPTools``: an MCP server's tools as a :class:`plait.Toolset` of agent tools."""

from __future__ import annotations

import os
import shlex
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from plait import Tool
from plait.errors import DefinitionError
from plait_mcp._connection import Connection

__all__ = ["MCPToolError", "MCPTools"]


class MCPToolError(Exception):
    """A tool of an MCP server answered with an error (``isError``); the agent hands it to
    the model as the tool's error, as for any tool that raises."""


class MCPTools:
    """The tools of one MCP server, for ``Agent(tools=[MCPTools(...)])``.

    >>> MCPTools(["python", "server.py"])                 # stdio: plait starts the server
    >>> MCPTools("npx -y @modelcontextprotocol/server-everything", env={"DEBUG": "1"})
    >>> MCPTools(url="http://127.0.0.1:8000/mcp")          # streamable HTTP

    Each run of an agent connects as it starts (starting a stdio server), lists the server's
    tools and disconnects when it ends. ``async with MCPTools(...) as tools:`` (or ``await
    tools.connect()`` ... ``await tools.close()``) opens one connection that every run in
    that event loop shares until the block ends.

    ``command`` is a list of arguments or one string split like a shell does; ``env`` is
    added to the few variables the SDK passes on (``PATH``, ``HOME``...); ``cwd`` is the
    server's working directory. ``headers`` go with every HTTP request (``Authorization``).
    ``include_tools`` / ``exclude_tools`` keep or leave out tools by the server's names, and
    ``tool_name_prefix="fs"`` renames ``read`` to ``fs_read`` (as Agno does). ``timeout_seconds``
    bounds each request (Agno's default, 10 s; None: no bound).

    A tool's ``isError`` answer, or a request that times out, goes back to the model as that
    tool's error. A server that goes away (its process exits, its HTTP endpoint stops
    answering) stops the run with :class:`plait.ToolsetError` naming the server and the tool.
    """

    def __init__(
        self,
        command: str | Sequence[str] | None = None,
        *,
        url: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        headers: Mapping[str, str] | None = None,
        transport: str | None = None,
        include_tools: Sequence[str] | None = None,
        exclude_tools: Sequence[str] | None = None,
        tool_name_prefix: str | None = None,
        timeout_seconds: float | None = 10,
        name: str | None = None,
    ) -> None:
        where = "MCPTools"
        if (command is None) == (url is None):
            raise DefinitionError(
                f"{where}: give a command (a stdio server) or url= (streamable HTTP), "
                f"got command={command!r}, url={url!r}"
            )
        expected = "stdio" if command is not None else "streamable-http"
        if transport is not None and transport != expected:
            raise DefinitionError(
                f"{where}: transport={transport!r} does not go with "
                f"{'a command' if command is not None else 'url='}; expected {expected!r} "
                "(the SSE transport is deprecated in MCP and not supported)"
            )
        self.transport = expected
        self.command: list[str] | None = None
        if command is not None:
            parts = shlex.split(command) if isinstance(command, str) else list(command)
            if not parts or not all(isinstance(p, str) and p for p in parts):
                raise DefinitionError(
                    f"{where}: command must be a non-empty list of strings (or one string), got {command!r}"
                )
            self.command = parts
        elif not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise DefinitionError(f"{where}: url must be an http:// or https:// URL, got {url!r}")
        if command is None and (env is not None or cwd is not None):
            raise DefinitionError(f"{where}: env= and cwd= are for a stdio server (a command), not url=")
        if command is not None and headers is not None:
            raise DefinitionError(f"{where}: headers= are for url= (streamable HTTP), not a command")
        self.url = url
        self.env = _strings(where, "env", env)
        self.cwd = None if cwd is None else os.fspath(cwd)
        self.headers = _strings(where, "headers", headers)
        self.include_tools = _names(where, "include_tools", include_tools)
        self.exclude_tools = _names(where, "exclude_tools", exclude_tools)
        if self.include_tools is not None and self.exclude_tools is not None:
            both = sorted(set(self.include_tools) & set(self.exclude_tools))
            if both:
                raise DefinitionError(f"{where}: {both} are in both include_tools and exclude_tools")
        if tool_name_prefix is not None and (not isinstance(tool_name_prefix, str) or not tool_name_prefix):
            raise DefinitionError(
                f"{where}: tool_name_prefix must be a non-empty string, got {tool_name_prefix!r}"
            )
        self.tool_name_prefix = tool_name_prefix
        if timeout_seconds is not None and (
            isinstance(timeout_seconds, bool)
            or not isinstance(timeout_seconds, (int, float))
            or timeout_seconds <= 0
        ):
            raise DefinitionError(
                f"{where}: timeout_seconds must be a positive number of seconds or None, got {timeout_seconds!r}"
            )
        self.timeout_seconds = None if timeout_seconds is None else float(timeout_seconds)
        #: how errors, spans and ``repr`` name the server: ``name=``, else its command or URL
        self.label = name or (shlex.join(self.command) if self.command is not None else str(url))
        self._shared: Connection | None = None
        self._shared_tools: list[Tool] = []

    def __repr__(self) -> str:
        return f"MCPTools({self.label!r})"

    # -- plait.Toolset ----------------------------------------------------------------

    @asynccontextmanager
    async def open(self) -> AsyncIterator[Sequence[Tool]]:
        """A run's tools: the shared connection's, else those of a connection of its own."""
        shared = self._shared
        if shared is not None:
            shared.check_loop()
            gone = shared.dead()
            if gone is not None:
                raise gone
            yield list(self._shared_tools)
            return
        connection = self._connection()
        await connection.start()
        try:
            yield self._tools(connection)
        finally:
            await connection.close()

    def cache_identity(self) -> Any:
        """What decides the tools: the server (command, URL) and the filters; not the secrets
        of ``env`` or ``headers``, only their names."""
        return [
            "mcp",
            self.command,
            self.url,
            self.cwd,
            sorted(self.env or ()),
            sorted(self.headers or ()),
            self.include_tools,
            self.exclude_tools,
            self.tool_name_prefix,
        ]

    # -- a connection the user opens ---------------------------------------------------

    async def connect(self) -> None:
        """Open the connection that runs share until :meth:`close` (``async with`` does both);
        one whose server went away is replaced."""
        if self._shared is not None:
            if self._shared.dead() is None:
                raise RuntimeError(f"{self!r} is already connected; close() it first")
            await self.close()
        connection = self._connection()
        await connection.start()
        try:
            self._shared_tools = self._tools(connection)
        except BaseException:
            await connection.close()
            raise
        self._shared = connection

    async def close(self) -> None:
        """Close the shared connection (nothing to do when none is open)."""
        connection, self._shared, self._shared_tools = self._shared, None, []
        if connection is not None:
            await connection.close()

    async def __aenter__(self) -> MCPTools:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- building ----------------------------------------------------------------------

    def _connection(self) -> Connection:
        return Connection(self.label, self._target(), self.timeout_seconds)

    def _target(self) -> Any:
        """What the SDK's ``Client`` connects to: stdio parameters, a URL or an HTTP transport."""
        if self.command is not None:
            from mcp.client.stdio import StdioServerParameters

            return StdioServerParameters(
                command=self.command[0], args=self.command[1:], env=self.env, cwd=self.cwd
            )
        assert self.url is not None
        if not self.headers:
            return self.url
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        # the SDK's own defaults for an MCP HTTP client: a server may hold a response open
        http = httpx2.AsyncClient(headers=self.headers, timeout=httpx2.Timeout(30.0, read=300.0))
        return _OwningTransport(streamable_http_client(self.url, http_client=http), http)

    def _tools(self, connection: Connection) -> list[Tool]:
        listed = {t.name: t for t in connection.tools}
        for option, names in (("include_tools", self.include_tools), ("exclude_tools", self.exclude_tools)):
            unknown = [n for n in names or () if n not in listed]
            if unknown:
                raise DefinitionError(
                    f"{self!r}: {option} names {unknown}, which the server does not have "
                    f"(it has: {', '.join(listed) or 'no tools'})"
                )
        chosen = [
            t
            for name, t in listed.items()
            if (self.include_tools is None or name in self.include_tools)
            and name not in (self.exclude_tools or ())
        ]
        return [self._tool(connection, t) for t in chosen]

    def _tool(self, connection: Connection, listed: Any) -> Tool:
        server_name: str = listed.name
        name = server_name if self.tool_name_prefix is None else f"{self.tool_name_prefix}_{server_name}"
        schema = dict(listed.input_schema or {"type": "object", "properties": {}})
        schema.pop("title", None)  # the SDK's "addArguments": plait's own tools send none either

        async def call_mcp_tool(**arguments: Any) -> str:
            return answer(server_name, await connection.call(server_name, arguments))

        call_mcp_tool.__qualname__ = call_mcp_tool.__name__ = name
        return Tool(call_mcp_tool, name=name, description=listed.description or "", parameters=schema)


def answer(tool: str, result: Any) -> str:
    """A ``CallToolResult`` as the text the model gets; an ``isError`` one raises MCPToolError."""
    parts: list[str] = []
    for block in result.content or ():
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind in ("image", "audio"):
            parts.append(f"[{kind} {block.mime_type}, {len(block.data) * 3 // 4} bytes, not shown]")
        elif kind == "resource_link":
            parts.append(f"[resource {block.uri}]")
        elif kind == "resource":
            text = getattr(block.resource, "text", None)
            parts.append(text if isinstance(text, str) else f"[resource {block.resource.uri}]")
        else:
            parts.append(f"[{kind or type(block).__name__} content]")
    if not parts and result.structured_content is not None:
        import json

        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    text = "\n".join(parts)
    if result.is_error:
        raise MCPToolError(text or f"tool {tool!r} failed without saying why")
    return text


class _OwningTransport:
    """The SDK's HTTP transport with the HTTP client it was given, closed when it closes."""

    def __init__(self, transport: Any, http: Any) -> None:
        self._transport = transport
        self._http = http

    async def __aenter__(self) -> Any:
        return await self._transport.__aenter__()

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self._transport.__aexit__(*exc_info)
        finally:
            await self._http.aclose()


def _strings(where: str, option: str, value: Mapping[str, str] | None) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise DefinitionError(f"{where}: {option} must map strings to strings, got {value!r}")
    return dict(value)


def _names(where: str, option: str, value: Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise DefinitionError(f"{where}: {option} must be a list of tool names, got {value!r}")
    return list(value)
