"""End to end against a real backend: plait-openai agents, plait-otlp export, Arize Phoenix.

Phoenix lives in its own venv (``python3 tools/phoenix.py install``). Its gRPC
receiver binds every interface and cannot be turned off, so the test runs Phoenix
in a loopback-only network namespace: the test re-runs itself there (a child
pytest under ``unshare --net``), where Phoenix, the OpenAI-protocol server and the
workflow all talk over that namespace's ``lo``, and nothing is reachable from outside.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import plait_otlp
from plait import Agent, Parallel, Step, Workflow, WorkflowRunOutput
from plait_openai import OpenAIModel
from tests.servers.openai_server import OpenAIServer, Reply, openai_server
from tools import phoenix

__all__ = ["openai_server"]

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "plait-e2e"
INSIDE = "PLAIT_PHOENIX_NETNS"  # set for the child run, so it can never recurse
#: (prompt, completion) tokens the OpenAI-protocol server reports, per model.
USAGE = {"gpt-4o-mini": (11, 3), "gpt-4o": (29, 7)}


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def phoenix_server() -> Iterator[phoenix.PhoenixProcess]:
    """Phoenix on a free 127.0.0.1 port with a temporary working directory (inside the namespace)."""
    server = phoenix.start()
    try:
        phoenix.wait_healthy(server)
        yield server
    finally:
        server.stop()


def test_phoenix_receives_the_whole_trace(request: pytest.FixtureRequest) -> None:
    if not phoenix.installed():
        _unavailable(
            f"Arize Phoenix is not installed in {phoenix.VENV.name}; install it with: python3 tools/phoenix.py install"
        )
    if os.environ.get(INSIDE) == "1" and not phoenix.loopback_only():
        pytest.fail(f"{INSIDE}=1 but this network namespace has interfaces other than lo")
    if phoenix.loopback_only():
        in_namespace(request.getfixturevalue("phoenix_server"), request.getfixturevalue("openai_server"))
        return
    reason = phoenix.netns_available()
    if reason is not None:
        _unavailable(reason)
    child = phoenix.netns_command(
        [sys.executable, "-m", "pytest", request.node.nodeid, "-q", "-p", "no:cacheprovider", "-s"]
    )
    env = {**os.environ, INSIDE: "1"}
    result = subprocess.run(child, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"the test failed inside its network namespace:\n{output}"
    assert re.search(r"\b1 passed\b", output), output


def in_namespace(server: phoenix.PhoenixProcess, openai: OpenAIServer) -> None:
    listening = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    print(f"listening in the test's network namespace:\n{listening}")
    assert phoenix.loopback_only()
    assert f"127.0.0.1:{server.port} " in listening

    def reply(body: dict[str, Any]) -> Reply:
        model = body["model"]
        return Reply(content="An article." if model == "gpt-4o" else "Three facts.", usage=USAGE[model])

    openai.handler = reply
    memory = InMemorySpanExporter()
    provider = plait_otlp.configure(server.url, project_name=PROJECT, set_global=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))  # type: ignore[attr-defined]
    mini = OpenAIModel("gpt-4o-mini", base_url=openai.base_url, api_key="test-key")
    full = OpenAIModel("gpt-4o", base_url=openai.base_url, api_key="test-key")
    researcher, writer = Agent(name="Researcher", model=mini), Agent(name="Writer", model=full)
    draft = Workflow(name="Draft", steps=[Step(name="write", agent=writer)])
    report = Workflow(
        name="Report",
        steps=[
            Parallel(
                Step(name="web", agent=researcher), Step(name="papers", agent=researcher), name="research"
            ),
            draft,
        ],
        tracer_provider=provider,
    )

    async def run() -> WorkflowRunOutput:
        async with mini, full:  # closes their HTTP clients on this loop
            output: WorkflowRunOutput = await report.arun("the history of tracing")
            return output

    try:
        output = asyncio.run(run())
        assert output.content == "An article."
        assert provider.force_flush(10_000)  # type: ignore[attr-defined]
    finally:
        provider.shutdown()  # type: ignore[attr-defined]

    local = {
        format(s.context.span_id, "016x"): format(s.parent.span_id, "016x") if s.parent else None
        for s in memory.get_finished_spans()
        if s.context is not None
    }
    spans = read_spans(server, count=len(local))
    by_id = {s["context"]["span_id"]: s for s in spans}
    assert set(by_id) == set(local), "Phoenix stored exactly the spans plait made"
    trace_ids = {s["context"]["trace_id"] for s in spans}
    assert trace_ids == {format(s.context.trace_id, "032x") for s in memory.get_finished_spans() if s.context}

    def parent(span: dict[str, Any]) -> str | None:
        return by_id[span["parent_id"]]["name"] if span["parent_id"] else None

    named = {s["name"]: s for s in spans}
    assert parent(named["invoke_workflow Report"]) is None
    assert parent(named["parallel research"]) == "invoke_workflow Report"
    assert parent(named["workflow Draft"]) == "invoke_workflow Report"
    assert parent(named["invoke_workflow Draft"]) == "workflow Draft"
    assert parent(named["step write"]) == "invoke_workflow Draft"
    assert parent(named["invoke_agent Writer"]) == "step write"
    assert parent(named["chat gpt-4o"]) == "invoke_agent Writer"
    researchers = [s for s in spans if s["name"] == "invoke_agent Researcher"]
    assert sorted(parent(s) or "" for s in researchers) == ["step papers", "step web"]
    assert all(parent(s) == "invoke_agent Researcher" for s in spans if s["name"] == "chat gpt-4o-mini")
    for span in spans:  # Phoenix has the parent plait gave each span, and it is in the trace
        assert span["parent_id"] == local[span["context"]["span_id"]], span["name"]
        assert span["parent_id"] is None or span["parent_id"] in by_id, span["name"]

    kinds = {s["name"]: s["span_kind"] for s in spans}
    assert kinds["invoke_workflow Report"] == kinds["step write"] == kinds["parallel research"] == "CHAIN"
    assert kinds["invoke_agent Writer"] == kinds["invoke_agent Researcher"] == "AGENT"
    assert kinds["chat gpt-4o"] == kinds["chat gpt-4o-mini"] == "LLM"

    chat = named["chat gpt-4o"]["attributes"]
    assert (chat["llm.token_count.prompt"], chat["llm.token_count.completion"]) == USAGE["gpt-4o"]
    assert chat["llm.token_count.total"] == sum(USAGE["gpt-4o"])
    assert chat["gen_ai.usage.input_tokens"] == USAGE["gpt-4o"][0]
    assert named["invoke_agent Writer"]["attributes"]["gen_ai.usage.output_tokens"] == USAGE["gpt-4o"][1]
    assert named["invoke_workflow Report"]["attributes"]["plait.run.id"] == output.run_id
    assert all(s["status_code"] != "ERROR" for s in spans)


def read_spans(server: phoenix.PhoenixProcess, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    """The project's spans through Phoenix's REST API, once ``count`` of them are stored."""
    url = f"{server.url}/v1/projects/{urllib.parse.quote(PROJECT)}/spans?limit=1000"
    deadline = time.monotonic() + timeout
    spans: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                spans = json.load(response)["data"]
        except urllib.error.HTTPError as exc:
            if exc.code != 404:  # 404: the project does not exist until its first span is stored
                raise
        if len(spans) >= count:
            return spans
        time.sleep(0.2)
    raise AssertionError(
        f"Phoenix stored {len(spans)} of {count} spans after {timeout:g}s:\n{server.log()[-3000:]}"
    )
