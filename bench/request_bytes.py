"""How many bytes a recorded tool loop stores for its model requests (issue #15).

``python bench/request_bytes.py [ROUNDS]``: one agent step in a ROUNDS-round tool loop (default
50; a FunctionModel, no network), on SQLite, recorded twice: with every model request stored
whole (the format before deltas: each request holds the whole history, O(N²) bytes) and as
deltas of the step's previous request (O(N)). Prints the bytes of the stored request payloads
of each, and checks that both read back as the same requests with the same fingerprints.
Bytes, not time.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from plait import Agent, Step, Workflow
from plait._record_store import StorageSink, load_recorded
from plait.models import ToolCall
from plait.testing import FunctionModel

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 50


async def reply(messages: list[Any]) -> Any:
    done = sum(1 for m in messages if m.role == "tool")
    if done < ROUNDS:
        return ToolCall(f"call-{done}", "lookup", {"n": done + 1})
    return f"Looked up {done} items."


def lookup(n: int) -> str:
    """Look up item n."""
    return f"item {n} is {n * n}, a number with a few words of description around it"


async def measure(url: str, deltas: bool) -> tuple[int, int, list[Any]]:
    """(bytes of the stored model requests, their number, the requests read back)."""
    StorageSink.deltas = deltas
    agent = Agent(
        name="Looker",
        model=FunctionModel(reply),
        tools=[lookup],
        instructions="Look items up.",
        max_tool_rounds=ROUNDS + 1,
    )
    workflow = Workflow(name=f"bytes-{deltas}", steps=[Step(name="look", agent=agent)], storage=url)
    output = await workflow.arun("look everything up")
    storage = await workflow._ready_storage()
    assert storage is not None
    calls = [c for c in await storage.load_calls(output.run_id) if c.kind == "model"]
    payloads = await storage.load_payloads(sorted({c.request for c in calls}))
    size = sum(len(text.encode()) for text in payloads.values())
    read = [
        (r.fingerprint, r.request) for r in await load_recorded(storage, output.run_id) if r.kind == "model"
    ]
    await workflow.aclose()
    return size, len(calls), read


async def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        whole, n, read_whole = await measure(f"sqlite:///{Path(directory) / 'whole.db'}", False)
        delta, _, read_delta = await measure(f"sqlite:///{Path(directory) / 'delta.db'}", True)
    StorageSink.deltas = True
    assert [f for f, _ in read_whole] == [f for f, _ in read_delta], "fingerprints differ"
    assert [r["messages"] for _, r in read_whole] == [r["messages"] for _, r in read_delta]
    print(f"{ROUNDS}-round tool loop, {n} model requests recorded")
    print(f"whole requests (before): {whole:>10,} bytes")
    print(f"deltas (now):            {delta:>10,} bytes  ({whole / delta:.1f}x smaller)")


if __name__ == "__main__":
    asyncio.run(main())
