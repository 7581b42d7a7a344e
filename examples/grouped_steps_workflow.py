"""A reusable sequence of steps (Steps) used as one step."""

from demo_models import demo_model

from plait import Agent, Step, Steps, Workflow

researcher = Agent(name="Researcher", model=demo_model(), instructions="Research the subject.")
writer = Agent(name="Writer", model=demo_model(), instructions="Write an article from the research.")
editor = Agent(name="Editor", model=demo_model(), instructions="Edit the article for clarity.")

# Create a reusable content creation sequence
article_creation_sequence = Steps(
    name="ArticleCreation",
    description="Complete article creation workflow from research to final edit",
    steps=[
        Step(name="research", agent=researcher),
        Step(name="writing", agent=writer),
        Step(name="editing", agent=editor),
    ],
)

# Use the sequence in a workflow
workflow = Workflow(
    name="Article Creation Workflow",
    steps=[article_creation_sequence],  # Single sequence
)

if __name__ == "__main__":
    workflow.print_response("Write an article about renewable energy", markdown=True)
