"""Provider examples run against the real APIs when their keys are set, and are skipped otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROVIDERS = Path(__file__).resolve().parent.parent / "examples" / "providers"
KEYS = {
    "openai_agent.py": "OPENAI_API_KEY",
    "anthropic_agent.py": "ANTHROPIC_API_KEY",
    "litellm_team.py": "OPENAI_API_KEY",
}


def test_every_provider_example_is_listed() -> None:
    assert sorted(p.name for p in PROVIDERS.glob("*.py")) == sorted(KEYS)


@pytest.mark.parametrize("name", sorted(KEYS))
def test_provider_example(name: str) -> None:
    key = KEYS[name]
    if not os.environ.get(key):
        pytest.skip(f"{name} calls a real API: set {key} to run it (it costs a few tokens)")
    result = subprocess.run(
        [sys.executable, str(PROVIDERS / name)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


@pytest.mark.parametrize("name", sorted(KEYS))
def test_provider_example_says_what_it_needs_without_a_key(name: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    result = subprocess.run(
        [sys.executable, str(PROVIDERS / name)], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 1 and "API_KEY" in result.stderr
