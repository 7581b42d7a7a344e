"""Rate limits shared across processes (#16 item 2) and waits for a rate limit made visible
(#16 item 5, #17 item 1).

The shared limiter is tested where it matters: two real processes, each a workflow with ten
parallel branches calling the local OpenAI-protocol server (tests/servers) through the real
SDK, under one ``RateLimit(requests_per_minute=5, shared=True)`` counted in the real Redis;
the server's clock says how many requests arrived in each window. The count itself (the
``SharedRateLimits`` methods) is checked on both stores, in-process and Redis, with the same
expectations. A "minute" is shortened (``plait._limits._WINDOW``) so tests take seconds.

Run as ``python -m tests.compat.test_shared_rate_limits BASE_URL PREFIX WINDOW NAME``, this
file is the worker process of the cross-process test.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from plait import Agent, DefinitionError, Parallel, RateLimit, Step, Workflow, set_rate_limits
from plait._limits import LocalWindow, SharedRateLimits
from plait.events import RateLimitWaitEvent
from plait.testing import FunctionModel
from tests.servers import openai_server as openai
from tests.servers.openai_server import openai_server
from tests.services import require_package, require_service

__all__ = ["openai_server"]

URL = "redis://127.0.0.1:6379/0"
ROOT = Path(__file__).resolve().parents[2]


def _redis() -> None:
    require_service("redis")
    require_package("plait_redis", "plait-redis")


@pytest.fixture
def short_minute(monkeypatch: pytest.MonkeyPatch) -> float:
    import plait._limits

    monkeypatch.setattr(plait._limits, "_WINDOW", 1.5)
    return 1.5


@pytest.fixture
async def redis_storage() -> AsyncIterator[Any]:
    """A RedisStorage on a throwaway prefix, set up; its keys are deleted afterwards."""
    _redis()
    from plait_redis import RedisStorage

    storage = RedisStorage(URL, prefix=f"plait-test-limits-{uuid.uuid4().hex[:10]}")
    await storage.setup()
    yield storage
    await storage.close()
    await storage.drop()


def _most_in_a_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max(sum(1 for t in times if start <= t < start + window) for start in times)


# -- across processes ----------------------------------------------------------------------


def _worker(base_url: str, prefix: str, window: float, name: str) -> None:
    """One process of the cross-process test: ten parallel branches under the shared limit,
    started when the test says go (so both processes contend from the first request)."""
    import plait._limits
    from plait.retry import RetryPolicy
    from plait_openai import OpenAIModel
    from plait_redis import RedisStorage

    plait._limits._WINDOW = window
    # one try each: a 429 (or any error) fails the run instead of being retried away
    model = OpenAIModel("gpt-4o-mini", base_url=base_url, api_key="test", retry=RetryPolicy(max_attempts=1))
    branches = [
        Step(name=f"b{i}", agent=Agent(name=f"{name}-{i}", model=model, instructions=f"process {name}"))
        for i in range(10)
    ]
    storage = RedisStorage(URL, prefix=prefix)
    workflow = Workflow(
        name=f"Fan {name}",
        steps=[Parallel(*branches, name="fan")],
        storage=storage,
        limits={"openai": RateLimit(requests_per_minute=5, shared=True)},
    )

    async def main() -> dict[str, Any]:
        # warm, as a worker in production is: connected, the SDK loaded and its client made (a
        # first call costs this process up to a second with its event loop blocked), outside
        # the workflow and so outside its limits; the test leaves this request out
        await workflow._ready_storage()
        await Agent(name="warm", model=model, instructions="warm-up").arun("warm")
        print("ready", flush=True)
        sys.stdin.readline()
        waits = 0
        async for event in workflow.arun("go", stream=True, stream_events=True):
            waits += isinstance(event, RateLimitWaitEvent)
        output = workflow.get_last_run_output()
        assert output is not None
        inner = output.step_outputs[0].steps or []
        await model.aclose()
        await storage.close()
        return {
            "status": str(output.status.value),
            "answers": sum(1 for o in inner if o.success),
            "waits": waits,
        }

    print(json.dumps(asyncio.run(main())), flush=True)


def test_a_shared_redis_limit_holds_across_two_processes(openai_server: openai.OpenAIServer) -> None:
    _redis()
    prefix = f"plait-test-limits-{uuid.uuid4().hex[:10]}"
    window = 2.0  # a loaded machine may stall a process's event loop for most of a second
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.compat.test_shared_rate_limits",
                openai_server.base_url,
                prefix,
                str(window),
                name,
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("P", "Q")
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            line = worker.stdout.readline()
            assert line == "ready\n", (line, worker.stderr.read() if worker.stderr else "")
        for worker in workers:  # both go at once
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        results = []
        for worker in workers:
            out, err = worker.communicate(timeout=120)
            assert worker.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        asyncio.run(_drop(prefix))
    assert results == [
        {"status": "COMPLETED", "answers": 10, "waits": results[0]["waits"]},
        {"status": "COMPLETED", "answers": 10, "waits": results[1]["waits"]},
    ]
    assert results[0]["waits"] + results[1]["waits"] >= 10  # 15 of the 20 calls waited a window or more
    chats = [r for r in openai_server.requests if r.path.endswith("/chat/completions")]
    requests = [r for r in chats if "warm-up" not in json.dumps(r.json)]
    assert len(chats) - len(requests) == 2  # one warm-up each
    assert len(requests) == 20  # every call answered at its first try: no 429
    by_process = {name: [r for r in requests if f"process {name}" in json.dumps(r.json)] for name in "PQ"}
    assert [len(v) for v in by_process.values()] == [10, 10]
    times = [r.received_at for r in requests]
    # together, never more than five in any half window at the server (a request reaches it
    # up to half a window after its turn on a loaded machine; see test_provider_policy)
    arrivals = sorted((round(r.received_at - min(times), 2), n) for n, rs in by_process.items() for r in rs)
    assert _most_in_a_window(times, window * 0.5) <= 5, str(arrivals)
    # twenty requests at five a window need four windows: alone, each process would have
    # finished its ten within two; the two processes really did contend (both in the first window)
    assert max(times) - min(times) >= 3 * window * 0.9


async def _drop(prefix: str) -> None:
    from plait_redis import RedisStorage

    storage = RedisStorage(URL, prefix=prefix)
    await storage.drop()
    await storage.close()


# -- the count, in-process and in Redis alike ----------------------------------------------


@pytest.fixture(params=["local", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[SharedRateLimits]:
    if request.param == "local":
        yield LocalWindow()
        return
    _redis()
    from plait_redis import RedisStorage

    storage = RedisStorage(URL, prefix=f"plait-test-limits-{uuid.uuid4().hex[:10]}")
    await storage.setup()
    yield storage
    await storage.close()
    await storage.drop()


async def test_requests_per_minute_reserves_each_call_its_start(store: SharedRateLimits) -> None:
    limit = RateLimit(requests_per_minute=2)
    turns = [await store.take_rate_limit("openai", limit, f"t{i}", 10, 60.0) for i in range(4)]
    assert [holding for _, holding in turns] == ["", "", "requests_per_minute", "requests_per_minute"]
    delays = [delay for delay, _ in turns]
    assert delays[:2] == [0.0, 0.0] and all(59 < d <= 60 for d in delays[2:]), delays


async def test_reported_usage_corrects_the_token_count(store: SharedRateLimits) -> None:
    limit = RateLimit(tokens_per_minute=600)
    assert await store.take_rate_limit("openai", limit, "long", 1000, 60.0) == (0.0, "")  # alone: goes
    await store.return_rate_limit("openai", limit, "long", 255, True)  # the provider said 255
    assert await store.take_rate_limit("openai", limit, "next", 300, 60.0) == (0.0, "")  # 555 <= 600
    delay, holding = await store.take_rate_limit("openai", limit, "third", 100, 60.0)
    assert holding == "tokens_per_minute" and 59 < delay <= 60  # 655 > 600: after the first leaves


async def test_a_call_that_never_went_gives_its_turn_back(store: SharedRateLimits) -> None:
    limit = RateLimit(requests_per_minute=1)
    assert await store.take_rate_limit("k", limit, "a", 1, 60.0) == (0.0, "")
    await store.return_rate_limit("k", limit, "a", None, False)  # cancelled before it was sent
    assert await store.take_rate_limit("k", limit, "b", 1, 60.0) == (0.0, "")


async def test_max_concurrent_slots_are_taken_and_freed(store: SharedRateLimits) -> None:
    limit = RateLimit(max_concurrent=2)
    assert await store.take_rate_limit("k", limit, "a", 1, 60.0) == (0.0, "")
    assert await store.take_rate_limit("k", limit, "b", 1, 60.0) == (0.0, "")
    assert await store.take_rate_limit("k", limit, "c", 1, 60.0) is None  # every slot taken
    await store.return_rate_limit("k", limit, "a", 5, True)
    assert await store.take_rate_limit("k", limit, "c", 1, 60.0) == (0.0, "")
    if not isinstance(store, LocalWindow):  # (a LocalWindow is one limiter's) keys count apart
        assert await store.take_rate_limit("other", limit, "d", 1, 60.0) == (0.0, "")


async def test_a_shared_workflow_limit_counts_in_its_storage(redis_storage: Any, short_minute: float) -> None:
    # two workflow objects (as two processes would have) share one count through Redis
    limits = {"function": RateLimit(requests_per_minute=2, shared=True)}
    agent = Agent(name="A", model=FunctionModel(lambda m: "x"))
    first = Workflow(
        name="One",
        steps=[Parallel(agent, Agent(name="B", model=FunctionModel(lambda m: "y")), name="p")],
        storage=redis_storage,
        limits=limits,
    )
    second = Workflow(
        name="Two",
        steps=[Agent(name="C", model=FunctionModel(lambda m: "z"))],
        storage=redis_storage,
        limits=limits,
    )
    await first.arun("go")
    events = [e async for e in second.arun("go", stream=True, stream_events=True)]
    waits = [e for e in events if isinstance(e, RateLimitWaitEvent)]
    assert [(w.key, w.limit, w.maximum, w.shared, w.agent_name) for w in waits] == [
        ("function", "requests_per_minute", 2, True, "C")
    ]
    assert waits[0].seconds is not None and 0.2 <= waits[0].seconds <= short_minute


# -- declaring a shared limit ----------------------------------------------------------------


def test_a_shared_limit_needs_a_storage_that_can_share_it(tmp_path: Path) -> None:
    from plait.storage import MemoryStorage

    shared = {"openai": RateLimit(requests_per_minute=5, shared=True)}
    steps = [lambda step_input: "x"]
    with pytest.raises(
        DefinitionError,
        match=r"Workflow 'W': limits\['openai'\] is RateLimit\(shared=True\).*there is no storage.*plait-redis",
    ):
        Workflow(name="W", steps=steps, limits=shared)
    with pytest.raises(DefinitionError, match=r"SQLite storage \(sqlite://\) keeps it in one process"):
        Workflow(name="W", steps=steps, limits=shared, storage=f"sqlite:///{tmp_path}/runs.db")
    with pytest.raises(DefinitionError, match="MemoryStorage cannot count it across processes"):
        Workflow(name="W", steps=steps, limits=shared, storage=MemoryStorage())
    with pytest.raises(DefinitionError, match=r"set_rate_limits: limits\['openai'\].*there is no storage"):
        set_rate_limits(shared)
    with pytest.raises(DefinitionError, match="shared must be True or False"):
        RateLimit(max_concurrent=1, shared="redis://x")  # type: ignore[arg-type]
    # an unshared limit needs no storage at all
    assert Workflow(name="W", steps=steps, limits={"openai": RateLimit(max_concurrent=1)}) is not None


def _echo(step_input: Any) -> str:
    return "x"


def test_a_shared_limit_survives_pickling_with_its_workflow() -> None:
    import pickle

    _redis()
    workflow = Workflow(
        name="W",
        steps=[_echo],
        storage=URL,
        limits={"openai": RateLimit(requests_per_minute=5, shared=True)},
    )
    copy = pickle.loads(pickle.dumps(workflow))
    assert copy.limits == workflow.limits and copy._limiters is not None
    assert copy._limiters["openai"].limit.shared


# -- waits are visible -----------------------------------------------------------------------


def _fan(rpm: float, n: int = 3) -> Workflow:
    branches = [Agent(name=f"A{i}", model=FunctionModel(lambda m: "x")) for i in range(n)]
    return Workflow(
        name="Fan",
        steps=[Parallel(*branches, name="fan")],
        limits={"function": RateLimit(requests_per_minute=rpm)},
    )


def test_a_call_held_by_a_limit_says_so_and_an_unthrottled_run_says_nothing(short_minute: float) -> None:
    events = list(_fan(2).run("go", stream=True, stream_events=True))
    waits = [e for e in events if isinstance(e, RateLimitWaitEvent)]
    assert len(waits) == 1  # two go at once, the third waits for the window
    wait = waits[0]
    assert (wait.key, wait.limit, wait.maximum, wait.shared, wait.model) == (
        "function",
        "requests_per_minute",
        2,
        False,
        "function:<lambda>",
    )
    assert wait.step_id is not None and wait.step_id.startswith("fan/") and wait.nested_depth == 0
    assert wait.run_id is not None and wait.agent_name in {"A0", "A1", "A2"}
    assert wait.to_dict()["event"] == "RateLimitWait"
    calm = list(_fan(100).run("go", stream=True, stream_events=True))
    assert not [e for e in calm if isinstance(e, RateLimitWaitEvent)]


def test_the_wait_is_an_event_on_the_model_calls_span(short_minute: float) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    workflow = _fan(2)
    workflow.tracer_provider = provider
    workflow.run("go")
    chats = [s for s in exporter.get_finished_spans() if s.name.startswith("chat ")]
    assert len(chats) == 3
    waited = [e for s in chats for e in s.events if e.name == "rate_limit.wait"]
    assert len(waited) == 1
    attributes = dict(waited[0].attributes or {})
    assert list(attributes["plait.rate_limit.keys"]) == ["function"]
    assert list(attributes["plait.rate_limit.limits"]) == ["requests_per_minute"]
    assert 0.2 <= attributes["plait.rate_limit.waited"] <= short_minute * 1.5


WAITING = """
import plait._limits
from plait import Agent, Parallel, RateLimit, Workflow
from plait.testing import FunctionModel

plait._limits._WINDOW = 4.0  # long enough that a loaded machine still starts all three inside it
workflow = Workflow(
    name="Fan",
    steps=[Parallel(*[Agent(name=f"A{i}", model=FunctionModel(lambda m: "x")) for i in range(3)], name="fan")],
    limits={"function": RateLimit(requests_per_minute=2)},
)
workflow.print_response("go", stream=True)
print("DONE", flush=True)
"""


def test_the_console_outline_shows_the_wait_as_a_line(tmp_path: Path) -> None:
    script = tmp_path / "fan.py"
    script.write_text(WAITING)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True, cwd=ROOT
    )
    assert "\x1b" not in result.stdout  # a pipe: plain lines
    lines = [line for line in result.stdout.splitlines() if "waiting" in line]
    assert len(lines) == 1, result.stdout
    assert re.fullmatch(r"(│ )+⧗ A[012]: waiting [0-4]\.\ds for function requests_per_minute=2", lines[0]), (
        lines
    )
    assert result.stdout.splitlines()[-1] == "DONE"


def test_the_live_tree_shows_a_running_step_waiting(short_minute: float) -> None:
    from plait._tree import RunModel, mark
    from plait.events import RunContentEvent, StepStartedEvent, WorkflowStartedEvent

    model = RunModel()
    model.handle(WorkflowStartedEvent(workflow_name="Fan"))
    model.handle(StepStartedEvent(step_id="write", step_name="write", step_type="Step"))
    node = model.handle(
        RateLimitWaitEvent(
            step_id="write", key="openai", limit="requests_per_minute", maximum=500, seconds=2.14, shared=True
        )
    )
    assert node is not None
    assert mark(node).plain.endswith("  ⧗ waiting 2.1s for openai requests_per_minute=500 (shared)")
    model.handle(RunContentEvent(step_id="write", content="Tea"))  # the answer arrives
    assert "waiting" not in mark(node).plain
    model.handle(RateLimitWaitEvent(step_id="write", key="openai", limit="max_concurrent", maximum=4))
    assert mark(node).plain.endswith("  ⧗ waiting for a free openai slot (max_concurrent=4)")


@pytest.fixture(autouse=True)
def _no_process_limits() -> Iterator[None]:
    yield
    set_rate_limits(None)


if __name__ == "__main__":
    _worker(sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4])
