"""The README's snippets run as pasted, by someone with no API key (the pages' code:
tests/test_docs_site.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_snippets(section: str, language: str = "python") -> list[str]:
    """The fenced ``language`` blocks of the README section titled ``section``."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    return re.findall(rf"```{language}\n(.*?)```", text[start : end if end != -1 else None], re.S)


def offline_env(**extra: str) -> dict[str, str]:
    """The environment of a newcomer: no API keys, no example model, no per-word delay."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith("_API_KEY") and k not in ("PLAIT_EXAMPLE_MODEL", "PLAIT_STORAGE")
    }
    return {**env, "PLAIT_OFFLINE_DELAY": "0", "COLUMNS": "200", **extra}


def run_offline(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, env=offline_env())


def test_first_workflow_runs_as_pasted(tmp_path: Path) -> None:
    snippet = readme_snippets("A first workflow")[0]
    assert 'MODEL = "offline:demo"' in snippet and "openai:" in snippet  # the real provider beside it
    assert 'if __name__ == "__main__":' in snippet
    (tmp_path / "first.py").write_text(snippet, encoding="utf-8")
    result = run_offline([sys.executable, "first.py"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    last = result.stdout.strip().splitlines()
    assert any(line.startswith("COMPLETED ### The history of artificial intelligence") for line in last)
    assert "Key findings" in result.stdout  # the researchers' branches were streamed
    assert "is less a story of sudden breakthroughs" in result.stdout or "Few subjects" in result.stdout


def test_first_workflow_file_runs_with_plait_run(tmp_path: Path) -> None:
    """`plait run first.py:workflow` imports the file: the __main__ guard keeps it from running twice."""
    (tmp_path / "first.py").write_text(readme_snippets("A first workflow")[0], encoding="utf-8")
    plait = Path(sys.executable).with_name("plait")
    result = run_offline(
        [str(plait), "run", "first.py:workflow", "The history of artificial intelligence"], tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Research and Write") >= 1
    assert "WorkflowRunOutput" not in result.stdout and "COMPLETED ###" not in result.stdout


def test_core_readme_example_runs_offline(tmp_path: Path) -> None:
    """core/README.md is plait's PyPI page: its example must run as pasted, too."""
    text = (ROOT / "core" / "README.md").read_text(encoding="utf-8")
    snippet = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    assert '"offline:demo"' in snippet
    (tmp_path / "first.py").write_text(snippet, encoding="utf-8")
    result = run_offline([sys.executable, "first.py"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("COMPLETED\n### The history of tea\n")


def test_the_readme_stays_one_page() -> None:
    """The README is what a newcomer needs; everything else is a page of the site (docs/)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    sections = re.findall(r"^## (.+)$", text, re.M)
    assert sections == ["Two commands", "A first workflow", "The building blocks", "Documentation"], (
        f"README sections {sections}: a new section belongs on a page of docs/ (mkdocs.yml's nav), "
        "linked from the README's Documentation list"
    )
    assert len(text.splitlines()) <= 150, "the README grew past one page: move the detail into docs/"
