"""Golden span trees for every primitive, GenAI attributes, content capture and metrics,
with the real OpenTelemetry SDK (in-memory exporter and metric reader)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from plait import Agent, Condition, Loop, Parallel, RetryPolicy, Router, Step, StepInput, Steps, Workflow
from plait.models import Message, ToolCall
from plait.testing import FunctionModel


@pytest.fixture
def traced() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def render(spans: tuple[ReadableSpan, ...]) -> list[str]:
    """The span tree as indented lines ``name [openinference kind]``, children by start time."""
    assert len({s.context.trace_id for s in spans}) == 1, "more than one trace"
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in spans:
        children.setdefault(span.parent.span_id if span.parent else None, []).append(span)
    lines: list[str] = []

    def walk(parent: int | None, depth: int) -> None:
        for span in sorted(children.get(parent, []), key=lambda s: s.start_time or 0):
            lines.append(f"{'  ' * depth}{span.name} [{span.attributes.get('openinference.span.kind')}]")
            walk(span.context.span_id, depth + 1)

    walk(None, 0)
    assert len(lines) == len(spans), "orphan spans"
    return lines


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    return next(s for s in spans if s.name == name)


def text(label: str):  # type: ignore[no-untyped-def]
    def step(step_input: StepInput) -> str:
        return label

    step.__name__ = label
    return step


@pytest.mark.parametrize(
    ("steps", "golden"),
    [
        ([text("a")], ["invoke_workflow w [CHAIN]", "  step a [CHAIN]"]),
        (
            [Steps(name="g", steps=[text("a"), text("b")])],
            ["invoke_workflow w [CHAIN]", "  steps g [CHAIN]", "    step a [CHAIN]", "    step b [CHAIN]"],
        ),
        (
            [Parallel(text("a"), text("b"), name="p")],
            ["invoke_workflow w [CHAIN]", "  parallel p [CHAIN]", "    step a [CHAIN]", "    step b [CHAIN]"],
        ),
        (
            [Condition(name="c", evaluator=False, steps=[text("a")], else_steps=[text("b")])],
            ["invoke_workflow w [CHAIN]", "  condition c [CHAIN]", "    step b [CHAIN]"],
        ),
        (
            [Loop(name="l", steps=[text("a")], max_iterations=2)],
            [
                "invoke_workflow w [CHAIN]",
                "  loop l [CHAIN]",
                "    loop_iteration l[1] [CHAIN]",
                "      step a [CHAIN]",
                "    loop_iteration l[2] [CHAIN]",
                "      step a [CHAIN]",
            ],
        ),
        (
            [Router(name="r", selector=lambda si: "b", choices=[text("a"), text("b")])],
            ["invoke_workflow w [CHAIN]", "  router r [CHAIN]", "    step b [CHAIN]"],
        ),
    ],
    ids=["step", "steps", "parallel", "condition", "loop", "router"],
)
def test_golden_tree_of_each_primitive(traced, steps, golden) -> None:  # type: ignore[no-untyped-def]
    provider, exporter = traced
    Workflow(name="w", steps=steps, tracer_provider=provider).run("x")
    assert render(exporter.get_finished_spans()) == golden


def test_container_decisions_are_span_attributes(traced) -> None:  # type: ignore[no-untyped-def]
    provider, exporter = traced
    workflow = Workflow(
        name="w",
        steps=[
            Condition(name="c", evaluator=True, steps=[text("a")]),
            Router(name="r", selector=lambda si: ["a", "b"], choices=[text("a"), text("b")]),
            Loop(name="l", steps=[text("x")], max_iterations=3, end_condition=lambda outputs: True),
            Parallel(text("p1"), text("p2"), name="p"),
        ],
        tracer_provider=provider,
    )
    workflow.run("x")
    spans = exporter.get_finished_spans()
    assert by_name(spans, "condition c").attributes["plait.condition.result"] is True
    assert tuple(by_name(spans, "router r").attributes["plait.router.selected"]) == ("a", "b")
    assert by_name(spans, "loop l").attributes["plait.loop.iterations"] == 1
    assert by_name(spans, "loop_iteration l[1]").attributes["plait.loop.iteration"] == 1
    assert by_name(spans, "step p2").attributes["plait.parallel.branch"] == 1
    assert by_name(spans, "invoke_workflow w").attributes["gen_ai.operation.name"] == "invoke_workflow"


def weather_model(messages: list[Message]):  # type: ignore[no-untyped-def]
    if messages[-1].role == "tool":
        return f"It is {messages[-1].content}."
    return ToolCall("call-1", "get_weather", {"city": "Paris"})


def get_weather(city: str) -> str:
    """Weather in a city."""
    return "sunny"


def test_three_level_nested_workflow_with_parallel_agents_tools_and_a_retry(traced) -> None:  # type: ignore[no-untyped-def]
    provider, exporter = traced
    attempts = {"n": 0}

    def flaky(step_input: StepInput) -> str:
        attempts["n"] += 1
        if attempts["n"] == 1:
            raise ConnectionError("blip")
        return "steady"

    agent = Agent(
        name="forecaster", model=FunctionModel(weather_model, model="fn-model"), tools=[get_weather]
    )
    level3 = Workflow(name="level3", steps=[Step(name="ask", agent=agent)])
    level2 = Workflow(
        name="level2",
        steps=[
            Parallel(
                Step(name="deep", workflow=level3),
                Step(
                    name="flaky", executor=flaky, retry=RetryPolicy(max_attempts=2, initial_delay=0, jitter=0)
                ),
                name="fan",
            )
        ],
    )
    Workflow(name="level1", steps=[Step(name="mid", workflow=level2)], tracer_provider=provider).run(
        "weather?"
    )
    spans = exporter.get_finished_spans()
    assert render(spans) == [
        "invoke_workflow level1 [CHAIN]",
        "  workflow mid [CHAIN]",
        "    invoke_workflow level2 [CHAIN]",
        "      parallel fan [CHAIN]",
        "        workflow deep [CHAIN]",
        "          invoke_workflow level3 [CHAIN]",
        "            step ask [CHAIN]",
        "              invoke_agent forecaster [AGENT]",
        "                chat fn-model [LLM]",
        "                execute_tool get_weather [TOOL]",
        "                chat fn-model [LLM]",
        "        step flaky [CHAIN]",
    ]
    chat = [s for s in spans if s.name == "chat fn-model"]
    assert all(s.kind is SpanKind.CLIENT for s in chat)
    assert chat[0].attributes["gen_ai.provider.name"] == "function"
    assert chat[0].attributes["gen_ai.request.model"] == "fn-model"
    assert tuple(chat[0].attributes["gen_ai.response.finish_reasons"]) == ("tool_calls",)
    assert chat[1].attributes["gen_ai.usage.output_tokens"] == 3
    assert "gen_ai.input.messages" not in chat[0].attributes  # content capture is off by default
    tool = by_name(spans, "execute_tool get_weather")
    assert tool.attributes["gen_ai.tool.call.id"] == "call-1"
    flaky_span = by_name(spans, "step flaky")
    assert flaky_span.attributes["plait.retry.attempt"] == 2
    assert [e.name for e in flaky_span.events] == ["retry"]
    assert by_name(spans, "invoke_workflow level3").attributes["plait.nested_depth"] == 2


def test_content_capture_is_opt_in_and_truncated(traced, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    provider, exporter = traced
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    monkeypatch.setenv("PLAIT_CAPTURE_MAX_CHARS", "40")
    agent = Agent(
        name="a", model=FunctionModel(weather_model, model="m"), instructions="Be brief.", tools=[get_weather]
    )
    Workflow(name="w", steps=[agent], tracer_provider=provider).run(
        "What is the weather in Paris today, please?"
    )
    chat = [s for s in exporter.get_finished_spans() if s.name == "chat m"]
    assert (
        chat[0].attributes["gen_ai.input.messages"]
        == '[{"role": "system", "content": "Be brief... [80 more characters]'
    )

    assert (
        chat[1].attributes["gen_ai.output.messages"]
        == '[{"role": "assistant", "content": "It is... [10 more characters]'
    )
    tool = next(s for s in exporter.get_finished_spans() if s.name == "execute_tool get_weather")
    assert tool.attributes["gen_ai.tool.call.result"] == "sunny"


def test_metrics_through_the_metrics_api(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from opentelemetry import metrics

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    monkeypatch.setattr(metrics._internal, "_METER_PROVIDER", provider)
    try:
        agent = Agent(name="a", model=FunctionModel(lambda m: "two words"))

        def boom(step_input: StepInput) -> str:
            raise ValueError("x")

        workflow = Workflow(
            name="w",
            steps=[
                agent,
                Step(
                    name="boom",
                    executor=boom,
                    on_error="skip",
                    retry=RetryPolicy(max_attempts=2, initial_delay=0),
                ),
            ],
        )
        workflow.run("hello there")
        data = reader.get_metrics_data()
        points = {
            metric.name: metric.data.data_points
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
        }
        assert set(points) >= {
            "plait.workflow.duration",
            "plait.step.duration",
            "gen_ai.client.token.usage",
            "plait.step.retries",
        }
        tokens = {dict(p.attributes)["gen_ai.token.type"]: p.sum for p in points["gen_ai.client.token.usage"]}
        assert tokens == {"input": 2, "output": 2}
        assert sum(p.value for p in points["plait.step.retries"]) == 1
    finally:
        provider.shutdown()


def test_agent_team_and_tool_spans_carry_the_genai_attributes(traced) -> None:  # type: ignore[no-untyped-def]
    from plait import Team

    provider, exporter = traced
    agent = Agent(
        name="forecaster", model=FunctionModel(weather_model, model="fn-model"), tools=[get_weather]
    )
    team = Team(
        name="crew",
        members=[agent],
        model=FunctionModel(lambda messages: "all sunny", model="lead-model"),
        mode="broadcast",
    )
    Workflow(name="w", steps=[Step(name="ask", team=team)], tracer_provider=provider).run("weather?")
    spans = exporter.get_finished_spans()
    crew = by_name(spans, "invoke_agent crew").attributes
    assert crew["gen_ai.operation.name"] == "invoke_agent"
    assert crew["gen_ai.request.model"] == "lead-model"
    assert crew["gen_ai.provider.name"] == "function"
    forecaster = by_name(spans, "invoke_agent forecaster").attributes
    assert forecaster["gen_ai.request.model"] == "fn-model"
    assert forecaster["gen_ai.provider.name"] == "function"
    tool = by_name(spans, "execute_tool get_weather").attributes
    assert tool["gen_ai.tool.type"] == "function"
    assert tool["gen_ai.tool.name"] == "get_weather"


def test_a_failed_loop_iteration_records_the_users_error_once(traced) -> None:  # type: ignore[no-untyped-def]
    """Every frame records the user's exception (not plait's StepError wrapper) as the
    span's error, the loop iteration's span too."""
    provider, exporter = traced

    def boom(step_input: StepInput) -> str:
        raise KeyError("missing")

    wf = Workflow(
        name="w", steps=[Loop(name="l", steps=[Step(name="b", executor=boom)])], tracer_provider=provider
    )
    with pytest.raises(Exception, match="missing"):
        wf.run()
    spans = exporter.get_finished_spans()
    for name in ("step b", "loop_iteration l[1]", "loop l", "invoke_workflow w"):
        span = by_name(spans, name)
        assert span.status.status_code.name == "ERROR", name
        assert span.attributes["error.type"] == "KeyError", name
        assert [e.attributes["exception.type"] for e in span.events if e.name == "exception"] == [
            "KeyError"
        ], name
