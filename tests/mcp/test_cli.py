"""``plait mcp-tools`` (plait-mcp's command): what an MCP server gives an agent, from the command line."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.mcp.conftest import STDIO

pytestmark = pytest.mark.slow


def plait(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "plait", "mcp-tools", *args], capture_output=True, text=True, timeout=60
    )


def test_lists_the_tools_with_filters_and_prefix_as_text_and_json() -> None:
    command = shlex.join(STDIO)
    result = plait(command, "--include", "add", "--include", "echo", "--prefix", "calc")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"{command}: 2 tools"
    assert "calc_add: Add two integers.\n  a (integer): The first addend\n" in result.stdout
    assert "calc_echo: Return the text as it was given.\n  text (string)" in result.stdout

    listed = json.loads(plait(command, "--json", "--env", "PLAIT_MCP_TEST=1").stdout)
    add = next(t for t in listed if t["name"] == "add")
    assert add["parameters"]["required"] == ["a", "b"] and add["description"] == "Add two integers."


def test_errors_name_the_server_or_the_option(tmp_path: Path) -> None:
    missing = plait(str(tmp_path / "nothing-here"))
    assert missing.returncode == 1
    assert "plait mcp-tools: MCP server" in missing.stderr and "could not connect" in missing.stderr
    bad = plait(shlex.join(STDIO), "--env", "NOEQUALS")
    assert bad.returncode == 1 and "--env expects NAME=VALUE, got 'NOEQUALS'" in bad.stderr
    neither = plait()
    assert neither.returncode == 1 and "give a command" in neither.stderr
