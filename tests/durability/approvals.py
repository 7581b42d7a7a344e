"""A workflow that pauses inside a nested Parallel branch, for cross-process tests:
``python approvals.py URL run`` or ``python approvals.py URL continue RUN_ID yes|no``."""

from __future__ import annotations

import json
import sys

from plait import Approval, Parallel, Step, StepInput, Workflow


def draft(step_input: StepInput) -> str:
    return f"draft about {step_input.input}"


def review(step_input: StepInput) -> str:
    return f"reviewed {step_input.message}"


def publish(step_input: StepInput) -> str:
    checks = step_input.previous_step_content
    return f"published after {sorted(checks)}"


def build(storage: str) -> Workflow:
    inner = Workflow(
        name="editorial",
        steps=[
            Parallel(
                Step(name="review", executor=review),
                Approval(name="legal", prompt="Legal sign-off?", on_reject="stop"),
                name="checks",
            )
        ],
    )
    return Workflow(
        name="publishing",
        steps=[
            Step(name="draft", executor=draft),
            Step(name="edit", workflow=inner),
            Step(name="publish", executor=publish),
        ],
        storage=storage,
    )


if __name__ == "__main__":
    workflow = build(sys.argv[1])
    if sys.argv[2] == "run":
        output = workflow.run("plait")
    else:
        output = workflow.continue_run(sys.argv[3], approve=sys.argv[4] == "yes")
    pending = [p.to_dict() for p in output.pending or []]
    print(
        json.dumps(
            {
                "run_id": output.run_id,
                "status": str(output.status),
                "content": output.content,
                "pending": pending,
            }
        )
    )
