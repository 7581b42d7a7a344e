"""A streaming agent with a tool on Anthropic (needs ANTHROPIC_API_KEY and plait-anthropic)."""

import os
import sys

from plait import Agent


def get_weather(city: str) -> str:
    """Current weather in a city."""
    return f"{city}: 21°C, clear sky"


agent = Agent(
    name="Weather",
    model=os.environ.get("PLAIT_ANTHROPIC_MODEL", "anthropic:claude-sonnet-4-5"),
    instructions="Answer briefly, using the tool.",
    tools=[get_weather],
)

if __name__ == "__main__":
    if not os.environ.get("ANTHROPIC_API_KEY"):
        sys.exit("set ANTHROPIC_API_KEY (and pip install plait-anthropic) to run this example")
    agent.print_response("What's the weather in Paris?", stream=True)
