"""Agno (`agno.workflow`): the same workflow trees as plait, built by `_workflow_api`.

Telemetry is off (`telemetry=False` on every workflow, and `AGNO_TELEMETRY=false` from the
driver); no database, no model, no network.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.adapters import _workflow_api

IMPORT_STATEMENT = "from agno.workflow import Workflow"
FIRST_RUN_STATEMENT = (
    "from agno.workflow import Step, StepOutput, Workflow\n"
    "Workflow(name='w', steps=[Step(name='s', executor=lambda si: StepOutput(content=1))], telemetry=False).run(0)"
)


def _parallel_contents(output: Any) -> list[Any]:
    # Agno's run content after a Parallel is only the last branch; the branches' outputs are
    # the nested steps of the Parallel's step result.
    return [step.content for step in output.step_results[-1].steps]


def _api() -> _workflow_api.Api:
    from agno.workflow import Condition, Loop, Parallel, Router, Step, StepOutput, Workflow

    def make_workflow(name: str, steps: list[Any], **extra: Any) -> Any:
        return Workflow(name=name, steps=steps, telemetry=False, **extra)

    return _workflow_api.Api(
        Workflow=Workflow,
        Step=Step,
        Parallel=Parallel,
        Condition=Condition,
        Loop=Loop,
        Router=Router,
        StepOutput=StepOutput,
        make_workflow=make_workflow,
        parallel_contents=_parallel_contents,
    )


def build(workload: str, params: dict[str, Any]) -> Callable[[], Any]:
    return _workflow_api.build(_api(), workload, params)
