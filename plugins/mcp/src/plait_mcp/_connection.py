"""One connection to an MCP server, owned by a task of its own.

The SDK's ``Client`` runs its transport in an anyio task group tied to the task that enters
it: a transport that fails (a server that dies mid-request) cancels that task. So neither a
run nor a user's ``async with`` enters it: a connection task does, and tool calls made from
any task of the same event loop go through it. A call races the connection task, so a
server that dies answers the call with :class:`plait.ToolsetError` instead of a hang.
"""

from __future__ import annotations

import asyncio
from typing import Any

from plait import ToolsetError
from plait.errors import PlaitError

__all__ = ["Connection"]


class Connection:
    """A connected MCP client session: the server's tools, and calls to them."""

    def __init__(self, label: str, target: Any, timeout: float | None) -> None:
        #: how errors name the server (``MCPTools.label``)
        self.label = label
        self._target = target
        self._timeout = timeout
        self._client: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        #: what ended the connection, when the server went away before it was closed
        self.failure: BaseException | None = None
        #: the server's tools as it listed them (``mcp_types.Tool``), in its order
        self.tools: list[Any] = []

    async def start(self) -> None:
        """Connect and list the tools; a server that cannot be reached is a ToolsetError."""
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        ready: asyncio.Future[None] = self.loop.create_future()
        self._task = self.loop.create_task(self._own(ready), name=f"MCP server {self.label}")
        try:
            await ready
        except Exception as exc:
            raise ToolsetError(
                f"MCP server {self.label!r}: could not connect: {_reason(exc)}", toolset=self.label
            ) from exc

    async def _own(self, ready: asyncio.Future[None]) -> None:
        from mcp import Client

        assert self._stop is not None
        try:
            async with Client(self._target, read_timeout_seconds=self._timeout) as client:
                self._client = client
                self.tools = await _list_tools(client)
                ready.set_result(None)
                await self._stop.wait()
        except BaseException as exc:  # the transport's failure, or a cancelled loop
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else ConnectionError(repr(exc)))
            elif not self._stop.is_set():
                self.failure = exc
            if not isinstance(exc, Exception):
                raise
        finally:
            self._client = None

    def check_loop(self) -> None:
        """The connection serves the event loop it was opened in only."""
        if asyncio.get_running_loop() is not self.loop:
            raise PlaitError(
                f"MCP server {self.label!r}: this MCPTools was opened (async with) in another event "
                "loop; open it in the loop that runs the agent, or leave it unopened so each run "
                "connects for itself"
            )

    def dead(self, tool: str = "") -> ToolsetError | None:
        """The error for a connection that is gone (the server died or it was closed), or None."""
        task = self._task
        if self.failure is None and task is not None and not task.done() and self._client is not None:
            return None
        cause = self.failure
        calling = f" while calling tool {tool!r}" if tool else ""
        if cause is None and self._stop is not None and self._stop.is_set():
            message = f"MCP server {self.label!r}: the connection is closed{calling}"
        else:
            why = "the connection closed" if cause is None else _reason(cause)
            message = f"MCP server {self.label!r} went away{calling}: {why}"
        return ToolsetError(message, toolset=self.label, tool=tool)

    async def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        """``tools/call``: the ``CallToolResult``; a server that dies meanwhile is a ToolsetError."""
        from mcp.shared.exceptions import MCPError
        from mcp_types import CONNECTION_CLOSED

        self.check_loop()
        gone = self.dead(tool)
        if gone is not None:
            raise gone
        assert self._task is not None
        request = asyncio.ensure_future(self._client.call_tool(tool, arguments))
        try:
            await asyncio.wait({request, self._task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not request.done():
                request.cancel()
        if not request.done() or request.cancelled():
            # the connection task ended first: give its failure a moment to be recorded
            await asyncio.sleep(0)
            raise self.dead(tool) or ToolsetError(
                f"MCP server {self.label!r} went away while calling tool {tool!r}",
                toolset=self.label,
                tool=tool,
            )
        error = request.exception()
        if isinstance(error, MCPError) and error.code == CONNECTION_CLOSED:
            # the server is gone: later calls fail at once, and the connection task ends
            self.failure = error
            assert self._stop is not None
            self._stop.set()
            raise ToolsetError(
                f"MCP server {self.label!r} went away while calling tool {tool!r}: {error}",
                toolset=self.label,
                tool=tool,
            ) from error
        return request.result()

    async def close(self) -> None:
        """Disconnect (a stdio server's process is stopped); what went wrong then is not raised."""
        task = self._task
        if task is None:
            return
        assert self._stop is not None
        self._stop.set()
        if asyncio.get_running_loop() is not self.loop:
            return  # its loop is gone or elsewhere: the task cannot be awaited from here
        await asyncio.gather(task, return_exceptions=True)


async def _list_tools(client: Any) -> list[Any]:
    """Every tool the server lists, page after page."""
    tools: list[Any] = []
    cursor: str | None = None
    while True:
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            return tools


def _reason(exc: BaseException) -> str:
    """An exception, or the first of a group (anyio's task groups raise groups), in words."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
