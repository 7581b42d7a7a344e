"""The seeds' examples, unchanged, with real agents: plait-openai and the official SDK
over real HTTP against the local OpenAI-protocol server (``PLAIT_EXAMPLE_MODEL``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers.openai_server import OpenAIServer, openai_server
from tests.test_examples import EXAMPLES, EXPECTED

__all__ = ["openai_server"]


#: the examples with agents (the others, function steps only, have none to point at a server)
WITH_AGENTS = sorted(name for name in EXPECTED if "Agent(" in (EXAMPLES / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", WITH_AGENTS)
def test_example_runs_against_an_openai_compatible_server(
    name: str, openai_server: OpenAIServer, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(
        PLAIT_EXAMPLE_MODEL="openai:gpt-4o-mini",
        OPENAI_BASE_URL=openai_server.base_url,
        OPENAI_API_KEY="test-key",
        PLAIT_STORAGE=f"sqlite:///{tmp_path / 'runs.db'}",
        COLUMNS="200",
    )
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=EXAMPLES,
    )
    assert result.returncode == 0, result.stderr
    requests = openai_server.chat_requests
    assert requests, "no agent talked to the server"
    assert all(r["model"] == "gpt-4o-mini" for r in requests)
    if name in ("human_approval.py", "budget_pause.py", "serve_and_watch.py"):  # statuses, not model text
        assert all(text in result.stdout for text in EXPECTED[name])
    else:
        assert "Echo:" in result.stdout
