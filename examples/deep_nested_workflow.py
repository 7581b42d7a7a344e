"""Three levels of nested workflows with Parallel, streaming events with nested_depth."""

from demo_models import demo_model

from plait import Agent, Parallel, Step, StepInput, StepOutput, Workflow
from plait.events import StepCompletedEvent, StepStartedEvent, WorkflowCompletedEvent, WorkflowStartedEvent

data_agent = Agent(name="Data Agent", model=demo_model(), instructions="Gather data on the topic.")
analysis_agent = Agent(name="Analysis Agent", model=demo_model(), instructions="Analyse the data.")
opinion_agent = Agent(name="Opinion Agent", model=demo_model(), instructions="Give an expert opinion.")
writer = Agent(name="Writer", model=demo_model(), instructions="Write the final report.")


def merge_results(step_input: StepInput) -> StepOutput:
    branches = step_input.previous_step_content  # the Parallel's content: every branch by name
    return StepOutput(content="\n\n".join(f"## {name}\n{content}" for name, content in branches.items()))


# Level 3: Mini-workflows
data_workflow = Workflow(
    name="Data Collection",
    steps=[
        Step(name="gather", agent=data_agent),
        Step(name="analyze", agent=analysis_agent),
    ],
)

opinion_workflow = Workflow(
    name="Expert Opinion",
    steps=[Step(name="opinion", agent=opinion_agent)],
)

# Level 2: Parallel research with Level 3 workflows
level2_workflow = Workflow(
    name="Comprehensive Research",
    steps=[
        Parallel(
            Step(name="data_branch", workflow=data_workflow),
            Step(name="opinion_branch", workflow=opinion_workflow),
            name="parallel_research",
        ),
        Step(name="merge", executor=merge_results),
    ],
)

# Level 1: Top-level pipeline
outer_workflow = Workflow(
    name="Full Pipeline",
    steps=[
        Step(name="research", workflow=level2_workflow),
        Step(name="write", agent=writer),
    ],
)

if __name__ == "__main__":
    for event in outer_workflow.run(input="The future of battery storage", stream=True, stream_events=True):
        if isinstance(event, (WorkflowStartedEvent, StepStartedEvent)):
            depth = event.nested_depth
            name = event.workflow_name
            print(f"{'  ' * depth}[depth={depth}] {type(event).__name__} from {name}: {event.step_id or ''}")
        elif isinstance(event, (StepCompletedEvent, WorkflowCompletedEvent)) and event.nested_depth == 0:
            print(f"[depth=0] {type(event).__name__}: {event.step_id or 'run'}")
    print(outer_workflow.get_last_run_output().content)
