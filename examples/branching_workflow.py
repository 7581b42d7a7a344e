"""A router that picks an expert by topic."""

from typing import List  # noqa: UP035

from demo_models import demo_model

from plait import Agent, Router, Step, Workflow

tech_expert = Agent(name="Tech Expert", model=demo_model(), instructions="Explain technology developments.")
biz_expert = Agent(name="Business Expert", model=demo_model(), instructions="Explain business developments.")
generalist = Agent(name="Generalist", model=demo_model(), instructions="Explain any topic simply.")
synthesizer = Agent(name="Synthesizer", model=demo_model(), instructions="Synthesize the research.")

tech_step = Step(name="Tech Research", agent=tech_expert)
business_step = Step(name="Business Research", agent=biz_expert)
general_step = Step(name="General Research", agent=generalist)


def route_by_topic(step_input) -> List[Step]:  # noqa: UP006
    topic = step_input.input.lower()

    if "tech" in topic:
        return [Step(name="Tech Research", agent=tech_expert)]
    elif "business" in topic:
        return [Step(name="Business Research", agent=biz_expert)]
    else:
        return [Step(name="General Research", agent=generalist)]


workflow = Workflow(
    name="Expert Routing",
    steps=[
        Router(
            name="Topic Router",
            selector=route_by_topic,
            choices=[tech_step, business_step, general_step],
        ),
        Step(name="Synthesis", agent=synthesizer),
    ],
)

if __name__ == "__main__":
    workflow.print_response(
        "Latest developments in artificial intelligence and machine learning", markdown=True
    )
