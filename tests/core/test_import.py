"""`import plait` stays light: no provider SDK, not even once plugins are loaded."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ["openai", "anthropic", "litellm", "ray", "psycopg", "redis", "opentelemetry.sdk"]

CODE = """
import json, sys
import plait
before = sorted(m for m in sys.modules if m.split(".")[0] in {heavy} or m == "opentelemetry.sdk")
from plait.plugins import get_registry
registry = get_registry()
after = sorted(m for m in sys.modules if m.split(".")[0] in {heavy} or m == "opentelemetry.sdk")
print(json.dumps({{"before": before, "after": after, "plugins": sorted(registry.plugins)}}))
"""


def test_import_plait_and_loading_plugins_import_no_sdk() -> None:
    code = CODE.format(heavy=set(HEAVY))
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    data = json.loads(result.stdout)
    assert data["before"] == [] and data["after"] == []
    assert "plait.builtins" in data["plugins"]


def test_import_plait_and_building_a_plain_workflow_import_no_pydantic() -> None:
    code = (
        "import sys\nfrom plait import Step, Workflow\n"
        "def f(step_input) -> str:\n    return 'x'\n"
        "Workflow(name='w', steps=[Step(name='s', executor=f)])\n"
        "print('pydantic' in sys.modules, 'plait.storage' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["False", "False"]
