"""A fully-Python workflow: one function controls everything."""

from demo_models import demo_model

from plait import Agent, Team, Workflow, WorkflowExecutionInput

research_team = Team(
    name="Research Team",
    members=[
        Agent(name="Market Researcher", model=demo_model(), instructions="Research market size and growth."),
        Agent(
            name="Tech Researcher", model=demo_model(), instructions="Research the state of the technology."
        ),
    ],
    model=demo_model(),
    mode="broadcast",
)
analysis_agent = Agent(
    name="Analysis Agent", model=demo_model(), instructions="Assess the potential from the research."
)


def custom_workflow_function(workflow: Workflow, execution_input: WorkflowExecutionInput):
    # Custom orchestration logic
    research_result = research_team.run(execution_input.message)
    analysis_result = analysis_agent.run(research_result.content)
    return f"Final: {analysis_result.content}"


workflow = Workflow(
    name="Function-Based Workflow",
    steps=custom_workflow_function,  # Single function replaces all steps
)

if __name__ == "__main__":
    workflow.print_response("Evaluate the market potential for quantum computing applications", markdown=True)
