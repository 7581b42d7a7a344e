"""The typed examples next to this file pass mypy (strict, the repository's configuration),
a deliberate mistake does not, and the examples also run."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from . import typed_example

HERE = Path(__file__).parent
ROOT = HERE.parent.parent

MISTAKES = """
from plait import Agent
from plait.testing import FunctionModel
from tests.typing.typed_example import Forecast

forecaster = Agent(name="f", model=FunctionModel(lambda m: "{}"), output_schema=Forecast)
text: str = forecaster.run("x").content

from plait import Step, Workflow

Workflow(name="w", steps=[Step(name="s", executor=lambda si: si)]).run("x", user_id=3)
"""


@pytest.fixture(scope="module")
def mypy_report(tmp_path_factory: pytest.TempPathFactory) -> str:
    mistakes = tmp_path_factory.mktemp("typing") / "mistakes.py"
    mistakes.write_text(MISTAKES)
    files = [str(HERE / "typed_example.py"), str(HERE / "typed_workflow.py"), str(mistakes)]
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "error:" in result.stdout or result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _errors(report: str, filename: str) -> list[str]:
    return [line for line in report.splitlines() if f"{filename}:" in line and "error:" in line]


def test_the_typed_example_passes_mypy(mypy_report: str) -> None:
    assert not _errors(mypy_report, "typed_example.py"), mypy_report


def test_the_typed_workflow_example_passes_mypy(mypy_report: str) -> None:
    assert not _errors(mypy_report, "typed_workflow.py"), mypy_report


def test_a_mistake_is_a_mypy_error(mypy_report: str) -> None:
    """The check can fail: a Forecast agent's content assigned to a str is reported."""
    errors = _errors(mypy_report, "mistakes.py")
    assert len(errors) == 2, mypy_report
    assert (
        'Incompatible types in assignment (expression has type "Forecast", variable has type "str")'
        in errors[0]
    )
    # a run option of the wrong type matches no overload (RunArguments types it)
    # (mypy names the class that defines run: Workflow's entry points, plait._workflow_entry)
    assert 'No overload variant of "run" of "WorkflowRuns" matches argument types "str", "int"' in errors[1]


def test_the_typed_examples_run() -> None:
    typed_example.agents()
    asyncio.run(typed_example.agents_async())
    typed_example.public_names()
    from . import typed_workflow

    typed_workflow.workflows()
    asyncio.run(typed_workflow.workflows_async())
