"""Steps that see the session's earlier runs: Agno's add_workflow_history_to_steps.

The writer agent gets the last runs of the session (their input and output) before its
message; the planning function reads them with ``step_input.get_workflow_history()``.
Without storage the runs are kept in memory; with ``$PLAIT_STORAGE`` they are the stored
runs, shared by every process that uses that storage.
"""

import re

from demo_models import demo_model

from plait import Agent, Step, StepInput, StepOutput, Workflow


def plan(step_input: StepInput) -> StepOutput:
    earlier = step_input.get_workflow_history(num_runs=5)  # [(input, output), ...], oldest first
    covered = [topic for topic, _ in earlier]
    note = f"already covered: {', '.join(covered)}" if covered else "a first piece"
    return StepOutput(content=f"Write about {step_input.input} ({note}).")


writer = Agent(name="Writer", model=demo_model(), instructions="You write short articles.")

workflow = Workflow(
    name="Content series",
    steps=[Step(name="plan", executor=plan), Step(name="write", agent=writer)],
    add_workflow_history_to_steps=True,  # the writer gets the last runs before its message
    num_history_runs=2,
)

if __name__ == "__main__":
    for topic in ("tea", "coffee", "cocoa"):
        output = workflow.run(topic, session_id="series")
        print(f"> {topic}: {output.step_outputs[0].content}")
    print(f"the writer wrote: {output.content.splitlines()[0][:70]}")
    sent = workflow.get_last_run_output()
    assert sent is not None
    message = [m.content for m in sent.step_executor_runs[0].messages if m.role == "user"][-1]
    print(f"the writer's last message starts with: {message.splitlines()[0]}")
    runs_given = set(re.findall(r"^\[Workflow Run-(\d+)\]$", message, flags=re.MULTILINE))
    print(f"runs it was given: {len(runs_given)}")
