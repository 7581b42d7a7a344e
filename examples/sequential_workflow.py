"""Sequential workflow: a team, a function and an agent, one after another."""

from demo_models import demo_model

from plait import Agent, StepOutput, Team, Workflow

researcher = Agent(name="Researcher", model=demo_model(), instructions="Research the topic thoroughly.")
analyst = Agent(name="Analyst", model=demo_model(), instructions="Analyse the market and competitors.")
research_team = Team(
    name="Research Team", members=[researcher, analyst], model=demo_model(), mode="broadcast"
)
content_agent = Agent(
    name="Content Agent", model=demo_model(), instructions="Write a clear briefing from the material."
)


def data_preprocessor(step_input):
    # Custom preprocessing logic

    # Or you can also run any agent/team over here itself
    # response = some_agent.run(...)
    return StepOutput(
        content=f"Processed: {step_input.input}"
    )  # <-- Now pass the agent/team response in content here


workflow = Workflow(
    name="Mixed Execution Pipeline",
    steps=[
        research_team,  # Team
        data_preprocessor,  # Function
        content_agent,  # Agent
    ],
)

if __name__ == "__main__":
    workflow.print_response("Analyze the competitive landscape for fintech startups", markdown=True)
