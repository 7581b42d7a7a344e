"""Run one benchmark case for one framework in this (fresh) interpreter and print JSON.

    python bench/worker.py <framework> <workload> '<params as JSON>' ['<timing as JSON>']

The last line of stdout is `BENCH_RESULT {...}` (frameworks may print their own lines before
it). The run is checked before anything is timed: a wrong output reports `ok: false` with the
reason, never a number. Stdlib only, because it runs inside every framework's environment.

`python bench/worker.py plait profile '{"n": 100}'` prints a cProfile of the sync chain instead.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import inspect
import json
import math
import sys
import time
import traceback
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# Import `bench.*` from the repository root, not from the script's folder, so that nothing in
# bench/ can shadow a module a framework imports.
REPO = Path(__file__).resolve().parent.parent
sys.path[0] = str(REPO)

from bench.adapters import NotSupported  # noqa: E402
from bench.cases import check_output  # noqa: E402

ADAPTERS = {
    "baseline": "bench.adapters.baseline",
    "plait": "bench.adapters.plait_adapter",
    "agno": "bench.adapters.agno_adapter",
    "langgraph": "bench.adapters.langgraph_adapter",
}

DEFAULT_TIMING = {
    "warmup_s": 0.3,  # run at least this long before measuring
    "sample_s": 0.02,  # each sample repeats the run until it lasts about this long
    "samples": 25,
    "min_samples": 5,
    "budget_s": 20.0,  # stop sampling after this, once min_samples are in
}


def emit(result: dict[str, Any]) -> None:
    sys.stdout.flush()
    print("BENCH_RESULT " + json.dumps(result), flush=True)


def as_sync(run: Callable[[], Any]) -> Callable[[], Any]:
    """One event loop per worker, reused by every run, for baseline and frameworks alike."""
    if not inspect.iscoroutinefunction(run):
        return run
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    return lambda: loop.run_until_complete(run())


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if len(sorted_values) == 1:
        return sorted_values[0]
    pos = (len(sorted_values) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarise(per_run_ns: list[float]) -> dict[str, Any]:
    s = sorted(per_run_ns)
    return {
        "median_ns": percentile(s, 0.5),
        "p10_ns": percentile(s, 0.1),
        "p90_ns": percentile(s, 0.9),
        "samples": len(s),
    }


def measure(run: Callable[[], Any], timing: dict[str, Any]) -> dict[str, Any]:
    """Warm up, calibrate how many runs make one sample, then sample with gc.collect() between."""
    clock = time.perf_counter_ns
    deadline = clock() + int(timing["warmup_s"] * 1e9)
    warmups = 0
    while warmups < 2 or clock() < deadline:
        t0 = clock()
        run()
        one = clock() - t0
        warmups += 1
        if one > timing["warmup_s"] * 1e9:
            break
    inner = max(1, min(10_000, int(timing["sample_s"] * 1e9 / max(one, 1))))
    per_run: list[float] = []
    started = clock()
    budget = int(timing["budget_s"] * 1e9)
    for _ in range(timing["samples"]):
        gc.collect()
        t0 = clock()
        for _ in range(inner):
            run()
        per_run.append((clock() - t0) / inner)
        if len(per_run) >= timing["min_samples"] and clock() - started > budget:
            break
    stats = summarise(per_run)
    stats["runs_per_sample"] = inner
    stats["warmup_runs"] = warmups
    return stats


def peak_memory(run: Callable[[], Any], repeats: int = 5) -> dict[str, Any]:
    """tracemalloc peak (bytes) of one warm run; median of a few."""
    for _ in range(3):
        run()
    peaks: list[float] = []
    for _ in range(repeats):
        gc.collect()
        tracemalloc.start()
        run()
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    s = sorted(peaks)
    return {
        "median_bytes": percentile(s, 0.5),
        "p10_bytes": percentile(s, 0.1),
        "p90_bytes": percentile(s, 0.9),
        "samples": len(s),
    }


def time_import(statement: str) -> dict[str, Any]:
    gc.collect()
    t0 = time.perf_counter_ns()
    exec(statement, {})
    return {"import_ns": time.perf_counter_ns() - t0, "statement": statement}


def run_case(framework: str, workload: str, params: dict[str, Any], timing: dict[str, Any]) -> dict[str, Any]:
    adapter = importlib.import_module(ADAPTERS[framework])
    if workload == "import":
        return {"ok": True, **time_import(adapter.IMPORT_STATEMENT)}
    if workload == "first_run":
        return {"ok": True, **time_import(adapter.FIRST_RUN_STATEMENT)}
    try:
        built = adapter.build(workload, params)
    except NotSupported as exc:
        return {"ok": False, "na": str(exc)}
    # `build` returns a run callable, or a dict of named variants (e.g. tracing off/on),
    # each measured in turn in this process.
    variants = built if isinstance(built, dict) else {"": built}
    result: dict[str, Any] = {"ok": True, "variants": {}}
    for name, raw_run in variants.items():
        if isinstance(raw_run, NotSupported):
            result["variants"][name] = {"ok": False, "na": str(raw_run)}
            continue
        try:
            result["variants"][name] = run_variant(workload, params, raw_run, timing)
        except Exception as exc:  # one variant failing must not lose the others
            result["variants"][name] = {
                "ok": False,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(limit=8),
            }
    return result


def run_variant(
    workload: str, params: dict[str, Any], raw_run: Callable[[], Any], timing: dict[str, Any]
) -> dict[str, Any]:
    """Check one run's output, measure, then check again: nothing is timed doing nothing."""
    run = as_sync(raw_run)
    try:
        output = run()
    except NotSupported as exc:
        return {"ok": False, "na": str(exc)}
    problem = check_output(workload, params, output)
    if problem:
        return {"ok": False, "error": f"check failed: {problem}"}
    stats = peak_memory(run) if params.get("memory") else measure(run, timing)
    problem = check_output(workload, params, run())
    if problem:
        return {"ok": False, "error": f"check failed after timing: {problem}"}
    if workload == "stream":
        stats["events_per_run"] = output[1]
    extra = getattr(raw_run, "extra", None)
    if extra is not None:
        stats["extra"] = extra()
    return {"ok": True, **stats}


def profile(framework: str, params: dict[str, Any]) -> None:
    import cProfile
    import pstats

    adapter = importlib.import_module(ADAPTERS[framework])
    run = as_sync(adapter.build("chain_sync", params))
    problem = check_output("chain_sync", params, run())
    if problem:
        print(f"check failed: {problem}")
        return
    for _ in range(20):
        run()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(params.get("runs", 200)):
        run()
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(params.get("top", 15))


def main(argv: list[str]) -> int:
    framework, workload = argv[1], argv[2]
    params = json.loads(argv[3]) if len(argv) > 3 else {}
    timing = {**DEFAULT_TIMING, **(json.loads(argv[4]) if len(argv) > 4 else {})}
    if workload == "profile":
        profile(framework, params)
        return 0
    try:
        result = run_case(framework, workload, params, timing)
    except Exception as exc:  # report, never crash without a result line
        result = {
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(limit=8),
        }
    result.update(framework=framework, workload=workload, params=params, python=sys.version.split()[0])
    emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
