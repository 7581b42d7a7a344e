"""plait: the same workflow trees as Agno (built by `_workflow_api`), plus plait's own options.

Workload H measures two options against the plain 100-step chain in the same process:
tracing through the OpenTelemetry SDK (a `TracerProvider` whose only span processor counts spans
and exports nothing) and per-step checkpoints to SQLite (`storage="sqlite:///<tmpfile>"`). An
option plait does not accept yet is reported as "n/a" with the reason, not as a failure.
"""

from __future__ import annotations

import atexit
import os
import tempfile
from collections.abc import Callable
from typing import Any

from bench.adapters import NotSupported, _workflow_api

IMPORT_STATEMENT = "from plait import Workflow"
FIRST_RUN_STATEMENT = (
    "from plait import Step, StepOutput, Workflow\n"
    "Workflow(name='w', steps=[Step(name='s', executor=lambda si: StepOutput(content=1))]).run(0)"
)


def _parallel_contents(output: Any) -> list[Any]:
    # plait's content after a Parallel is the branches' contents by name.
    if isinstance(output.content, dict):
        return list(output.content.values())
    return [step.content for step in output.step_outputs[-1].steps]


def _api() -> _workflow_api.Api:
    from plait import Condition, Loop, Parallel, Router, Step, StepOutput, Workflow

    def make_workflow(name: str, steps: list[Any], **extra: Any) -> Any:
        return Workflow(name=name, steps=steps, **extra)

    return _workflow_api.Api(
        Workflow=Workflow,
        Step=Step,
        Parallel=Parallel,
        Condition=Condition,
        Loop=Loop,
        Router=Router,
        StepOutput=StepOutput,
        make_workflow=make_workflow,
        parallel_contents=_parallel_contents,
    )


def _chain_run(workflow: Any) -> Callable[[], Any]:
    return lambda: workflow.run(0).content


def _option_unsupported(option: str, exc: Exception) -> NotSupported:
    return NotSupported(f"plait rejected {option}: {type(exc).__name__}: {exc}")


def _tracing(api: _workflow_api.Api, n: int) -> dict[str, Any]:
    variants: dict[str, Any] = {"off": _chain_run(_workflow_api.chain_workflow(api, n))}
    try:
        from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    except ImportError as exc:
        variants["on"] = NotSupported(f"opentelemetry-sdk is not installed: {exc}")
        return variants

    class CountingProcessor(SpanProcessor):  # type: ignore[misc]
        """Ends every span in the SDK and keeps nothing: the SDK's cost, no exporter's."""

        def __init__(self) -> None:
            self.ended = 0

        def on_end(self, span: Any) -> None:
            self.ended += 1

    provider = TracerProvider()
    counter = CountingProcessor()
    provider.add_span_processor(counter)
    try:
        traced = _workflow_api.chain_workflow(api, n, tracer_provider=provider)
    except TypeError as exc:
        variants["on"] = _option_unsupported("tracer_provider=", exc)
        return variants
    runs = [0]

    def run_traced() -> Any:
        before = counter.ended
        content = traced.run(0).content
        if counter.ended == before:
            raise NotSupported("tracer_provider accepted but no span was recorded")
        runs[0] += 1
        return content

    run_traced.extra = lambda: {"spans_per_run": counter.ended / max(runs[0], 1)}  # type: ignore[attr-defined]
    variants["on"] = run_traced
    return variants


def _remove_db(path: str) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        if os.path.exists(path + suffix):
            os.unlink(path + suffix)


def _checkpoint(api: _workflow_api.Api, n: int) -> dict[str, Any]:
    variants: dict[str, Any] = {"none": _chain_run(_workflow_api.chain_workflow(api, n))}
    fd, path = tempfile.mkstemp(prefix="plait-bench-", suffix=".db")
    os.close(fd)
    os.unlink(path)
    atexit.register(_remove_db, path)
    try:
        stored = _workflow_api.chain_workflow(api, n, storage=f"sqlite:///{path}")
    except Exception as exc:  # TypeError today; whatever plait raises for an unknown option
        variants["sqlite"] = _option_unsupported('storage="sqlite:///..."', exc)
        return variants

    def run_stored() -> Any:
        content = stored.run(0).content
        if not os.path.exists(path) or os.path.getsize(path) == 0:
            raise NotSupported("storage accepted but nothing was written to the SQLite file")
        return content

    run_stored.extra = lambda: {"db_bytes": os.path.getsize(path)}  # type: ignore[attr-defined]
    variants["sqlite"] = run_stored
    return variants


def _ray(api: _workflow_api.Api, n: int) -> dict[str, Any]:
    """The async fan-out in process, and with its branches on a local Ray cluster
    (plait-ray's async actors); the cluster starts during warm-up, not while timed."""
    variants: dict[str, Any] = {"inprocess": _workflow_api.build(api, "fanout_async", {"n": n})}
    try:
        from plait_ray import RayRunner
    except ImportError as exc:
        variants["ray"] = NotSupported(f"plait-ray is not installed: {exc}")
        return variants
    variants["ray"] = _workflow_api.build(api, "fanout_async", {"n": n}, runner=RayRunner(num_cpus=2))
    return variants


def build(workload: str, params: dict[str, Any]) -> Callable[[], Any] | dict[str, Any]:
    api = _api()
    if workload == "ray":
        return _ray(api, params["n"])
    if workload == "tracing":
        return _tracing(api, params["n"])
    if workload == "checkpoint":
        return _checkpoint(api, params["n"])
    return _workflow_api.build(api, workload, params)
