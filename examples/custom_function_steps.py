"""Custom function executors: a function, a configured class, and an async class."""

from demo_models import demo_model

from plait import Agent, Step, StepInput, StepOutput, Workflow

content_planner = Agent(
    name="Content Planner",
    model=demo_model(),
    instructions=[
        "Plan a content schedule over 4 weeks for the provided topic and research content",
        "Ensure that I have posts for 3 posts per week",
    ],
)
researcher = Agent(
    name="Researcher", model=demo_model(), instructions="Research the topic and list key facts."
)


def custom_content_planning_function(step_input: StepInput) -> StepOutput:
    """
    Custom function that does intelligent content planning with context awareness
    """
    message = step_input.input
    previous_step_content = step_input.previous_step_content

    # Create intelligent planning prompt
    planning_prompt = f"""
        STRATEGIC CONTENT PLANNING REQUEST:

        Core Topic: {message}

        Research Results: {previous_step_content[:500] if previous_step_content else "No research results"}

        Please create a detailed, actionable content plan.
    """

    try:
        response = content_planner.run(planning_prompt)

        enhanced_content = f"""
            ## Strategic Content Plan

            **Planning Topic:** {message}

            **Research Integration:** {"✓ Research-based" if previous_step_content else "✗ No research foundation"}

            **Content Strategy:**
            {response.content}
        """.strip()

        return StepOutput(content=enhanced_content)

    except Exception as e:
        return StepOutput(
            content=f"Custom content planning failed: {e!s}",
            success=False,
        )


class CustomExecutor:
    def __init__(self, max_retries: int = 3, use_cache: bool = True):
        # Configuration passed during instantiation
        self.max_retries = max_retries
        self.use_cache = use_cache
        self.call_count = 0  # Stateful tracking

    def __call__(self, step_input: StepInput) -> StepOutput:
        self.call_count += 1

        # Access instance configuration and state
        if self.use_cache and self.call_count > 1:
            return StepOutput(content="Using cached result")

        return StepOutput(
            content=f"Reviewed (call {self.call_count}, max_retries={self.max_retries}):\n{step_input.previous_step_content}"
        )


class AsyncPublisher:
    async def __call__(self, step_input: StepInput) -> StepOutput:
        return StepOutput(
            content=f"Published plan for {step_input.input!r}:\n\n{step_input.previous_step_content}"
        )


workflow = Workflow(
    name="Content Planning",
    steps=[
        Step(name="Research Step", agent=researcher),
        Step(name="Content Planning Step", executor=custom_content_planning_function),
        Step(name="Review Step", executor=CustomExecutor(max_retries=5, use_cache=False)),
        Step(name="Publish Step", executor=AsyncPublisher()),
    ],
)

if __name__ == "__main__":
    workflow.print_response("AI agent frameworks in production", markdown=True)
