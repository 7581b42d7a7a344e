"""An agent with a tool and typed output on OpenAI (needs OPENAI_API_KEY and plait-openai).

Any OpenAI-compatible server works too: set OPENAI_BASE_URL (vLLM, Ollama, llama.cpp, a LiteLLM proxy).
"""

import os
import sys

from pydantic import BaseModel

from plait import Agent


class Forecast(BaseModel):
    city: str
    summary: str
    temperature_c: float


def get_weather(city: str) -> str:
    """Current weather in a city."""
    return f"{city}: 21°C, clear sky"


agent = Agent(
    name="Weather",
    model=os.environ.get("PLAIT_OPENAI_MODEL", "openai:gpt-4o-mini"),
    instructions="Answer with the tool's data.",
    tools=[get_weather],
    output_schema=Forecast,
)

if __name__ == "__main__":
    if not os.environ.get("OPENAI_API_KEY"):
        sys.exit("set OPENAI_API_KEY (and pip install plait-openai) to run this example")
    print(agent.run("What's the weather in Paris?").content)
