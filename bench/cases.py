"""The benchmark's workloads: what each one runs, with which sizes, and what a correct run returns.

Shared by the driver (`run.py`, which decides what to run and how to report it) and the worker
(`worker.py`, which runs one case in a fresh interpreter). Stdlib only: the worker imports this in
every framework's virtual environment.

Every adapter (`adapters/*.py`) implements `build(workload, params)` for the workload names used
here and returns a zero-argument callable (sync or `async def`) that performs one run and returns
the *normalised output* described in `expected_output`, so that one check serves all frameworks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FRAMEWORKS = ("baseline", "plait", "agno", "langgraph")
PEERS = ("plait", "agno", "langgraph")

# How the driver turns a case's per-run time into the number shown in the table.
#   overhead_per_step: (framework - baseline) / n, in microseconds
#   wall:              wall time per run, milliseconds, with the ratio to the baseline
#   per_run:           microseconds per run
#   per_iteration:     microseconds per run / n
#   per_event:         microseconds per run / events streamed
#   import:            milliseconds for the import statement in a fresh interpreter
#   memory:            tracemalloc peak of one run, KiB
METRICS = ("overhead_per_step", "wall", "per_run", "per_iteration", "per_event", "import", "memory")


@dataclass(frozen=True)
class Case:
    key: str
    group: str
    workload: str
    label: str
    metric: str
    params: dict[str, Any] = field(default_factory=dict)
    frameworks: tuple[str, ...] = FRAMEWORKS


GROUP_TITLES = {
    "A": "chain of sync function steps",
    "B": "chain of async function steps",
    "C": "fan-out (Parallel / Send)",
    "D": "nested workflows",
    "E": "loop, router, condition",
    "F": "streaming every event",
    "G": "cold import",
    "H": "plait options: tracing, checkpoints",
    "R": "plait only: parallel branches on Ray (plait-ray) vs in process",
    "M": "memory per run",
}


def build_cases(quick: bool) -> list[Case]:
    chain_sizes = (10, 100) if quick else (10, 100, 1000)
    async_fan = (10, 100) if quick else (10, 100, 1000)
    sync_fan = (10,) if quick else (10, 100)
    cases: list[Case] = []
    for n in chain_sizes:
        cases.append(
            Case(
                f"A.chain_sync.{n}", "A", "chain_sync", f"A chain sync, N={n}", "overhead_per_step", {"n": n}
            )
        )
    for n in chain_sizes:
        cases.append(
            Case(
                f"B.chain_async.{n}",
                "B",
                "chain_async",
                f"B chain async, N={n}",
                "overhead_per_step",
                {"n": n},
            )
        )
    for n in async_fan:
        cases.append(
            Case(
                f"C.fanout_async.{n}",
                "C",
                "fanout_async",
                f"C fan-out async sleep 10ms, N={n}",
                "wall",
                {"n": n},
            )
        )
    for n in sync_fan:
        cases.append(
            Case(
                f"C.fanout_sync.{n}",
                "C",
                "fanout_sync",
                f"C fan-out sync sleep 10ms, N={n}",
                "wall",
                {"n": n},
            )
        )
    cases += [
        Case("D.nested.3", "D", "nested", "D nested depth 3 x 3 steps", "per_run", {"depth": 3, "width": 3}),
        Case("E.loop.100", "E", "loop", "E loop, per iteration (100)", "per_iteration", {"n": 100}),
        Case("E.router.10", "E", "router", "E router 1 of 10", "per_run", {"n": 10, "pick": 7}),
        Case("E.condition.true", "E", "condition", "E condition true", "per_run", {"value": True}),
        Case("E.condition.false", "E", "condition", "E condition false", "per_run", {"value": False}),
        Case("F.stream.100", "F", "stream", "F stream all events, 100 steps", "per_event", {"n": 100}),
        Case(
            "G.import",
            "G",
            "import",
            "G cold import",
            "import",
            {"repeats": 5 if quick else 15},
            frameworks=PEERS,
        ),
        Case(
            "G.first_run",
            "G",
            "first_run",
            "G cold import + first one-step run",
            "import",
            {"repeats": 5 if quick else 15},
            frameworks=PEERS,
        ),
        Case(
            "H.tracing.100",
            "H",
            "tracing",
            "H chain 100, OTel tracing on",
            "per_run",
            {"n": 100},
            frameworks=("plait",),
        ),
        Case(
            "H.checkpoint.100",
            "H",
            "checkpoint",
            "H chain 100, SQLite checkpoints",
            "per_run",
            {"n": 100},
            frameworks=("plait",),
        ),
        *(
            []
            if quick
            else [
                Case(
                    "R.ray.1000",
                    "R",
                    "ray",
                    "R fan-out 1000 async sleeps on Ray",
                    "per_run",
                    {"n": 1000},
                    frameworks=("plait",),
                )
            ]
        ),
        Case(
            "M.memory.100",
            "M",
            "chain_sync",
            "M memory, chain 100 (peak)",
            "memory",
            {"n": 100, "memory": True},
        ),
    ]
    return cases


def expected_output(workload: str, params: dict[str, Any]) -> Any:
    """The normalised output every adapter's run must return for this workload.

    chain_*, nested, router: the final integer (input 0, each step adds 1; router choice i adds i).
    fanout_*: sorted branch contents, branch i returning i.
    loop: (final value, iterations run).
    condition: how many times the guarded step ran in that run.
    stream: (final value, events seen), checked separately since event counts differ.
    """
    if workload in ("chain_sync", "chain_async", "tracing", "checkpoint"):
        return params["n"]
    if workload in ("fanout_async", "fanout_sync", "ray"):
        return list(range(params["n"]))
    if workload == "nested":
        # Each level is [add, inner, add]; the innermost is three adds.
        return 2 * (params["depth"] - 1) + params["width"]
    if workload == "loop":
        return (params["n"], params["n"])
    if workload == "router":
        return params["pick"]
    if workload == "condition":
        return 1 if params["value"] else 0
    raise KeyError(workload)


def check_output(workload: str, params: dict[str, Any], output: Any) -> str | None:
    """None when `output` is what a correct run returns, else a one-line reason."""
    if workload == "stream":
        if not (isinstance(output, tuple) and len(output) == 2):
            return f"stream: expected (final_value, events), got {output!r:.120}"
        final, events = output
        if final != params["n"]:
            return f"stream: final value {final!r:.60}, expected {params['n']}"
        if events < params["n"]:
            return f"stream: {events} events for {params['n']} steps, expected at least one per step"
        return None
    expected = expected_output(workload, params)
    if output != expected:
        shown = repr(output)
        if len(shown) > 120:
            shown = shown[:117] + "..."
        return f"{workload}: got {shown}, expected {expected!r:.120}"
    return None
