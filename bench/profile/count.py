"""Instructions per unit of the per-run workloads (``workloads.py``), counted by callgrind.

    python bench/profile/count.py [--src CORE_SRC ...] [--workloads one_step,loop] [--python PY]

Each workload runs under ``valgrind --tool=callgrind`` twice, with N and 2N units; the
difference over N is the instructions one unit costs, free of the interpreter's start, the
import and the warm-up. Instruction counts hardly move with the machine's load (wall time on a
shared machine moves 20-40%), so two trees compare A/B: give ``--src`` once per tree (a
worktree's ``core/src``), and each is put first on ``PYTHONPATH`` in turn. The derived rows
are ``nesting level = (nested3 - nested1) / 2`` and ``one_step - plain`` (a one-step run over
plain Python). ``first_run`` is the whole process: start, ``import plait``, the first run.

To turn instructions into time on a given machine, time the same workload once (``hot.py
--time``) and divide.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: units per workload for the first of the two runs (the second runs twice as many)
UNITS = {"plain": 2000, "one_step": 400, "loop": 400, "nested1": 200, "nested3": 200, "stream": 1000}


def instructions(python: str, src: str | None, workload: str, n: int) -> int:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        python,
        str(HERE / "workloads.py"),
        workload,
        str(n),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{workload} {n} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"no instruction count in callgrind's output:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def per_unit(python: str, src: str | None, workload: str) -> float:
    if workload == "first_run":
        return float(instructions(python, src, workload, 0))
    n = UNITS[workload]
    return (instructions(python, src, workload, 2 * n) - instructions(python, src, workload, n)) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", action="append", help="a tree's core/src (repeat to compare trees)")
    parser.add_argument("--workloads", default="plain,one_step,loop,nested1,nested3,stream,first_run")
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    sources = args.src or [None]
    workloads = args.workloads.split(",")
    table: dict[str | None, dict[str, float]] = {}
    for src in sources:
        row = table[src] = {}
        for workload in workloads:
            row[workload] = per_unit(args.python, src, workload)
            print(f"{src or 'installed'}: {workload}: {row[workload]:,.0f} Ir", file=sys.stderr, flush=True)
        if "nested1" in row and "nested3" in row:
            row["nesting level"] = (row["nested3"] - row["nested1"]) / 2
        if "plain" in row and "one_step" in row:
            row["one_step - plain"] = row["one_step"] - row["plain"]
    names = list(next(iter(table.values())))
    print("| instructions per unit | " + " | ".join(str(src or "installed") for src in sources) + " |")
    print("|---|" + "---:|" * len(sources))
    for name in names:
        cells = []
        for src in sources:
            value = table[src][name]
            base = table[sources[0]][name]
            change = f" ({(value - base) / base:+.0%})" if src != sources[0] and base else ""
            cells.append(f"{value:,.0f}{change}")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
