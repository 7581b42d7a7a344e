"""Two complete pipelines as Steps, chosen by a Router."""

from typing import List  # noqa: UP035

from demo_models import demo_model

from plait import Agent, Router, Step, Steps, Workflow

image_generator = Agent(
    name="Image Generator", model=demo_model(), instructions="Describe the image to generate."
)
image_describer = Agent(
    name="Image Describer", model=demo_model(), instructions="Describe the generated image."
)
video_generator = Agent(
    name="Video Generator", model=demo_model(), instructions="Plan the video to generate."
)
video_describer = Agent(
    name="Video Describer", model=demo_model(), instructions="Describe the generated video."
)

# Define two completely different workflows as Steps
image_sequence = Steps(
    name="image_generation",
    description="Complete image generation and analysis workflow",
    steps=[
        Step(name="generate_image", agent=image_generator),
        Step(name="describe_image", agent=image_describer),
    ],
)

video_sequence = Steps(
    name="video_generation",
    description="Complete video production and analysis workflow",
    steps=[
        Step(name="generate_video", agent=video_generator),
        Step(name="describe_video", agent=video_describer),
    ],
)


def media_sequence_selector(step_input) -> List[Step]:  # noqa: UP006
    """Route to appropriate media generation pipeline"""
    if not step_input.input:
        return [image_sequence]

    message_lower = step_input.input.lower()

    if "video" in message_lower:
        return [video_sequence]
    elif "image" in message_lower:
        return [image_sequence]
    else:
        return [image_sequence]  # Default


# Clean workflow with clear branching
media_workflow = Workflow(
    name="AI Media Generation Workflow",
    description="Generate and analyze images or videos using AI agents",
    steps=[
        Router(
            name="Media Type Router",
            description="Routes to appropriate media generation pipeline",
            selector=media_sequence_selector,
            choices=[image_sequence, video_sequence],  # Clear choices
        )
    ],
)

if __name__ == "__main__":
    media_workflow.print_response("Create an image of a magical forest", markdown=True)
    media_workflow.print_response("Create a cinematic video of city timelapse", markdown=True)
