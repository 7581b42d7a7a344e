"""An async generator executor that streams an agent's events, then yields its StepOutput."""

from collections.abc import AsyncIterator
from typing import Union

from demo_models import demo_model

from plait import Agent, Step, StepInput, StepOutput, Workflow
from plait.events import Event as WorkflowRunOutputEvent

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


async def custom_content_planning_function(
    step_input: StepInput,
) -> AsyncIterator[Union[WorkflowRunOutputEvent, StepOutput]]:  # noqa: UP007
    """
    Custom function that does intelligent content planning with context awareness.

    Note: This function calls content_planner.arun() internally, and all events
    from that agent call will automatically get workflow context injected by
    the workflow execution system - no manual intervention required!
    """
    message = step_input.input
    previous_step_content = step_input.previous_step_content

    planning_prompt = f"""
        STRATEGIC CONTENT PLANNING REQUEST:

        Core Topic: {message}

        Research Results: {previous_step_content[:500] if previous_step_content else "No research results"}

        Please create a detailed, actionable content plan.
    """

    try:
        response_iterator = content_planner.arun(planning_prompt, stream=True, stream_events=True)
        async for event in response_iterator:
            yield event

        response = content_planner.get_last_run_output()

        enhanced_content = f"""
            ## Strategic Content Plan

            **Planning Topic:** {message}

            **Content Strategy:**
            {response.content}
        """.strip()

        yield StepOutput(content=enhanced_content)

    except Exception as e:
        yield StepOutput(
            content=f"Custom content planning failed: {e!s}",
            success=False,
        )


workflow = Workflow(
    name="Streaming Content Planning",
    steps=[
        Step(name="Research Step", agent=researcher),
        Step(name="Content Planning Step", executor=custom_content_planning_function),
    ],
)

if __name__ == "__main__":
    import asyncio

    async def main() -> None:
        async for event in workflow.arun("AI agent frameworks", stream=True, stream_events=True):
            if event.event == "RunContent":
                print(event.content, end="", flush=True)
            elif event.event in ("StepStarted", "StepCompleted"):
                print(f"\n[{event.event}] {event.step_name} (depth {event.nested_depth})")
        print("\n\nFinal:\n" + workflow.get_last_run_output().content)

    asyncio.run(main())
