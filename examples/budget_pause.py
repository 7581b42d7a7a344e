"""A budget that pauses for a person instead of failing the run, then goes on with more.

The run is stored in SQLite (`.plait/plait.db`, or `$PLAIT_STORAGE`). Its budget allows
one model call; the second would cross it, so the run pauses before making it, saying what
was spent and what the call needs. A person raises the budget and the run goes on, the call
already made still counted:

    plait run examples/budget_pause.py:workflow "plait 1.0 is out"    # pauses, prints the run id
    plait runs show RUN_ID                                            # the budget: 1 of 1 used
    plait runs approve RUN_ID --budget-max-requests 3                 # or --reject
"""

import os

from demo_models import demo_model

from plait import Agent, Budget, Step, Workflow

writer = Agent(name="Writer", model=demo_model(), instructions="Write a short announcement.")
editor = Agent(name="Editor", model=demo_model(), instructions="Tighten the announcement.")

workflow = Workflow(
    name="Budgeted announcement",
    steps=[Step(name="draft", agent=writer), Step(name="edit", agent=editor)],
    budget=Budget(max_requests=1, on_exceeded="pause"),
    storage=os.environ.get("PLAIT_STORAGE") or "sqlite:///.plait/plait.db",
)

if __name__ == "__main__":
    paused = workflow.run("plait 1.0 is out")
    (waiting,) = paused.pending or []
    info = waiting.budget or {}
    print(
        f"status: {paused.status}; waiting at {waiting.step_id}: {info['limit']} {info['used']} of {info['maximum']} used"
    )

    # ... later, maybe in another process: raise the budget and go on.
    done = workflow.continue_run(
        paused.run_id, approve=True, budget=Budget(max_requests=3, on_exceeded="pause")
    )
    print(f"status: {done.status}")
