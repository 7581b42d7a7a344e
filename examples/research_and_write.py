"""The main demo: a nested "Research and Write" workflow, streamed.

The inner workflow researches and summarizes; the outer one runs it as a step
and hands its output to a writer. Every event streams with its nested depth.

    python dev.py demo
"""

from demo_models import announce, demo_model

from plait import Agent, Step, StepInput, StepOutput, Workflow


def create_summary(step_input: StepInput) -> StepOutput:
    previous_content = step_input.get_last_step_content()
    summary = (
        f"Summary of research:\n{previous_content[:500]}..."
        if previous_content
        else "No content to summarize"
    )
    return StepOutput(content=summary)


# Inner workflow: research pipeline
research_agent = Agent(
    name="Research Agent",
    model=demo_model(),
    instructions="You are a research assistant. Provide concise, factual information.",
)

inner_workflow = Workflow(
    name="Research Workflow",
    steps=[
        Step(name="research", agent=research_agent),
        Step(name="summary", executor=create_summary),
    ],
)

# Outer workflow: uses inner workflow as a step
writer_agent = Agent(
    name="Writer Agent",
    model=demo_model(),
    instructions="Take the research provided and write a polished article.",
)

outer_workflow = Workflow(
    name="Research and Write Workflow",
    steps=[
        Step(name="research_phase", workflow=inner_workflow),
        Step(name="writing_phase", agent=writer_agent),
    ],
)

if __name__ == "__main__":
    announce()
    outer_workflow.print_response(
        input="Tell me about the history of artificial intelligence",
        stream=True,
        markdown=True,
    )
