"""Runners under test: in process, through pickle, and on one local Ray cluster per session.

The Ray cluster is started once (2 CPUs, a small object store, loopback only) and
shared by every test that asks for ``ray_runner``. Its workers trace with their own
OpenTelemetry provider, writing finished spans to JSON lines files that
:func:`worker_spans` reads back, so tests can check that remote spans join the
driver's trace.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.services import require_package

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
RUNNER_KINDS = ["inprocess", "pickle", "ray"]


class JsonLinesSpanExporter:
    """A span exporter for Ray workers: one JSON line per finished span, one file per process."""

    def __init__(self, directory: str) -> None:
        self.path = Path(directory) / f"spans-{os.getpid()}.jsonl"

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        with self.path.open("a") as file:
            for span in spans:
                file.write(json.dumps(span_record(span)) + "\n")
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def span_record(span: Any) -> dict[str, Any]:
    return {
        "name": span.name,
        "trace_id": span.context.trace_id,
        "span_id": span.context.span_id,
        "parent_id": span.parent.span_id if span.parent is not None else None,
        "pid": os.getpid(),
    }


def install_worker_tracing(directory: str) -> None:
    """RayRunner(worker_setup=...): trace in the worker, spans to ``directory``."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(directory)))  # type: ignore[arg-type]
    trace.set_tracer_provider(provider)


def worker_spans(directory: Path, trace_id: int) -> list[dict[str, Any]]:
    """The spans Ray workers finished in ``trace_id``."""
    records = []
    for path in directory.glob("spans-*.jsonl"):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record["trace_id"] == trace_id:
                records.append(record)
    return records


@pytest.fixture(scope="session")
def worker_span_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ray-spans")


@pytest.fixture(scope="session")
def ray_runner(worker_span_dir: Path) -> Iterator[Any]:
    """One local Ray cluster for the whole session, started and shut down by this runner."""
    require_package("plait_ray", "plait-ray")
    from plait_ray import RayRunner

    python_path = os.pathsep.join(p for p in (str(ROOT), str(EXAMPLES), os.environ.get("PYTHONPATH")) if p)
    runner = RayRunner(
        num_cpus=2,
        object_store_memory=100 * 1024 * 1024,
        actors=2,
        resources={"plait_test_slot": 2},
        init_options={
            "num_gpus": 1,  # a pretend GPU, so num_gpus= options can be scheduled
            "log_to_driver": False,
            # workers import the modules steps come from: the tests and the examples
            "runtime_env": {"env_vars": {"PYTHONPATH": python_path}},
        },
        worker_setup=partial(install_worker_tracing, str(worker_span_dir)),
    )
    runner.start()
    yield runner
    runner.close()


@pytest.fixture(params=RUNNER_KINDS)
def runner_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def runner(runner_kind: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    if runner_kind == "inprocess":
        from plait.runners import InProcessRunner

        local = InProcessRunner(max_threads=16)
        yield local
        local.shutdown()
    elif runner_kind == "pickle":
        from plait.testing import PickleRoundTripRunner

        yield PickleRoundTripRunner()
    else:
        yield request.getfixturevalue("ray_runner")
