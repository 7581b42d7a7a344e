"""Benchmark plait against plain Python, Agno and LangGraph: `python bench/run.py [--quick]`.

Stdlib only (Python 3.11). Creates or reuses one virtual environment per peer under
bench/.venvs/ (pinned versions below), uses the plait development interpreter for plait, runs
every (framework, workload) in a fresh interpreter through bench/worker.py, one after the other
(never two at once, never two frameworks in one process), prints one table and writes
bench/results/latest.json and latest.md. See bench/README.md for what each row measures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import venv
from dataclasses import asdict
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))

from bench.cases import FRAMEWORKS, GROUP_TITLES, Case, build_cases  # noqa: E402

# Peers are pinned so that numbers from different days compare; bump deliberately.
PEER_REQUIREMENTS = {
    "agno": ["agno==3.1.10"],
    "langgraph": ["langgraph==1.2.22"],
}
VERSIONS_OF = {
    "baseline": [],
    "plait": ["plait", "opentelemetry-api", "opentelemetry-sdk", "pydantic"],
    "agno": ["agno", "pydantic"],
    "langgraph": ["langgraph", "langgraph-checkpoint", "langchain-core", "pydantic"],
}
DISPLAY = {"baseline": "baseline", "plait": "plait", "agno": "Agno", "langgraph": "LangGraph"}

TIMING = {
    "full": {"warmup_s": 0.3, "sample_s": 0.02, "samples": 25, "min_samples": 5, "budget_s": 12.0},
    "quick": {"warmup_s": 0.1, "sample_s": 0.01, "samples": 7, "min_samples": 3, "budget_s": 2.0},
}
CASE_TIMEOUT_S = 300


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- environments ------------------------------------------------------------------------


def child_env() -> dict[str, str]:
    """The workers' environment: peers' telemetry and tracing off, no API keys.

    ``PYTHONDONTWRITEBYTECODE`` is dropped: with it every fresh interpreter compiles every module
    it imports from source, which users, who have ``.pyc`` files (pip writes them at install, an
    editable checkout on first import), never pay. The first cold-import sample, which may write
    them, is discarded (:func:`run_import_case`).
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not (
            k.endswith("_API_KEY")
            or k.endswith("_API_TOKEN")
            or k in ("VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE")
        )
    }
    env.update(
        {
            "AGNO_TELEMETRY": "false",
            "LANGSMITH_TRACING": "false",
            "LANGCHAIN_TRACING_V2": "false",
            "LANGCHAIN_TRACING": "false",
            "OTEL_SDK_DISABLED": "false",
            "PYTHONHASHSEED": "0",
        }
    )
    return env


def ensure_peer_venv(framework: str) -> tuple[str | None, str | None]:
    """(python, None) once bench/.venvs/<framework> has the pinned requirement, else (None, why)."""
    root = BENCH / ".venvs" / framework
    python = root / "bin" / "python"
    marker = root / ".bench-requirements"
    wanted = "\n".join(PEER_REQUIREMENTS[framework])
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return str(python), None
    log(f"[setup] creating {root.relative_to(REPO)} with {' '.join(PEER_REQUIREMENTS[framework])}")
    try:
        venv.EnvBuilder(with_pip=True, clear=True).create(root)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                *PEER_REQUIREMENTS[framework],
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    except subprocess.CalledProcessError as exc:
        return None, f"pip install failed: {(exc.stderr or '').strip().splitlines()[-1:]}"
    except Exception as exc:
        return None, f"could not create the environment: {exc}"
    marker.write_text(wanted)
    return str(python), None


def interpreters(frameworks: list[str], plait_python: str) -> dict[str, tuple[str | None, str | None]]:
    found: dict[str, tuple[str | None, str | None]] = {}
    for fw in frameworks:
        if fw == "baseline":
            found[fw] = (sys.executable, None)
        elif fw == "plait":
            ok = Path(plait_python).exists()
            found[fw] = (plait_python, None) if ok else (None, f"no interpreter at {plait_python}")
        else:
            found[fw] = ensure_peer_venv(fw)
    return found


def package_versions(python: str, names: list[str]) -> dict[str, str]:
    if not names:
        return {}
    code = (
        "import json, importlib.metadata as m\n"
        "def v(n):\n"
        "    try: return m.version(n)\n"
        "    except m.PackageNotFoundError: return 'not installed'\n"
        f"print(json.dumps({{n: v(n) for n in {names!r}}}))"
    )
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60, check=True)
        versions: dict[str, str] = json.loads(out.stdout)
        return versions
    except Exception as exc:
        return {"error": str(exc)}


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = "unknown"
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain"], capture_output=True, text=True, check=True
        ).stdout.strip()
        commit += " (uncommitted changes)" if dirty else ""
    except Exception:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "plait_commit": commit,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }


# -- running the workers -----------------------------------------------------------------


def run_worker(
    python: str, framework: str, workload: str, params: dict[str, Any], timing: dict[str, Any]
) -> dict[str, Any]:
    cmd = [python, str(BENCH / "worker.py"), framework, workload, json.dumps(params), json.dumps(timing)]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=CASE_TIMEOUT_S, env=child_env(), cwd=str(REPO)
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {CASE_TIMEOUT_S}s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("BENCH_RESULT "):
            result: dict[str, Any] = json.loads(line[len("BENCH_RESULT ") :])
            return result
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
    return {"ok": False, "error": f"worker exited {proc.returncode}: {tail[0][:200]}"}


def run_import_case(python: str, framework: str, case: Case) -> dict[str, Any]:
    """Median import time over fresh interpreters; the first one is discarded (writes .pyc)."""
    times: list[int] = []
    statement = ""
    for i in range(case.params["repeats"] + 1):
        result = run_worker(python, framework, case.workload, {}, {})
        if not result.get("ok"):
            return result
        statement = result["statement"]
        if i:
            times.append(result["import_ns"])
    times.sort()
    q = statistics.quantiles(times, n=10, method="inclusive") if len(times) > 1 else [times[0]] * 9
    return {
        "ok": True,
        "statement": statement,
        "variants": {
            "": {
                "ok": True,
                "median_ns": statistics.median(times),
                "p10_ns": q[0],
                "p90_ns": q[-1],
                "samples": len(times),
                "runs_per_sample": 1,
            }
        },
    }


# -- turning results into rows -----------------------------------------------------------


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or a <= 0 or b <= 0:
        return "-"
    return f"{a / b:.2f}x"


def variant_of(result: dict[str, Any] | None, name: str = "") -> tuple[dict[str, Any] | None, str | None]:
    """(stats, None) for a measured variant, else (None, cell text with reason)."""
    if result is None:
        return None, None
    if not result.get("ok"):
        return None, _status(result)
    v = result["variants"].get(name)
    if v is None:
        return None, "FAILED: missing variant"
    if not v.get("ok"):
        return None, _status(v)
    return v, None


def _status(r: dict[str, Any]) -> str:
    if "na" in r:
        return f"n/a: {r['na']}"
    return f"FAILED: {r.get('error', 'unknown error')}"


UNITS = {
    "overhead_per_step": "us/step overhead",
    "wall": "ms wall",
    "per_run": "us/run",
    "per_iteration": "us/iteration",
    "per_event": "us/event",
    "import": "ms",
    "memory": "KiB peak/run",
}


def metric_value(case: Case, stats: dict[str, Any], base: dict[str, Any] | None, fw: str) -> float:
    m = float(stats.get("median_ns", 0.0))
    n = int(case.params.get("n", 1))
    if case.metric == "overhead_per_step":
        if fw == "baseline":
            return m / n / 1e3  # the work itself, per step
        return (m - float(base["median_ns"] if base else 0.0)) / n / 1e3
    if case.metric == "wall":
        return m / 1e6
    if case.metric == "per_run":
        return m / 1e3
    if case.metric == "per_iteration":
        return m / n / 1e3
    if case.metric == "per_event":
        return m / max(int(stats.get("events_per_run", 1)), 1) / 1e3
    if case.metric == "import":
        return m / 1e6
    if case.metric == "memory":
        return float(stats["median_bytes"]) / 1024
    raise KeyError(case.metric)


def rows_for(case: Case, results: dict[str, dict[str, Any]], selected: list[str]) -> list[dict[str, Any]]:
    if case.group in ("H", "R"):
        return _option_rows(case, results.get("plait"))
    row: dict[str, Any] = {
        "key": case.key,
        "label": case.label,
        "unit": UNITS[case.metric],
        "cells": {},
        "values": {},
        "notes": [],
    }
    base, _ = variant_of(results.get("baseline"))
    for fw in FRAMEWORKS:
        if fw not in case.frameworks or fw not in selected:
            row["cells"][fw] = "-"
            continue
        stats, problem = variant_of(results.get(fw))
        if stats is None:
            row["cells"][fw] = problem.split(":")[0] if problem else "-"
            if problem:
                row["notes"].append(f"{DISPLAY[fw]} {problem}")
            continue
        value = metric_value(case, stats, base, fw)
        row["values"][fw] = value
        row["cells"][fw] = fmt(value)
        if case.metric == "per_event":
            row["notes"].append(f"{DISPLAY[fw]} {stats['events_per_run']} ev")
    if case.metric == "overhead_per_step" and base is None:
        row["notes"].append("no baseline run: overhead columns are the raw time per step")
    v = row["values"]
    row["plait_vs_agno"] = ratio(v.get("plait"), v.get("agno"))
    row["plait_vs_langgraph"] = ratio(v.get("plait"), v.get("langgraph"))
    row["plait_vs_baseline"] = ratio(v.get("plait"), v.get("baseline")) if case.metric == "wall" else ""
    if case.metric == "wall":
        for fw in ("agno", "langgraph"):
            if fw in v and "baseline" in v:
                row["notes"].append(f"{DISPLAY[fw]} {ratio(v[fw], v['baseline'])} base")
    return [row]


def _option_rows(case: Case, result: dict[str, Any] | None) -> list[dict[str, Any]]:
    names = {"tracing": ("off", "on"), "checkpoint": ("none", "sqlite"), "ray": ("inprocess", "ray")}[
        case.workload
    ]
    title = {"tracing": "tracing", "checkpoint": "checkpoints", "ray": "runner"}[case.workload]
    prefix = "R fan-out 1000 async sleeps" if case.workload == "ray" else "H chain 100"
    rows = []
    reference: float | None = None
    for name in names:
        row: dict[str, Any] = {
            "key": f"{case.key}.{name}",
            "label": f"{prefix}, {title} {name}",
            "unit": "us/run",
            "cells": dict.fromkeys(FRAMEWORKS, "-"),
            "values": {},
            "notes": [],
            "plait_vs_agno": "-",
            "plait_vs_langgraph": "-",
            "plait_vs_baseline": "",
        }
        stats, problem = variant_of(result, name)
        if result is None:
            pass
        elif stats is None:
            row["cells"]["plait"] = problem.split(":")[0] if problem else "-"
            row["notes"].append(f"plait {problem}")
        else:
            value = stats["median_ns"] / 1e3
            row["values"]["plait"] = value
            row["cells"]["plait"] = fmt(value)
            if reference is None:
                reference = value
            else:
                row["notes"].append(f"{ratio(value, reference)} vs {names[0]}")
            for k, x in (stats.get("extra") or {}).items():
                row["notes"].append(f"{k}={fmt(x)}")
        rows.append(row)
    return rows


# -- output ------------------------------------------------------------------------------

HEADERS = [
    "workload",
    "unit",
    "baseline",
    "plait",
    "Agno",
    "LangGraph",
    "plait/Agno",
    "plait/LangGraph",
    "plait/base",
    "notes",
]


def table_cells(row: dict[str, Any], note_width: int | None) -> list[str]:
    notes = "; ".join(row["notes"])
    if note_width is not None and len(notes) > note_width:
        notes = notes[: note_width - 3] + "..."
    return [
        row["label"],
        row["unit"],
        *(row["cells"][fw] for fw in FRAMEWORKS),
        row["plait_vs_agno"],
        row["plait_vs_langgraph"],
        row["plait_vs_baseline"],
        notes,
    ]


def text_table(rows: list[dict[str, Any]]) -> str:
    body = [table_cells(r, 70) for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(HEADERS)]
    numeric = set(range(2, 9))

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [line(HEADERS), line(["-" * w for w in widths])]
    out += [line(b) for b in body]
    return "\n".join(out)


def markdown(rows: list[dict[str, Any]], report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        "# plait benchmark results",
        "",
        f"`python bench/run.py{' --quick' if report['quick'] else ''}` on {m['date']}, "
        f"plait commit {m['plait_commit']}.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['platform']}, Python {m['python']}.",
        "",
        "Versions: "
        + "; ".join(
            f"{DISPLAY[fw]}: " + ", ".join(f"{k} {v}" for k, v in vs.items())
            for fw, vs in report["versions"].items()
            if vs
        )
        + ".",
        "",
        "Medians; lower is better. Ratios below 1.00x mean plait is cheaper. Per-step overhead is "
        "(framework - baseline) / N; the baseline column of those rows is the plain-Python cost of "
        "the step itself. `plait/base` is the fan-out wall time against bare asyncio.gather / "
        "one thread per branch. See bench/README.md.",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join("---" if i < 2 or i == 9 else "---:" for i in range(len(HEADERS))) + "|",
    ]
    for r in rows:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in table_cells(r, None)) + " |")
    lines += [
        "",
        "## Per-run times (median, p10-p90)",
        "",
        "| case | framework | median | p10 | p90 | samples x runs |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for key, per_fw in report["results"].items():
        for fw, result in per_fw.items():
            if not result.get("ok"):
                continue
            for name, v in result.get("variants", {}).items():
                if not v.get("ok") or "median_ns" not in v:
                    continue
                label = key + (f" [{name}]" if name else "")
                lines.append(
                    f"| {label} | {DISPLAY[fw]} | {_dur(v['median_ns'])} | {_dur(v['p10_ns'])} | "
                    f"{_dur(v['p90_ns'])} | {v['samples']} x {v.get('runs_per_sample', 1)} |"
                )
    return "\n".join(lines) + "\n"


def _dur(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} us"
    return f"{ns:.0f} ns"


# -- main --------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer samples and smaller N (about 2 minutes)")
    p.add_argument(
        "--only",
        default=",".join(FRAMEWORKS),
        help="comma-separated frameworks: baseline,plait,agno,langgraph",
    )
    p.add_argument(
        "--workloads",
        default="",
        help="comma-separated groups (A-H, M) or case keys (e.g. A,C or A.chain_sync.100)",
    )
    p.add_argument(
        "--plait-python",
        default=str(REPO / ".venv" / "bin" / "python"),
        help="interpreter with plait installed (default: the repository's .venv)",
    )
    p.add_argument("--results-dir", default=str(BENCH / "results"))
    p.add_argument(
        "--profile",
        action="store_true",
        help="instead of benchmarking, print a cProfile of plait's 100-step chain",
    )
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.profile:
        cmd = [args.plait_python, str(BENCH / "worker.py"), "plait", "profile", json.dumps({"n": 100})]
        return subprocess.run(cmd, env=child_env(), cwd=str(REPO)).returncode
    selected = [fw.strip().lower() for fw in args.only.split(",") if fw.strip()]
    unknown = [fw for fw in selected if fw not in FRAMEWORKS]
    if unknown:
        log(f"--only: unknown framework(s) {', '.join(unknown)}; expected some of {', '.join(FRAMEWORKS)}")
        return 2
    wanted = {w.strip() for w in args.workloads.split(",") if w.strip()}
    cases = [c for c in build_cases(args.quick) if not wanted or c.group in wanted or c.key in wanted]
    if not cases:
        log(f"--workloads {args.workloads!r} matches nothing; groups are {', '.join(GROUP_TITLES)}")
        return 2
    timing = TIMING["quick" if args.quick else "full"]
    needed = [fw for fw in selected if any(fw in c.frameworks for c in cases)]
    pythons = interpreters(needed, args.plait_python)
    versions = {fw: package_versions(py, VERSIONS_OF[fw]) for fw, (py, _) in pythons.items() if py}
    started = time.monotonic()
    results: dict[str, dict[str, Any]] = {}
    for case in cases:
        results[case.key] = {}
        for fw in needed:
            if fw not in case.frameworks:
                continue
            python, why = pythons[fw]
            t0 = time.monotonic()
            if python is None:
                result: dict[str, Any] = {"ok": False, "error": why}
            elif case.metric == "import":
                result = run_import_case(python, fw, case)
            else:
                result = run_worker(python, fw, case.workload, case.params, timing)
            results[case.key][fw] = result
            status = "ok" if result.get("ok") else _status(result)[:100]
            log(
                f"[{time.monotonic() - started:6.1f}s] {case.key:<22} {fw:<10} {time.monotonic() - t0:5.1f}s {status}"
            )
    rows = [row for case in cases for row in rows_for(case, results[case.key], selected)]
    report = {
        "quick": args.quick,
        "machine": machine_info(),
        "versions": versions,
        "timing": timing,
        "frameworks": selected,
        "cases": [asdict(c) for c in cases],
        "results": results,
        "rows": rows,
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    out_dir = Path(args.results_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "latest.md").write_text(markdown(rows, report))
    print(text_table(rows))
    print(f"\n{len(cases)} cases in {report['elapsed_s']}s; wrote {out_dir / 'latest.md'} and latest.json")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
