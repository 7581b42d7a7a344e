"""Conditional workflow: tech topics get a tech researcher first."""

from demo_models import demo_model

from plait import Agent, Condition, Step, Workflow

tech_researcher = Agent(
    name="Tech Researcher", model=demo_model(), instructions="Research technical developments."
)
general_analyst = Agent(name="General Analyst", model=demo_model(), instructions="Write a general analysis.")


def is_tech_topic(step_input) -> bool:
    topic = step_input.input.lower()
    return any(keyword in topic for keyword in ["ai", "tech", "software"])


workflow = Workflow(
    name="Conditional Research",
    steps=[
        Condition(
            name="Tech Topic Check",
            evaluator=is_tech_topic,
            steps=[Step(name="Tech Research", agent=tech_researcher)],
        ),
        Step(name="General Analysis", agent=general_analyst),
    ],
)

if __name__ == "__main__":
    workflow.print_response("Comprehensive analysis of AI and machine learning trends", markdown=True)
