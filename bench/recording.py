"""How much recording model and tool calls (issue #15) adds to a stored run.

``python bench/recording.py [RUNS] [SECONDS] [DURABILITY]``: a workflow with one agent step whose
model takes SECONDS (default 2 ms) per call and asks for one tool call (three recorded calls per
run), on SQLite with ``durability=DURABILITY`` (default ``"step"``: each call written as it
completes), with ``record=True`` (the default) and ``record=False``, alternated over five rounds
of RUNS runs (a noisy machine slows both alike); prints the best median and the best mean run
time of each (the mean holds the rare slow runs, a WAL checkpoint say) and the differences.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from plait import Agent, Step, Workflow
from plait.models import ToolCall
from plait.testing import FunctionModel

#: seconds one model call takes (``python bench/recording.py RUNS SECONDS``)
DELAY = float(sys.argv[2]) if len(sys.argv) > 2 else 0.002
#: the durability of the runs (``python bench/recording.py RUNS SECONDS DURABILITY``)
DURABILITY: Any = sys.argv[3] if len(sys.argv) > 3 else "step"


async def reply(messages: list[Any]) -> Any:
    await asyncio.sleep(DELAY)  # a fast model
    if messages[-1].role != "tool":
        return ToolCall("c1", "add", {"a": 2, "b": 3})
    return f"The sum is {messages[-1].content}"


def add(a: int, b: int) -> int:
    return a + b


async def measure(record: bool, url: str, runs: int) -> float:
    agent = Agent(name="Calc", model=FunctionModel(reply), tools=[add], instructions="Add.")
    workflow = Workflow(
        name=f"bench-{record}",
        steps=[Step(name="calc", agent=agent)],
        storage=url,
        record=record,
        durability=DURABILITY,
    )
    await workflow.arun("warm up")
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await workflow.arun("add 2 and 3")
        times.append(time.perf_counter() - started)
    await workflow.aclose()
    return statistics.median(times), statistics.fmean(times)


async def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{Path(directory) / 'bench.db'}"
        off = on = (float("inf"), float("inf"))
        for _ in range(5):
            off = min(off, await measure(False, url, runs))
            on = min(on, await measure(True, url, runs))
    for name, a, b in (("median", off[0], on[0]), ("mean", off[1], on[1])):
        print(
            f"{name:6}  record=False: {a * 1000:.2f} ms/run   record=True: {b * 1000:.2f} ms/run   "
            f"recording adds {(b - a) * 1000:.2f} ms per run ({(b / a - 1) * 100:+.1f}%)"
        )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
