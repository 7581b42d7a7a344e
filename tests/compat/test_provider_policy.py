"""Provider policy (#16): fallbacks, enforced budgets and prices from the price table.

Written as Agno code with plait's imports; the providers are the real OpenAI and Anthropic
SDKs against the local protocol servers (tests/servers), which count what reaches them.
"""

from __future__ import annotations

import asyncio
import itertools
import warnings
from typing import Any

import pytest

from plait import (
    Agent,
    Budget,
    BudgetExceededError,
    DefinitionError,
    FallbackModel,
    Parallel,
    Step,
    StepError,
    Workflow,
)
from plait.errors import BadRequestError, ServerError
from plait.events import BudgetUpdatedEvent, BudgetWarningEvent, ModelFallbackEvent
from plait.models import Pricing, get_model
from plait.prices import PriceWarning, price_table_available, table_cost
from plait.retry import RetryPolicy
from plait.testing import FunctionModel
from tests.servers import anthropic_server as anthropic
from tests.servers import openai_server as openai
from tests.servers.anthropic_server import anthropic_server
from tests.servers.openai_server import openai_server

__all__ = ["anthropic_server", "openai_server"]

FAST = RetryPolicy(max_attempts=2, initial_delay=0.001, max_delay=0.01, jitter=0)


def _openai(server: openai.OpenAIServer, name: str = "gpt-4o-mini", **options: Any) -> Any:
    from plait_openai import OpenAIModel

    return OpenAIModel(name, base_url=server.base_url, api_key="test", retry=FAST, **options)


def _anthropic(server: anthropic.AnthropicServer, **options: Any) -> Any:
    from plait_anthropic import AnthropicModel

    return AnthropicModel("claude-haiku-4-5", base_url=server.base_url, api_key="test", retry=FAST, **options)


# -- fallbacks ---------------------------------------------------------------------------------


async def test_a_primary_that_returns_503_falls_back_to_the_second_provider(
    openai_server: openai.OpenAIServer, anthropic_server: anthropic.AnthropicServer
) -> None:
    openai_server.enqueue(openai.ErrorReply(503, "overloaded"), openai.ErrorReply(503, "overloaded"))
    anthropic_server.enqueue(anthropic.Reply.text("From Claude.", usage=(10, 3)))
    primary, second = _openai(openai_server), _anthropic(anthropic_server)
    agent = Agent(name="Writer", model=[primary, second], instructions="Write.")
    events = [e async for e in agent.arun("Hello", stream=True, stream_events=True)]
    output = agent.get_last_run_output()
    assert output is not None and output.content == "From Claude."
    assert len(openai_server.chat_requests) == 2  # its retries were spent first
    assert len(anthropic_server.requests) == 1
    fallbacks = [e for e in events if isinstance(e, ModelFallbackEvent)]
    assert [(e.failed_model, e.error_type, e.next_model) for e in fallbacks] == [
        ("openai:gpt-4o-mini", "ServerError", "anthropic:claude-haiku-4-5")
    ]
    await primary.aclose()
    await second.aclose()


async def test_the_answering_model_is_on_the_response_and_the_span(
    openai_server: openai.OpenAIServer, anthropic_server: anthropic.AnthropicServer
) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    openai_server.enqueue(openai.ErrorReply(500, "boom"), openai.ErrorReply(500, "boom"))
    primary, second = _openai(openai_server), _anthropic(anthropic_server)
    agent = Agent(name="Writer", model=FallbackModel(primary, second), tracer_provider=provider)
    output = await agent.arun("Hi")
    assert output.content == "Echo: Hi"
    chat = [s for s in exporter.get_finished_spans() if s.name.startswith("chat ")]
    assert len(chat) == 1
    attributes = dict(chat[0].attributes or {})
    assert attributes["plait.fallback.answered_by"] == "anthropic:claude-haiku-4-5"
    assert list(attributes["plait.fallback.skipped"]) == ["openai:gpt-4o-mini: ServerError"]
    await primary.aclose()
    await second.aclose()


async def test_a_bad_request_does_not_fall_back(
    openai_server: openai.OpenAIServer, anthropic_server: anthropic.AnthropicServer
) -> None:
    openai_server.enqueue(openai.ErrorReply(400, "invalid messages"))
    primary, second = _openai(openai_server), _anthropic(anthropic_server)
    agent = Agent(name="Writer", model=[primary, second])
    with pytest.raises(BadRequestError, match="invalid messages"):
        await agent.arun("Hello")
    assert anthropic_server.requests == []  # the second provider never saw it
    await primary.aclose()
    await second.aclose()


async def test_fallback_on_chooses_which_errors_pass_the_request_on(
    openai_server: openai.OpenAIServer, anthropic_server: anthropic.AnthropicServer
) -> None:
    openai_server.enqueue(openai.ErrorReply(400, "this model refuses"))
    primary, second = _openai(openai_server), _anthropic(anthropic_server)
    agent = Agent(name="Writer", model=FallbackModel(primary, second, fallback_on=(BadRequestError,)))
    assert (await agent.arun("Hi")).content == "Echo: Hi"
    # and one that does not name server errors keeps them
    openai_server.enqueue(openai.ErrorReply(503, "down"), openai.ErrorReply(503, "down"))
    strict = Agent(name="Strict", model=FallbackModel(primary, second, fallback_on=(BadRequestError,)))
    with pytest.raises(ServerError):
        await strict.arun("Hi")
    await primary.aclose()
    await second.aclose()


def test_every_member_failing_raises_the_last_error_naming_the_others() -> None:
    def down(messages: Any) -> str:
        raise ServerError("down", provider="function", status_code=503)

    agent = Agent(
        name="Writer",
        model=[FunctionModel(down, model="a", retry=FAST), FunctionModel(down, model="b", retry=FAST)],
    )
    with pytest.raises(ServerError) as raised:
        agent.run("Hi")
    assert any("tried first" in note and "ServerError" in note for note in raised.value.__notes__)


def test_fallback_models_are_checked_and_resolve_from_strings() -> None:
    with pytest.raises(DefinitionError, match="at least two models"):
        FallbackModel("openai:gpt-4o-mini")
    with pytest.raises(DefinitionError, match="'provider:model'"):
        FallbackModel("openai:gpt-4o-mini", "gpt-4o")
    with pytest.raises(DefinitionError, match="fallback_on"):
        FallbackModel("openai:gpt-4o-mini", "anthropic:claude-haiku-4-5", fallback_on=("503",))  # type: ignore[arg-type]
    model = get_model(["openai:gpt-4o-mini", "anthropic:claude-haiku-4-5"])
    assert isinstance(model, FallbackModel)
    assert model.name == "fallback:openai:gpt-4o-mini,anthropic:claude-haiku-4-5"
    again = get_model(model.name)
    assert isinstance(again, FallbackModel) and [m.name for m in again.models] == [
        "openai:gpt-4o-mini",
        "anthropic:claude-haiku-4-5",
    ]


def test_a_team_leader_takes_a_fallback_list() -> None:
    from plait import Team

    def down(messages: Any) -> str:
        raise ServerError("down", provider="function", status_code=503)

    member = Agent(name="Helper", model=FunctionModel(lambda m: "helped"))
    team = Team(
        name="Crew",
        members=[member],
        mode="broadcast",
        model=[FunctionModel(down, model="a", retry=FAST), FunctionModel(lambda m: "merged", model="b")],
    )
    assert team.run("Hi").content == "merged"


# -- budgets -----------------------------------------------------------------------------------


async def test_a_workflow_budget_stops_the_run_before_the_call_that_would_exceed_it(
    openai_server: openai.OpenAIServer,
) -> None:
    model = _openai(openai_server)
    research = Agent(name="Researcher", model=model, instructions="Research.")
    writer = Agent(name="Writer", model=model, instructions="Write.")
    workflow = Workflow(
        name="Pipeline",
        steps=[Step(name="research", agent=research), Step(name="write", agent=writer)],
        budget=Budget(max_requests=1),
    )
    with pytest.raises(BudgetExceededError) as raised:
        await workflow.arun("AI")
    error = raised.value
    assert isinstance(error, StepError)  # what callers already catch
    assert (error.limit, error.maximum, error.used, error.needed) == ("max_requests", 1, 1, 1)
    assert error.step_path == "write" and error.budget_of == "workflow 'Pipeline'"
    assert "max_requests=1" in str(error) and "'write'" in str(error)
    assert len(openai_server.chat_requests) == 1  # the server never saw the second call
    await model.aclose()


async def test_an_estimated_prompt_over_the_token_budget_is_never_sent(
    openai_server: openai.OpenAIServer,
) -> None:
    model = _openai(openai_server)
    agent = Agent(name="Reader", model=model, budget=Budget(max_input_tokens=50))
    with pytest.raises(BudgetExceededError) as raised:
        await agent.arun("word " * 400)  # about 500 tokens by the estimate
    assert raised.value.limit == "max_input_tokens" and raised.value.needed > 50
    assert raised.value.budget_of == "agent 'Reader'"
    assert openai_server.chat_requests == []
    await model.aclose()


async def test_parallel_branches_share_a_budget_atomically(openai_server: openai.OpenAIServer) -> None:
    model = _openai(openai_server)
    # on_error="skip": a branch stopped by the budget does not cancel its siblings
    branches = [Step(name=f"b{i}", agent=Agent(name=f"A{i}", model=model), on_error="skip") for i in range(6)]
    workflow = Workflow(name="Fan", steps=[Parallel(*branches, name="fan")], budget=Budget(max_requests=3))
    output = await workflow.arun("go")
    inner = output.step_outputs[0].steps or []
    skipped = [o for o in inner if o.skipped]
    assert len(skipped) == 3 and all("BudgetExceededError" in (o.error or "") for o in skipped)
    assert len(openai_server.chat_requests) == 3  # exactly the budget, though all six raced
    await model.aclose()


def test_a_nested_workflow_counts_against_the_outer_budget() -> None:
    inner = Workflow(name="Inner", steps=[Agent(name="A", model=FunctionModel(lambda m: "a"))])
    outer = Workflow(
        name="Outer",
        steps=[Step(name="first", workflow=inner), Agent(name="B", model=FunctionModel(lambda m: "b"))],
        budget=Budget(max_requests=1),
    )
    with pytest.raises(BudgetExceededError) as raised:
        outer.run("x")
    assert raised.value.step_path == "B"


def test_a_step_budget_counts_tool_calls() -> None:
    from plait.models import ToolCall

    def search(query: str) -> str:
        return f"found {query}"

    def reply(messages: Any) -> Any:
        if messages[-1].role == "tool":
            return "done"
        return [ToolCall("1", "search", {"query": "a"}), ToolCall("2", "search", {"query": "b"})]

    agent = Agent(name="Searcher", model=FunctionModel(reply), tools=[search])
    limited = Workflow(name="W", steps=[Step(name="look", agent=agent, budget=Budget(max_tool_calls=1))])
    with pytest.raises(BudgetExceededError, match="max_tool_calls=1") as raised:
        limited.run("x")
    assert raised.value.budget_of == "step 'look'" and raised.value.needed == 2
    roomy = Workflow(name="W2", steps=[Step(name="look", agent=agent, budget=Budget(max_tool_calls=2))])
    assert roomy.run("x").content == "done"


def test_a_soft_budget_warns_once_and_goes_on() -> None:
    agent = Agent(name="Chatty", model=FunctionModel(lambda m: "hi"))
    workflow = Workflow(
        name="Soft",
        steps=[agent, Agent(name="Again", model=FunctionModel(lambda m: "again"))],
        budget=Budget(max_requests=1, soft=True),
    )
    events = list(workflow.run("x", stream=True, stream_events=True))
    warnings_ = [e for e in events if isinstance(e, BudgetWarningEvent)]
    assert len(warnings_) == 1 and warnings_[0].limit == "max_requests"
    assert warnings_[0].budget_of == "workflow 'Soft'"
    updates = [e for e in events if isinstance(e, BudgetUpdatedEvent)]
    assert [u.left["max_requests"] for u in updates] == [0, 0]
    assert [u.used["max_requests"] for u in updates] == [1, 2]
    assert workflow.get_last_run_output() is not None
    assert workflow.get_last_run_output().content == "again"  # type: ignore[union-attr]


def test_budget_input_is_checked() -> None:
    with pytest.raises(DefinitionError, match="at least one limit"):
        Budget()
    with pytest.raises(DefinitionError, match="max_requests"):
        Budget(max_requests=-1)
    with pytest.raises(DefinitionError, match=r"Workflow 'W': budget must be a Budget"):
        Workflow(name="W", steps=[lambda step_input: "x"], budget={"max_requests": 3})  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match=r"Step 's': budget must be a Budget"):
        Step(name="s", executor=lambda step_input: "x", budget=5)
    with pytest.raises(DefinitionError, match=r"Agent 'A': budget must be a Budget"):
        Agent(name="A", budget="cheap")  # type: ignore[arg-type]


def test_max_cost_on_a_model_without_a_price_is_an_error_at_construction() -> None:
    with pytest.raises(DefinitionError, match=r"max_cost=0.5.*price of function:"):
        Agent(name="A", model=FunctionModel(lambda m: "x"), budget=Budget(max_cost=0.5))
    priced = FunctionModel(lambda m: "x", pricing=Pricing(input=1.0, output=2.0))
    assert Agent(name="B", model=priced, budget=Budget(max_cost=0.5)).run("hi").content == "x"
    # a workflow budget finds out when the run resolves the model
    workflow = Workflow(
        name="W", steps=[Agent(name="C", model=FunctionModel(lambda m: "x"))], budget=Budget(max_cost=1.0)
    )
    with pytest.raises(StepError, match=r"Budget\(max_cost=1\) needs the price"):
        workflow.run("hi")


def test_max_cost_stops_a_run_by_the_price() -> None:
    expensive = FunctionModel(lambda m: "word " * 100, pricing=Pricing(input=1000.0, output=1000.0))
    agent = Agent(name="Spender", model=expensive)
    workflow = Workflow(
        name="W", steps=[agent, Agent(name="Next", model=expensive)], budget=Budget(max_cost=0.05)
    )
    with pytest.raises(BudgetExceededError) as raised:
        workflow.run("hi")
    assert raised.value.limit == "max_cost" and raised.value.used > 0.05


def test_a_budget_error_is_not_retried_by_a_step_retry_policy() -> None:
    calls: list[int] = []

    def reply(messages: Any) -> str:
        calls.append(1)
        return "x"

    agent = Agent(name="A", model=FunctionModel(reply), budget=Budget(max_requests=0))
    workflow = Workflow(name="W", steps=[Step(name="s", agent=agent, retry=RetryPolicy(max_attempts=5))])
    with pytest.raises(BudgetExceededError):
        workflow.run("x")
    assert calls == []


def test_budgets_hold_across_threads_and_event_loops() -> None:
    agent = Agent(name="A", model=FunctionModel(lambda m: "x"), budget=Budget(max_requests=1))
    assert asyncio.run(agent.arun("1")).content == "x"
    assert asyncio.run(agent.arun("2")).content == "x"  # each agent run has its own meter


# -- prices ------------------------------------------------------------------------------------

needs_table = pytest.mark.skipif(not price_table_available(), reason="plait[prices] not installed")


@needs_table
async def test_cost_from_the_price_table_matches_the_table(openai_server: openai.OpenAIServer) -> None:
    openai_server.enqueue(openai.Reply("An answer.", usage=(1200, 300)))
    model = _openai(openai_server)
    workflow = Workflow(name="Priced", steps=[Agent(name="Writer", model=model)])
    output = await workflow.arun("Hi")
    expected = table_cost("openai", "gpt-4o-mini", 1200, 300)
    assert expected is not None and expected > 0
    assert output.step_outputs[0].metrics is not None
    assert output.step_outputs[0].metrics.cost == pytest.approx(expected)
    assert expected == pytest.approx((1200 * 0.15 + 300 * 0.60) / 1_000_000)  # gpt-4o-mini's list price
    await model.aclose()


@needs_table
async def test_an_explicit_pricing_wins_over_the_table(openai_server: openai.OpenAIServer) -> None:
    openai_server.enqueue(openai.Reply("An answer.", usage=(1000, 1000)))
    model = _openai(openai_server, pricing=Pricing(input=1.0, output=2.0))
    output = await Agent(name="Writer", model=model).arun("Hi")
    assert output.cost == pytest.approx(0.003)
    await model.aclose()


@needs_table
async def test_an_unknown_model_of_a_known_provider_warns_once(openai_server: openai.OpenAIServer) -> None:
    model = _openai(openai_server, name="gpt-unknown-test-model")
    agent = Agent(name="Writer", model=model)
    with pytest.warns(PriceWarning, match="no price for openai:gpt-unknown-test-model"):
        first = await agent.arun("Hi")
    assert first.cost is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        await agent.arun("Hi again")  # said once
    await model.aclose()


@needs_table
def test_max_cost_works_for_a_known_model_without_pricing() -> None:
    from plait_openai import OpenAIModel

    Agent(name="A", model=OpenAIModel("gpt-4o-mini", api_key="test"), budget=Budget(max_cost=1.0))


# -- rate limits -------------------------------------------------------------------------------


@pytest.fixture
def short_minute(monkeypatch: pytest.MonkeyPatch) -> float:
    """A 'minute' of 3 seconds, so a test of per-minute limits takes seconds, not minutes
    (long enough that a loaded machine's scheduling delays, seen up to 0.8 s between the
    limiter letting a request go and the server receiving it, stay inside half a window)."""
    import plait._limits

    monkeypatch.setattr(plait._limits, "_WINDOW", 3.0)
    return 3.0


def _most_in_a_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max(sum(1 for t in times if start <= t < start + window) for start in times)


async def test_parallel_branches_under_requests_per_minute_wait_their_turn(
    openai_server: openai.OpenAIServer, short_minute: float
) -> None:
    from plait import RateLimit

    model = _openai(openai_server)
    branches = [Step(name=f"b{i}", agent=Agent(name=f"A{i}", model=model)) for i in range(12)]
    workflow = Workflow(
        name="Fan",
        steps=[Parallel(*branches, name="fan")],
        limits={"openai": RateLimit(requests_per_minute=5)},
    )
    output = await workflow.arun("go")
    assert output.status.value == "COMPLETED"
    times = [r.received_at for r in openai_server.requests if r.path.endswith("/chat/completions")]
    assert len(times) == 12
    # never more than five in any half window at the server: a request reaches it up to half a
    # window after the limiter let it go (the client's own work, a loaded machine), and then
    # the requests in any half window at the server were let go within one window
    assert _most_in_a_window(times, short_minute * 0.5) <= 5
    assert max(times) - min(times) >= 2 * short_minute * 0.9  # 12 requests need three windows
    await model.aclose()


async def test_max_concurrent_bounds_the_calls_in_flight(openai_server: openai.OpenAIServer) -> None:
    import threading

    from plait import RateLimit

    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def handler(body: Any) -> Any:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        import time

        time.sleep(0.05)
        with lock:
            state["now"] -= 1
        return "ok"

    openai_server.handler = handler
    model = _openai(openai_server)
    branches = [Agent(name=f"A{i}", model=model) for i in range(8)]
    workflow = Workflow(
        name="Fan",
        steps=[Parallel(*branches, name="fan")],
        limits={"openai:gpt-4o-mini": RateLimit(max_concurrent=2)},
    )
    await workflow.arun("go")
    assert len(openai_server.chat_requests) == 8
    assert state["peak"] <= 2
    await model.aclose()


async def test_tokens_per_minute_spaces_out_long_prompts(
    openai_server: openai.OpenAIServer, short_minute: float
) -> None:
    from plait import RateLimit, set_rate_limits

    openai_server.handler = lambda body: openai.Reply("ok", usage=(250, 5))
    model = _openai(openai_server)
    set_rate_limits({"openai": RateLimit(tokens_per_minute=600)})  # process-wide
    try:
        agents = [Agent(name=f"A{i}", model=model) for i in range(4)]
        workflow = Workflow(name="Long", steps=[Parallel(*agents, name="fan")])
        await workflow.arun("word " * 800)  # about 1000 tokens each by the estimate: one per window
    finally:
        set_rate_limits(None)
    times = sorted(r.received_at for r in openai_server.requests if r.path.endswith("/chat/completions"))
    assert len(times) == 4
    # the first goes at once (alone over the limit); each next waits for the window to empty
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap >= short_minute * 0.6 for gap in gaps), gaps
    await model.aclose()


def test_rate_limits_are_checked() -> None:
    from plait import RateLimit

    with pytest.raises(DefinitionError, match="expected requests_per_minute="):
        RateLimit()
    with pytest.raises(DefinitionError, match="max_concurrent"):
        RateLimit(max_concurrent=0)
    with pytest.raises(DefinitionError, match=r"Workflow 'W': limits must be a dict"):
        Workflow(name="W", steps=[lambda step_input: "x"], limits=[RateLimit(max_concurrent=1)])  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match=r"limits\['openai'\] must be a RateLimit"):
        Workflow(name="W", steps=[lambda step_input: "x"], limits={"openai": 5})  # type: ignore[dict-item]


def _echo(messages: Any) -> str:
    return "x"


def test_a_workflow_with_limits_survives_pickling() -> None:
    import pickle

    from plait import RateLimit

    workflow = Workflow(
        name="W",
        steps=[Agent(name="A", model=FunctionModel(_echo))],
        limits={"function": RateLimit(max_concurrent=1)},
        budget=Budget(max_requests=3),
    )
    copy = pickle.loads(pickle.dumps(workflow))
    assert copy.limits == workflow.limits and copy._limiters is not workflow._limiters
    assert copy.run("x").content == "x"
