"""A stored run keeps what it cost (its models' prices times their usage) beside its tokens, for
`plait runs`, `plait serve`'s runs list and anyone reading the storage; a run whose models have
no known price stores none (never a made-up zero)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from plait import Agent, Step, Workflow
from plait.storage import resolve_storage
from plait.testing import FunctionModel
from plait_openai import OpenAIModel
from tests.servers.openai_server import OpenAIServer, openai_server

__all__ = ["openai_server"]


async def _metrics(url: str, run_id: str) -> dict:
    storage = resolve_storage(url)
    assert storage is not None
    try:
        record = await storage.get_run(run_id)
        assert record is not None
        return record.metrics
    finally:
        await storage.close()


async def test_the_stored_run_has_its_cost(openai_server: OpenAIServer, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    async with OpenAIModel("gpt-4o-mini", base_url=openai_server.base_url, api_key="k") as model:
        agent = Agent(name="A", model=model)
        workflow = Workflow(name="priced", steps=[Step(name="ask", agent=agent)], storage=url)
        output = await workflow.arun("hello")
        await workflow.aclose()
    assert output.metrics.cost is not None and output.metrics.cost > 0
    metrics = await _metrics(url, output.run_id)
    assert metrics["cost"] == output.metrics.cost
    assert metrics["input_tokens"] == output.metrics.input_tokens > 0


def test_a_run_without_prices_stores_no_cost(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    agent = Agent(name="A", model=FunctionModel(lambda messages: "hi"))
    workflow = Workflow(name="unpriced", steps=[Step(name="ask", agent=agent)], storage=url)
    output = workflow.run("hello")
    workflow.close()
    assert "cost" not in asyncio.run(_metrics(url, output.run_id))
