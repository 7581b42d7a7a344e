"""A loop that repeats research until it is long enough (or three rounds ran)."""

from demo_models import demo_model

from plait import Agent, Loop, Step, Workflow

researcher = Agent(name="Researcher", model=demo_model(), instructions="Research deeper each time.")
analyst = Agent(name="Analyst", model=demo_model(), instructions="Write the final analysis.")


def quality_check(outputs) -> bool:
    # Return True to break loop, False to continue
    return any(len(output.content) > 500 for output in outputs)


workflow = Workflow(
    name="Quality-Driven Research",
    steps=[
        Loop(
            name="Research Loop",
            steps=[Step(name="Deep Research", agent=researcher)],
            end_condition=quality_check,
            max_iterations=3,
            forward_iteration_output=True,
        ),
        Step(name="Final Analysis", agent=analyst),
    ],
)

if __name__ == "__main__":
    workflow.print_response(
        "Research the impact of renewable energy on global markets", markdown=True, stream=True
    )
