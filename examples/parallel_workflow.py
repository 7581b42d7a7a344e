"""Parallel research branches, then a synthesis; branches update session state safely."""

from demo_models import demo_model

from plait import Agent, Parallel, Step, StepInput, StepOutput, Workflow

hn_researcher = Agent(
    name="HN Researcher", model=demo_model(), instructions="Research Hacker News discussions."
)
web_researcher = Agent(name="Web Researcher", model=demo_model(), instructions="Research the web.")
academic_researcher = Agent(
    name="Academic Researcher", model=demo_model(), instructions="Research academic papers."
)
synthesizer = Agent(
    name="Synthesizer", model=demo_model(), instructions="Combine the research into one report."
)


def count_sources(step_input: StepInput, run_context) -> StepOutput:
    # Each branch works on its own copy of the session state; the counts merge back.
    run_context.session_state["sources"] += 1
    return StepOutput(content="1 internal source checked")


workflow = Workflow(
    name="Parallel Research Pipeline",
    steps=[
        Parallel(
            Step(name="HackerNews Research", agent=hn_researcher),
            Step(name="Web Research", agent=web_researcher),
            Step(name="Academic Research", agent=academic_researcher),
            Step(name="Internal Sources", executor=count_sources),
            name="Research Step",
        ),
        Step(name="Synthesis", agent=synthesizer),  # Combines the results and produces a report
    ],
    session_state={"sources": 0},
)

if __name__ == "__main__":
    output = workflow.print_response("Write about the latest AI developments", markdown=True)
    print("session state:", output.session_state)
