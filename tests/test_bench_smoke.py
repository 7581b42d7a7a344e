"""The benchmark harness runs, and plait's adapter passes every correctness check.

Only the plait and baseline columns (Agno and LangGraph need their own virtual
environments, built by `python bench/run.py`); no timing is asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_benchmark_checks_every_plait_case(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            "--quick",
            "--only",
            "plait,baseline",
            "--results-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    data = json.loads((tmp_path / "latest.json").read_text())
    rows = {row["key"]: row for row in data["rows"]}
    assert "FAILED" not in result.stdout
    for key in ("A.chain_sync.10", "B.chain_async.100", "D.nested.3", "F.stream.100", "G.import"):
        matching = [row for k, row in rows.items() if k.startswith(key.rsplit(".", 1)[0])]
        assert matching, f"no row for {key}"
        assert all(isinstance(row["values"].get("plait"), float) for row in matching), matching
    assert "A chain sync, N=10" in (tmp_path / "latest.md").read_text()


def test_checkpoint_bytes_shrink_when_large_state_is_shared() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "checkpoint_bytes.py"), "20", "50"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ratio = float(result.stdout.strip().splitlines()[-1].split("x smaller")[0])
    assert ratio > 5, result.stdout  # 20 copies of a 50 KB document against 2
