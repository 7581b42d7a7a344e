"""Named steps: a team, a custom function and an agent."""

from demo_models import demo_model

from plait import Agent, Step, StepInput, StepOutput, Team, Workflow

researcher = Team(
    name="Researcher",
    members=[
        Agent(name="Web Researcher", model=demo_model(), instructions="Find recent web sources."),
        Agent(name="Paper Researcher", model=demo_model(), instructions="Find academic papers."),
    ],
    model=demo_model(),
    mode="coordinate",
)
writer = Agent(name="Writer", model=demo_model(), instructions="Write an engaging article.")


def custom_function(step_input: StepInput) -> StepOutput:
    return StepOutput(content=f"Key findings:\n{step_input.previous_step_content}")


# Named steps for better tracking
workflow = Workflow(
    name="Content Creation Pipeline",
    steps=[
        Step(name="Research Phase", team=researcher),
        Step(name="Analysis Phase", executor=custom_function),
        Step(name="Writing Phase", agent=writer),
    ],
)

if __name__ == "__main__":
    workflow.print_response("AI trends in 2024", markdown=True)
