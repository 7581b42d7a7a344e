"""Durable runs: a run that pauses for a person, then continues from its checkpoints.

The run is stored in SQLite, in the store `plait run` and `plait runs` use
(`.plait/plait.db` in the current directory, or `$PLAIT_STORAGE`). It pauses at
the approval inside a parallel branch (the other branch finishes first);
`continue_run` resumes it without running any completed step again, here or in
another process with the same storage:

    plait run examples/human_approval.py:workflow "plait 1.0 is out"   # pauses, prints the run id
    plait runs list --status paused
    plait runs approve RUN_ID            # or --reject
"""

import os

from demo_models import demo_model

from plait import Agent, Approval, Parallel, Step, Workflow

writer = Agent(name="Writer", model=demo_model(), instructions="Write a short announcement.")
checker = Agent(name="Fact Checker", model=demo_model(), instructions="List the claims that need a source.")

storage = os.environ.get("PLAIT_STORAGE") or "sqlite:///.plait/plait.db"

workflow = Workflow(
    name="Announcement",
    steps=[
        Step(name="draft", agent=writer),
        Parallel(
            Step(name="fact check", agent=checker),
            Approval(name="legal", prompt="Legal: may we publish this draft?", on_reject="stop"),
            name="reviews",
        ),
        Step(name="publish", executor=lambda step_input: f"Published after: {', '.join(step_input.message)}"),
    ],
    storage=storage,
)

if __name__ == "__main__":
    paused = workflow.run("plait 1.0 is out")
    print(f"status: {paused.status}; waiting at {[p.step_id for p in paused.pending]}")

    # ... later, maybe in another process: answer and continue.
    done = workflow.continue_run(paused.run_id, approve=True)
    print(f"status: {done.status}; content: {done.content}")
