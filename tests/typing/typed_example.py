"""What a type checker knows about plait's results: checked by mypy in test_typed_example.py.

Not a test module (pytest collects ``test_*.py`` only); every line below is a
claim mypy checks (``assert_type`` fails on a mismatch and on ``Any``). The
functions also run, offline, so the example stays true at runtime.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, assert_type

from pydantic import BaseModel

import plait
from plait import Agent, AgentRunOutput, StepOutput
from plait.events import Event
from plait.hookspecs import RegisterModel, RegisterStepType
from plait.models import Model
from plait.testing import FunctionModel


class Forecast(BaseModel):
    city: str
    celsius: float


def forecast_model() -> Model:
    return FunctionModel(lambda messages: '{"city": "Paris", "celsius": 21.5}')


def agents() -> None:
    forecaster = Agent(name="forecaster", model=forecast_model(), output_schema=Forecast)
    assert_type(forecaster, Agent[Forecast])
    output = forecaster.run("Paris tomorrow?")
    assert_type(output, AgentRunOutput[Forecast])
    forecast: Forecast = output.content
    assert forecast.celsius == 21.5

    writer = Agent(name="writer", model=FunctionModel(lambda messages: "Sunny."))
    assert_type(writer, Agent[str])
    text: str = writer.run("Paris tomorrow?").content
    assert text == "Sunny."

    events = writer.run("Paris tomorrow?", stream=True)
    assert_type(events, Iterator[Event])
    for event in events:
        assert isinstance(event, Event)

    any_agent: Agent = forecaster  # a bare Agent is Agent[Any]: any agent fits
    assert_type(any_agent.run("x").content, Any)


async def agents_async() -> None:
    forecaster = Agent(name="forecaster", model=forecast_model(), output_schema=Forecast)
    forecast: Forecast = (await forecaster.arun("Paris tomorrow?")).content
    assert forecast.city == "Paris"
    events = forecaster.arun("Paris tomorrow?", stream_events=True)
    assert_type(events, AsyncIterator[Event])
    async for event in events:
        assert isinstance(event, Event)


def public_names() -> None:
    output = StepOutput(content="x")
    assert_type(output, plait.StepOutput)
    assert StepOutput.__module__ == "plait"


class Plugin:
    """A plugin's registration hooks, typed with the callbacks of plait.hookspecs."""

    @plait.hookimpl
    def register_models(self, register: RegisterModel) -> None:
        register("forecast", lambda model_name, **options: forecast_model())

    @plait.hookimpl
    def register_step_types(self, register: RegisterStepType) -> None:
        register(plait.Step)
