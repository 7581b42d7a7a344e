"""Where a workload's time goes, or how long one unit takes here and now.

    python bench/profile/hot.py WORKLOAD [N] [--time] [--top 25]

Without ``--time``: a cProfile of N units of WORKLOAD (``workloads.py``) after its warm-up,
the top functions by own time, with their call counts (calls per unit are what to cut).
With ``--time``: the best of several timings of N units, in microseconds per unit (wall time:
noisy on a shared machine; ``count.py``'s instruction counts are what to compare).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workloads import build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workload")
    parser.add_argument("n", nargs="?", type=int, default=2000)
    parser.add_argument("--time", action="store_true")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    run = build(args.workload)
    run(1)
    if args.time:
        best = min(_timed(run, args.n) for _ in range(7))
        print(f"{args.workload}: {best / args.n * 1e6:.2f} µs per unit (best of 7 x {args.n})")
        return
    profile = cProfile.Profile()
    profile.runcall(run, args.n)
    pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)


def _timed(run: object, n: int) -> float:
    started = time.perf_counter()
    run(n)  # type: ignore[operator]
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
