"""A tiny MCP server for examples/mcp_tools.py, written with the official SDK (``mcp``).

It keeps notes in memory for as long as it runs. ``MCPTools([python, this file])`` starts it
over stdio; ``python mcp_notes_server.py --http 8000`` serves it at http://127.0.0.1:8000/mcp.
"""

from __future__ import annotations

import sys

from mcp.server import MCPServer

server = MCPServer("notes", log_level="WARNING")
notes: list[str] = []


@server.tool()
def add_note(text: str) -> str:
    """Save a note.

    Args:
        text: What to remember.
    """
    notes.append(text)
    return f"saved note {len(notes)}"


@server.tool()
def list_notes() -> str:
    """Every note saved so far, numbered."""
    return "\n".join(f"{i}. {note}" for i, note in enumerate(notes, 1)) or "no notes yet"


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
