"""A team of agents on any provider LiteLLM supports (needs plait-litellm and that provider's key).

PLAIT_LITELLM_MODEL=litellm:openai/gpt-4o-mini OPENAI_API_KEY=... python litellm_team.py
"""

import os
import sys

from plait import Agent, Team

model = os.environ.get("PLAIT_LITELLM_MODEL", "litellm:openai/gpt-4o-mini")
team = Team(
    name="Editorial",
    members=[
        Agent(name="Researcher", model=model, instructions="List three facts about the topic."),
        Agent(name="Skeptic", model=model, instructions="List the weakest claim about the topic."),
    ],
    model=model,
    mode="broadcast",
)

if __name__ == "__main__":
    if not any(key.endswith("_API_KEY") for key in os.environ):
        sys.exit(
            "set OPENAI_API_KEY, or the *_API_KEY of the provider behind PLAIT_LITELLM_MODEL, to run this example"
        )
    team.print_response("solid-state batteries", markdown=True)
