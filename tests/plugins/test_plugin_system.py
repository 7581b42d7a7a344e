"""The plugin system: hooks, discovery, isolation of failures, switches, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from plait import (
    Agent,
    Parallel,
    RetryPolicy,
    StepContext,
    StepError,
    StepInput,
    StepNode,
    StepOutput,
    Workflow,
    hookimpl,
)
from plait.errors import PluginError
from plait.events import StepCompletedEvent, StepRetryEvent, StepStartedEvent
from plait.plugins import build_registry
from plait.testing import FunctionModel, plugin_registry

from .conftest import make_distribution

ROOT = Path(__file__).resolve().parents[2]


class Shout(StepNode):
    """A tiny third-party step type: upper-cases the previous content."""

    step_type = "shout"

    async def execute(self, step_input: StepInput, ctx: StepContext) -> StepOutput:
        return StepOutput(content=str(step_input.message).upper() + "!")

    @classmethod
    def wrap(cls, obj: Any) -> StepNode | None:
        return cls(name="shout") if obj == "SHOUT" else None


class ShoutPlugin:
    @hookimpl
    def register_step_types(self, register: Any) -> None:
        register(Shout)

    @hookimpl
    def register_models(self, register: Any) -> None:
        register(
            "fake", lambda name, **options: FunctionModel(lambda messages: f"fake {name} says hi", model=name)
        )

    @hookimpl
    def register_commands(self, register: Any) -> None:
        register(
            "shout",
            lambda parser: parser.add_argument("text"),
            lambda args: print(args.text.upper()),
            "shout text",
        )


def test_third_party_step_type_nested_and_parallel_with_events_and_spans() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with plugin_registry(ShoutPlugin()) as registry:
        assert registry.entries("step_type")["shout"].plugin == "ShoutPlugin"
        inner = Workflow(name="inner", steps=[Parallel(Shout(name="loud"), lambda si: "quiet", name="p")])
        workflow = Workflow(
            name="outer", steps=[lambda si: "hello", inner, "SHOUT"], tracer_provider=provider
        )
        events = list(workflow.run("x", stream=True, stream_events=True))
    output = workflow.get_last_run_output()
    # the Parallel's content, read as text, is Agno's sectioned text
    parallel = (
        "## Parallel Execution Results\n\n### ✅ SUCCESS: loud\nHELLO!\n\n### ✅ SUCCESS: <lambda>\nquiet"
    )
    assert output is not None and output.content == parallel.upper() + "!"
    started = {(e.step_id, e.step_type, e.nested_depth) for e in events if isinstance(e, StepStartedEvent)}
    assert ("inner/p/loud", "shout", 1) in started and ("shout", "shout", 0) in started
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert spans["shout loud"].parent.span_id == spans["parallel p"].context.span_id  # type: ignore[union-attr]
    provider.shutdown()


def test_third_party_step_failure_names_its_type_and_path() -> None:
    class Broken(StepNode):
        step_type = "broken"

        async def execute(self, step_input: StepInput, ctx: StepContext) -> StepOutput:
            raise RuntimeError("kaput")

    with pytest.raises(StepError, match="Broken 'inner/b' failed: RuntimeError: kaput"):
        Workflow(name="w", steps=[Workflow(name="inner", steps=[Broken(name="b")])]).run("x")


def test_model_prefix_resolves_from_a_string() -> None:
    with plugin_registry(ShoutPlugin()):
        agent = Agent(name="a", model="fake:model-7", instructions="hi")
        assert agent.run("x").content == "fake model-7 says hi"


def test_unknown_prefix_says_what_to_install() -> None:
    with plugin_registry(), pytest.raises(PluginError, match="pip install plait-anthropic"):
        Agent(name="a", model="anthropic:claude", instructions="hi").run("x")


def test_duplicate_registration_names_both_plugins() -> None:
    class Other:
        @hookimpl
        def register_models(self, register: Any) -> None:
            register("fake", lambda name, **options: None)

    with pytest.raises(PluginError, match="'fake' is registered by both 'ShoutPlugin' and 'Other'"):
        build_registry([ShoutPlugin(), Other()], entry_points=False, strict=True)
    registry = build_registry([ShoutPlugin(), Other()], entry_points=False, strict=False)
    assert [e.name for e in registry.errors] == ["Other"]
    assert registry.entries("model")["fake"].plugin == "ShoutPlugin"


def test_misspelled_hook_is_reported_not_ignored() -> None:
    class Typo:
        @hookimpl
        def register_step_type(self, register: Any) -> None:  # missing "s"
            pass

    registry = build_registry([Typo()], entry_points=False, strict=False)
    assert len(registry.errors) == 1
    assert (
        "register_step_type" in registry.errors[0].error and "register_step_types" in registry.errors[0].error
    )


def test_invalid_registration_is_rejected_with_the_reason() -> None:
    class Bad:
        @hookimpl
        def register_step_types(self, register: Any) -> None:
            register(dict)

    registry = build_registry([Bad()], entry_points=False, strict=False)
    assert "expected a subclass of plait.StepNode" in registry.errors[0].error


BROKEN_MODULE = "raise ImportError('this plugin needs a library that is not installed')\n"
GOOD_MODULE = """
from plait import hookimpl

@hookimpl
def register_runners(register):
    from plait.runners import InProcessRunner
    register("good-runner", lambda **options: InProcessRunner(max_threads=2))
"""


def _cli(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(tmp_path), "COLUMNS": "200", **env}
    for key in ("PLAIT_LOAD_PLUGINS", "PLAIT_DISABLE_PLUGINS", "PLAIT_STRICT_PLUGINS"):
        if key not in env:
            environment.pop(key, None)
    return subprocess.run(
        [sys.executable, "-m", "plait.cli", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        cwd=tmp_path,  # `plait run` stores runs in ./.plait: keep them out of the repository
    )


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    make_distribution(tmp_path, "plait-broken", {"broken": "broken_plugin"}, {"broken_plugin": BROKEN_MODULE})
    make_distribution(tmp_path / "more", "plait-good", {"good": "good_plugin"}, {"good_plugin": GOOD_MODULE})
    (tmp_path / "sitecustomize.py").write_text(f"import sys; sys.path.append({str(tmp_path / 'more')!r})\n")
    return tmp_path


def test_broken_plugin_is_reported_and_breaks_nothing(installed: Path) -> None:
    result = _cli(["plugins", "--json"], installed)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    plugins = {p["name"]: p for p in data["plugins"]}
    assert plugins["good"]["distribution"] == "plait-good"
    assert plugins["good"]["registered"] == [{"kind": "runner", "key": "good-runner"}]
    assert plugins["http"]["registered"] == [{"kind": "step_type", "key": "http"}]  # the example plugin
    assert data["errors"][0]["name"] == "broken"
    assert data["errors"][0]["distribution"] == "plait-broken"
    assert "needs a library that is not installed" in data["errors"][0]["error"]
    table = _cli(["plugins"], installed)
    assert "failed to load broken (plait-broken)" in table.stdout
    strict = _cli(["plugins"], installed, PLAIT_STRICT_PLUGINS="1")
    assert strict.returncode != 0 and "plugin 'broken' (plait-broken) failed to import" in strict.stderr


def test_environment_switches(installed: Path) -> None:
    only = json.loads(_cli(["plugins", "--json"], installed, PLAIT_LOAD_PLUGINS="good").stdout)
    assert sorted(p["name"] for p in only["plugins"]) == ["good", "plait.builtins"]
    assert only["errors"] == []
    none = json.loads(_cli(["plugins", "--json"], installed, PLAIT_LOAD_PLUGINS="").stdout)
    assert [p["name"] for p in none["plugins"]] == ["plait.builtins"]
    disabled = json.loads(_cli(["plugins", "--json"], installed, PLAIT_DISABLE_PLUGINS="broken,http").stdout)
    names = {p["name"] for p in disabled["plugins"]}
    assert {"good", "plait.builtins"} <= names and not {"broken", "http"} & names
    assert disabled["errors"] == []


def test_plugin_commands_appear_in_the_cli() -> None:
    from plait.cli import main

    with plugin_registry(ShoutPlugin()):
        assert main(["shout", "hey"]) == 0


def test_plait_run_streams_events_as_json(tmp_path: Path) -> None:
    target = f"{ROOT / 'examples' / 'research_and_write.py'}:outer_workflow"
    result = _cli(["run", target, "history of AI", "--json"], tmp_path)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[0]["event"] == "WorkflowStarted" and events[-1]["event"] == "WorkflowCompleted"
    assert {e["nested_depth"] for e in events} == {0, 1}
    pretty = _cli(["run", target, "history of AI"], tmp_path)
    assert pretty.returncode == 0 and "nested workflow · depth 1" in pretty.stdout


def test_http_step_plugin_in_a_workflow(http_server) -> None:  # type: ignore[no-untyped-def]
    from plait_http import HttpRequest, HttpStatusError

    url, replies = http_server
    replies.push(503, {"error": "busy"}, {"Retry-After": "0.01"}, path="/weather")
    replies.push(200, {"temperature": 21}, path="/weather")
    weather = HttpRequest(
        name="weather",
        url=url + "/weather?city={input}",
        retry=RetryPolicy(max_attempts=2, initial_delay=0, jitter=0),
    )
    news = HttpRequest(name="news", url=lambda si: f"{url}/news/{si.input}")
    workflow = Workflow(
        name="w",
        steps=[Parallel(weather, news, name="fetch"), lambda si: si.message["weather"]["temperature"]],
    )
    events = list(workflow.run("Paris", stream=True, stream_events=True))
    assert workflow.get_last_run_output().content == 21  # type: ignore[union-attr]
    retry = next(e for e in events if isinstance(e, StepRetryEvent))
    assert retry.step_id == "fetch/weather" and retry.delay == pytest.approx(0.01)
    done = {e.step_id: e for e in events if isinstance(e, StepCompletedEvent)}
    assert done["fetch/news"].content == {"path": "/news/Paris"}
    assert done["fetch/weather"].step_type == "http"
    assert sorted(replies.paths) == ["/news/Paris", "/weather?city=Paris", "/weather?city=Paris"]
    replies.push(404, {"error": "missing"})
    with pytest.raises(StepError) as info:
        Workflow(name="w", steps=[HttpRequest(name="get", url=url + "/x")]).run("x")
    assert isinstance(info.value.__cause__, HttpStatusError) and info.value.__cause__.status == 404


def test_every_hook_and_command_is_documented() -> None:
    from plait import hookspecs

    docs = (ROOT / "README.md").read_text() + "".join(p.read_text() for p in (ROOT / "docs").glob("*.md"))
    hooks = [name for name in dir(hookspecs) if name.startswith(("register_", "on_"))]
    assert len(hooks) == 12
    missing = [name for name in hooks if f"`{name}" not in docs]
    assert not missing, f"hooks missing from the docs: {missing}"
    for command in ("plait plugins", "plait run"):
        assert command in docs


def test_on_startup_runs_once_and_a_failure_is_reported() -> None:
    calls: list[object] = []

    class Starter:
        @hookimpl
        def on_startup(self, registry: Any) -> None:
            calls.append(registry)

    class FailingStarter:
        @hookimpl
        def on_startup(self, registry: Any) -> None:
            raise RuntimeError("no endpoint")

    registry = build_registry([Starter(), FailingStarter()], entry_points=False, strict=False)
    assert calls == [registry]
    assert [(e.name, e.error) for e in registry.errors] == [
        ("FailingStarter", "on_startup failed: RuntimeError: no endpoint")
    ]
