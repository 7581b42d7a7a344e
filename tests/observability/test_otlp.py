"""plait-otlp against a real OTLP receiver: what goes over the wire, and what never does.

In-process tests use ``configure(..., set_global=False)`` and pass the provider to the
workflow, so OpenTelemetry's global state stays untouched for the rest of the suite;
the global paths (the ``on_startup`` hook, keeping a user's provider) run in a
subprocess each.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

import plait_otlp
from plait import Agent, Parallel, Step, Workflow
from plait.models import Message, ToolCall
from plait.testing import FunctionModel
from tests.observability.otlp_receiver import OtlpReceiver, ReceivedSpan, otlp_receiver

__all__ = ["otlp_receiver"]

ROOT = Path(__file__).resolve().parents[2]
SECRET = "sk-do-not-log-4242"
CLIENT = 3  # SpanKind.SPAN_KIND_CLIENT in the OTLP protobuf


@pytest.fixture(autouse=True)
def _clean_otel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's shell may carry OTLP settings; these tests set their own."""
    for name in list(os.environ):
        if name.startswith("OTEL_") or name == "PLAIT_PROJECT_NAME":
            monkeypatch.delenv(name)


def lookup_weather(city: str) -> str:
    """The weather in ``city``."""
    return f"sunny in {city}"


def writer_reply(messages: list[Message]) -> str | ToolCall:
    if messages[-1].role == "tool":
        return "A sunny article."
    return ToolCall(id="call-1", name="lookup_weather", arguments={"city": "Paris"})


def nested_workflow(tracer_provider: object = None) -> Workflow:
    researcher = Agent(name="Researcher", model=FunctionModel(lambda m: "three facts", model="fn-research"))
    writer = Agent(
        name="Writer", model=FunctionModel(writer_reply, model="fn-writer"), tools=[lookup_weather]
    )
    draft = Workflow(name="Draft", steps=[Step(name="write", agent=writer)])
    return Workflow(
        name="Report",
        steps=[
            Parallel(
                Step(name="web", agent=researcher), Step(name="papers", agent=researcher), name="research"
            ),
            draft,
        ],
        tracer_provider=tracer_provider,
    )


def by_name(spans: list[ReceivedSpan]) -> dict[str, list[ReceivedSpan]]:
    index: dict[str, list[ReceivedSpan]] = {}
    for span in spans:
        index.setdefault(span.name, []).append(span)
    return index


def one(index: dict[str, list[ReceivedSpan]], name: str) -> ReceivedSpan:
    assert len(index.get(name, [])) == 1, f"expected one span {name!r}, got {sorted(index)}"
    return index[name][0]


# The tree of nested_workflow(): child span name -> parent span name.
EXPECTED_PARENTS = {
    "parallel research": "invoke_workflow Report",
    "step web": "parallel research",
    "step papers": "parallel research",
    "workflow Draft": "invoke_workflow Report",
    "invoke_workflow Draft": "workflow Draft",
    "step write": "invoke_workflow Draft",
    "invoke_agent Writer": "step write",
    "chat fn-writer": "invoke_agent Writer",
    "execute_tool lookup_weather": "invoke_agent Writer",
}


def test_configure_exports_one_nested_trace(
    otlp_receiver: OtlpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    provider = plait_otlp.configure(
        otlp_receiver.url,
        headers={"authorization": f"Bearer {SECRET}"},
        service_name="report-service",
        project_name="plait-tests",
        set_global=False,
    )
    try:
        output = nested_workflow(provider).run("the weather")
        assert output.content == "A sunny article."
        assert provider.force_flush(10_000)  # type: ignore[attr-defined]
    finally:
        provider.shutdown()  # type: ignore[attr-defined]

    spans = otlp_receiver.spans
    index = by_name(spans)
    assert {span.trace_id for span in spans} == {spans[0].trace_id}, "every span is in one trace"
    root = one(index, "invoke_workflow Report")
    assert root.parent_span_id is None
    ids = {span.span_id: span for span in spans}

    def parent_name(span: ReceivedSpan) -> str | None:
        return ids[span.parent_span_id].name if span.parent_span_id else None

    for child, parent in EXPECTED_PARENTS.items():
        assert index.get(child), f"no span {child!r}"
        assert {parent_name(span) for span in index[child]} == {parent}, child
    assert sorted(parent_name(span) or "" for span in index["invoke_agent Researcher"]) == [
        "step papers",
        "step web",
    ]
    assert {parent_name(span) for span in index["chat fn-research"]} == {"invoke_agent Researcher"}
    assert len(index["chat fn-writer"]) == 2  # the tool call, then the article

    def kind(name: str) -> str:
        return str(index[name][0].attributes["openinference.span.kind"])

    assert [kind(name) for name in ("invoke_workflow Report", "step write", "invoke_agent Writer")] == [
        "CHAIN",
        "CHAIN",
        "AGENT",
    ]
    assert [kind(name) for name in ("chat fn-writer", "execute_tool lookup_weather")] == ["LLM", "TOOL"]
    chat = index["chat fn-writer"][-1]
    assert chat.kind == CLIENT
    assert chat.attributes["gen_ai.request.model"] == "fn-writer"
    assert chat.attributes["gen_ai.usage.output_tokens"] >= 0
    assert one(index, "invoke_workflow Draft").attributes["plait.nested_depth"] == 1
    assert root.attributes["plait.run.id"] == output.run_id

    assert root.resource["service.name"] == "report-service"
    assert root.resource["openinference.project.name"] == "plait-tests"
    assert {span.scope for span in spans} == {"plait"}

    assert otlp_receiver.headers[0]["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in json.dumps([span.attributes for span in spans] + [root.resource])
    assert SECRET not in caplog.text
    assert f"exporting spans to {otlp_receiver.url}/v1/traces over http/protobuf" in caplog.text


def test_endpoint_credentials_never_reach_the_log(
    otlp_receiver: OtlpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    endpoint = f"http://robot:{SECRET}@127.0.0.1:{otlp_receiver.port}/v1/traces?token={SECRET}"
    provider = plait_otlp.configure(endpoint, headers=f"x-api-key={SECRET}", set_global=False)
    provider.shutdown()  # type: ignore[attr-defined]
    assert SECRET not in caplog.text
    assert f"http://127.0.0.1:{otlp_receiver.port}/v1/traces over http/protobuf" in caplog.text


def test_an_unknown_protocol_is_refused() -> None:
    with pytest.raises(ValueError, match=r"'http/json', expected one of http/protobuf, grpc"):
        plait_otlp.configure("http://127.0.0.1:1", protocol="http/json", set_global=False)  # type: ignore[arg-type]


def test_grpc_protocol_exports_to_a_grpc_receiver() -> None:
    received: list[trace_service_pb2.ExportTraceServiceRequest] = []

    class Servicer(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request: trace_service_pb2.ExportTraceServiceRequest, context: object) -> object:
            received.append(request)
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Servicer(), server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        provider = plait_otlp.configure(f"http://127.0.0.1:{port}", protocol="grpc", set_global=False)
        nested_workflow(provider).run("the weather")
        assert provider.force_flush(10_000)  # type: ignore[attr-defined]
        provider.shutdown()  # type: ignore[attr-defined]
    finally:
        server.stop(None).wait()
    names = {
        span.name for r in received for rs in r.resource_spans for ss in rs.scope_spans for span in ss.spans
    }
    assert {"invoke_workflow Report", "invoke_workflow Draft", "chat fn-writer"} <= names


# -- the global paths, each in a fresh interpreter ----------------------------------


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PLAIT_"))}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


ENV_SCRIPT = """
    import logging
    logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s %(message)s")
    from opentelemetry import metrics, trace
    from plait.plugins import build_registry
    from tests.observability.test_otlp import nested_workflow

    registry = build_registry()
    assert not [e for e in registry.errors if e.name == "otlp"], registry.errors
    assert "on_startup" in registry.plugins["otlp"].hooks
    assert type(trace.get_tracer_provider()).__module__.startswith("opentelemetry.sdk"), trace.get_tracer_provider()
    print("run", nested_workflow().run("the weather").run_id)
    metrics.get_meter("plait-tests").create_counter("plait_tests_runs").add(1)
    # no flush, no shutdown: plait-otlp exports at exit
"""


def test_environment_variables_configure_export_on_startup(otlp_receiver: OtlpReceiver) -> None:
    result = run_python(
        ENV_SCRIPT,
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.url,
            "OTEL_EXPORTER_OTLP_HEADERS": f"x-api-key={SECRET}",
            "OTEL_SERVICE_NAME": "env-service",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
            "PLAIT_PROJECT_NAME": "env-project",
        },
    )
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.split()[-1]
    spans = otlp_receiver.wait_for_spans(1)
    root = one(by_name(spans), "invoke_workflow Report")
    assert root.attributes["plait.run.id"] == run_id
    assert root.resource["service.name"] == "env-service"
    assert root.resource["deployment.environment"] == "test"
    assert root.resource["openinference.project.name"] == "env-project"
    assert "plait_tests_runs" in otlp_receiver.metric_names
    assert all(h["x-api-key"] == SECRET for h in otlp_receiver.headers)
    assert f"exporting spans to {otlp_receiver.url}/v1/traces over http/protobuf" in result.stderr
    assert SECRET not in result.stderr + result.stdout


def test_without_an_endpoint_the_plugin_does_nothing() -> None:
    result = run_python(
        """
        from opentelemetry import trace
        from plait.plugins import build_registry

        registry = build_registry()
        assert "otlp" in registry.plugins
        print(type(trace.get_tracer_provider()).__name__)
        """,
        {},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ProxyTracerProvider"


def test_a_provider_the_user_installed_is_kept(otlp_receiver: OtlpReceiver) -> None:
    result = run_python(
        """
        import logging
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        import plait_otlp
        from plait.plugins import build_registry
        from tests.observability.test_otlp import nested_workflow

        exporter = InMemorySpanExporter()
        mine = TracerProvider()
        mine.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(mine)

        build_registry()                          # on_startup: configure() finds mine
        assert plait_otlp.configure() is mine     # and so does a direct call
        assert trace.get_tracer_provider() is mine
        nested_workflow().run("the weather")
        print(len(exporter.get_finished_spans()))
        """,
        {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.url, "OTEL_METRICS_EXPORTER": "none"},
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) >= 10
    assert result.stderr.count("a tracer provider is already installed (TracerProvider); keeping it") == 1
    assert otlp_receiver.spans == []
