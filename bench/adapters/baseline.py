"""Plain Python doing the same work as each workload, with no framework: the floor to compare with.

Steps are ordinary functions taking and returning the value; fan-out is a bare `asyncio.gather`
or one (pooled) thread per branch; nesting is function calls; the loop, router and condition are a
`while`, a list index and an `if`; streaming is a generator yielding a started and a completed
event per step.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

IMPORT_STATEMENT = "import asyncio"
FIRST_RUN_STATEMENT = "import asyncio\n(lambda value: value + 1)(0)"


def _add_one(value: int) -> int:
    return value + 1


async def _aadd_one(value: int) -> int:
    return value + 1


def _chain_sync(n: int) -> Callable[[], int]:
    steps = [_add_one] * n

    def run() -> int:
        value = 0
        for step in steps:
            value = step(value)
        return value

    return run


def _chain_async(n: int) -> Callable[[], Any]:
    steps = [_aadd_one] * n

    async def run() -> int:
        value = 0
        for step in steps:
            value = await step(value)
        return value

    return run


def _fanout_async(n: int) -> Callable[[], Any]:
    async def branch(i: int) -> int:
        await asyncio.sleep(0.01)
        return i

    async def run() -> list[int]:
        return sorted(await asyncio.gather(*(branch(i) for i in range(n))))

    return run


def _fanout_sync(n: int) -> Callable[[], list[int]]:
    # One thread per branch, started once at build time like a framework's worker pool: the
    # floor is the sleep plus a hand-off, not the cost of starting N threads on every run.
    pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="branch")

    def branch(i: int) -> int:
        time.sleep(0.01)
        return i

    def run() -> list[int]:
        return sorted(f.result() for f in [pool.submit(branch, i) for i in range(n)])

    return run


def _nested(depth: int, width: int) -> Callable[[], int]:
    def level(value: int, d: int) -> int:
        if d == depth:
            for _ in range(width):
                value = _add_one(value)
            return value
        return _add_one(level(_add_one(value), d + 1))

    return lambda: level(0, 1)


def _loop(n: int) -> Callable[[], tuple[int, int]]:
    def run() -> tuple[int, int]:
        value, iterations = 0, 0
        while iterations < n:
            value = _add_one(value)
            iterations += 1
            if value >= n:
                break
        return value, iterations

    return run


def _router(n: int, pick: int) -> Callable[[], int]:
    choices = [(lambda value, i=i: value + i) for i in range(n)]

    def selector(value: int) -> int:
        return pick

    return lambda: choices[selector(0)](0)


def _condition(flag: bool) -> Callable[[], int]:
    calls = [0]

    def guarded(value: int) -> int:
        calls[0] += 1
        return value + 1

    def run() -> int:
        calls[0] = 0
        if (lambda: flag)():
            guarded(0)
        return calls[0]

    return run


def _stream(n: int) -> Callable[[], tuple[int, int]]:
    steps = [_add_one] * n

    def events() -> Iterator[tuple[str, int | None, int | None]]:
        value = 0
        for i, step in enumerate(steps):
            yield ("step_started", i, None)
            value = step(value)
            yield ("step_completed", i, value)
        yield ("workflow_completed", None, value)

    def run() -> tuple[int, int]:
        count, final = 0, 0
        for event in events():
            count += 1
            final = event[2] if event[2] is not None else final
        return final, count

    return run


def build(workload: str, params: dict[str, Any]) -> Callable[[], Any]:
    if workload == "chain_sync":
        return _chain_sync(params["n"])
    if workload == "chain_async":
        return _chain_async(params["n"])
    if workload == "fanout_async":
        return _fanout_async(params["n"])
    if workload == "fanout_sync":
        return _fanout_sync(params["n"])
    if workload == "nested":
        return _nested(params["depth"], params["width"])
    if workload == "loop":
        return _loop(params["n"])
    if workload == "router":
        return _router(params["n"], params["pick"])
    if workload == "condition":
        return _condition(params["value"])
    if workload == "stream":
        return _stream(params["n"])
    raise KeyError(f"baseline has no workload {workload!r}")
