"""How many bytes a run's checkpoints store when its session state is large (issue #19).

``python bench/checkpoint_bytes.py [STEPS] [KB]``: a workflow of STEPS function steps (default
100) whose session state holds a KB-kilobyte document (default 100), set by the first step and
changed once halfway, while every step updates a small counter; run on SQLite twice: with every
checkpoint holding the whole state (before) and with large values stored once per run
(``plait.storage._shared``: now). Prints the bytes stored per checkpoint (the checkpoint rows and
the values they refer to) and checks that both runs read back the same states. Bytes, not time.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from plait import Step, StepInput, Workflow
from plait.storage import _shared, read_checkpoints, shared_keys

STEPS = int(sys.argv[1]) if len(sys.argv) > 1 else 100
KB = int(sys.argv[2]) if len(sys.argv) > 2 else 100


def load(step_input: StepInput, run_context: Any) -> str:
    run_context.session_state["document"] = {"title": "report", "body": "x" * (KB * 1024)}
    return "loaded"


def work(step_input: StepInput, run_context: Any) -> str:
    state = run_context.session_state
    state["done"] = state.get("done", 0) + 1
    if state["done"] == STEPS // 2:
        state["document"] = {**state["document"], "title": "report, revised"}
    return f"step {state['done']}"


async def measure(url: str, share: bool) -> tuple[int, int, list[dict[str, Any]]]:
    """(bytes stored for the checkpoints, their number, the states read back)."""
    _shared.SHARE_AT = 1024 if share else None
    steps = [load, *[Step(name=f"work{i}", executor=work) for i in range(1, STEPS)]]
    workflow = Workflow(name=f"bytes-{share}", steps=steps, storage=url)
    output = await workflow.arun("go")
    storage = await workflow._ready_storage()
    assert storage is not None
    raw = await storage.load_checkpoints(output.run_id)
    values = await storage.load_payloads(sorted(shared_keys(c.state for c in raw)))
    size = sum(len(c.model_dump_json().encode()) for c in raw) + sum(len(v.encode()) for v in values.values())
    states = [c.state for c in await read_checkpoints(storage, output.run_id)]
    await workflow.aclose()
    return size, len(raw), states


async def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        whole, n, read_whole = await measure(f"sqlite:///{Path(directory) / 'whole.db'}", False)
        shared, _, read_shared = await measure(f"sqlite:///{Path(directory) / 'shared.db'}", True)
    _shared.SHARE_AT = 1024
    assert read_whole == read_shared, "the two runs read back different states"
    print(f"{n} checkpoints, a {KB} KB document in the session state (changed once)")
    print(f"whole state in each checkpoint (before): {whole / n:>12,.0f} bytes per checkpoint")
    print(f"large values stored once (now):          {shared / n:>12,.0f} bytes per checkpoint")
    print(f"{whole / shared:.1f}x smaller ({whole:,} -> {shared:,} bytes in all)")


if __name__ == "__main__":
    asyncio.run(main())
