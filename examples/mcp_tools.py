"""MCP tools: an agent calls the tools of an MCP server that plait starts over stdio.

mcp_notes_server.py, next to this file, is a tiny MCP server (the official ``mcp`` SDK).
``MCPTools([python, mcp_notes_server.py])`` gives the agent its tools, with the server's
schemas and descriptions; ``tool_name_prefix="notes"`` names them ``notes_add_note`` and
``notes_list_notes``. Unopened, MCPTools starts the server for each run and stops it after;
inside ``async with notes:`` both runs share one server, so the second sees the first's notes.

Offline the model is scripted (it calls the tools it is offered, then reports what they
said); ``PLAIT_EXAMPLE_MODEL=openai:gpt-4o-mini python examples/mcp_tools.py`` uses a real one.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from plait import Agent, AgentRunOutput
from plait.models import Message, ModelRequest, ToolCall
from plait.testing import FunctionModel
from plait_mcp import MCPTools

SERVER = Path(__file__).with_name("mcp_notes_server.py")
notes = MCPTools([sys.executable, str(SERVER)], tool_name_prefix="notes")


def scripted(messages: list[Message], request: ModelRequest) -> Any:
    """Offline: save each "Remember:" item with the add tool, else list the notes; then report."""
    offered = {tool.name for tool in request.tools}
    if messages[-1].role == "user":
        text = str(messages[-1].content)
        if text.startswith("Remember:"):
            items = [item.strip() for item in text.removeprefix("Remember:").split(",")]
            return [ToolCall(f"add{i}", "notes_add_note", {"text": item}) for i, item in enumerate(items)]
        assert "notes_list_notes" in offered
        return ToolCall("list", "notes_list_notes", {})
    return "Done. " + " / ".join(str(m.content) for m in messages if m.role == "tool").replace("\n", "; ")


model = os.environ.get("PLAIT_EXAMPLE_MODEL") or FunctionModel(scripted, model="scripted")
agent = Agent(
    name="Notetaker",
    model=model,
    instructions="Keep the user's notes with the notes tools; answer in one sentence.",
    tools=[notes],
)


def show(output: AgentRunOutput) -> None:
    for message in output.messages:
        for call in message.tool_calls:
            print(f"  calls {call.name}({call.arguments})")
        if message.role == "tool":
            print(f"  {message.name} -> {str(message.content).replace(chr(10), '; ')}")
    print(f"  answer: {output.content}")


async def main() -> None:
    print("model:", model if isinstance(model, str) else "scripted (offline; set PLAIT_EXAMPLE_MODEL)")
    async with notes:  # one server, shared by both runs
        for question in ("Remember: buy tea, call Ada", "What are my notes?"):
            print(f"> {question}")
            show(await agent.arun(question))
    print("> What are my notes? (a run of its own: a fresh server)")
    show(await agent.arun("What are my notes?"))


if __name__ == "__main__":
    asyncio.run(main())
