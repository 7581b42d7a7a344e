"""Model requests stored as deltas of the step's previous request (issue #15): a tool loop's
stored requests no longer grow as O(N²), the full requests are rebuilt when read, their
fingerprints do not change, and runs recorded before (every request whole) still replay.
Through the real OpenAI SDK against the local OpenAI-protocol server, on SQLite, PostgreSQL
and Redis."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from plait import Agent, Step, Workflow, _record_store
from plait._record import request_fingerprint
from plait._record_data import canonical
from plait._record_store import DELTA, INLINE, StorageSink, load_recorded
from plait.models import ToolCall
from plait.storage import CallRecord, Storage
from plait.testing import FunctionModel
from tests.durability import test_replay
from tests.durability.tool_loop import build, storage_for
from tests.servers.openai_server import OpenAIServer

backend = test_replay.backend  # the fixture: SQLite, and a schema / prefix of its own


async def _run_loop(backend: str, server: OpenAIServer) -> tuple[Any, Any, Storage]:
    server.handler = test_replay.loop_handler
    workflow = build(backend, server.base_url)
    output = await workflow.arun("look up items 1 to 5")
    assert output.content == "Looked up items 1 to 5."
    storage = await workflow._ready_storage()
    assert storage is not None
    return workflow, output, storage


async def _close(workflow: Any) -> None:
    for node in workflow.nodes:
        await node.agent.model.aclose()
    if isinstance(workflow.storage, Storage):
        await workflow.storage.close()  # given as an object: the test's to close
    else:
        await workflow.aclose()


async def test_a_tool_loop_stores_deltas_and_reads_back_the_full_requests(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAIT_TEST_LOG", str(tmp_path / "effects.log"))
    with OpenAIServer() as server:
        workflow, output, storage = await _run_loop(backend, server)
        sent = server.chat_requests
    calls = [c for c in await storage.load_calls(output.run_id) if c.kind == "model"]
    assert len(calls) == len(sent) == 6
    stored = await storage.load_payloads([c.request for c in calls])
    raw = [json.loads(stored[c.request]) for c in calls]
    # the first request whole, each later one a delta of the one before: it adds the
    # assistant's tool call and the tool's result
    assert DELTA not in raw[0] and "messages" in raw[0]
    for before, delta, call in zip(calls, raw[1:], calls[1:], strict=False):
        assert delta[DELTA] == 1 and delta["base"] == before.request, call
        assert [m["role"] for m in delta["add"]] == ["assistant", "tool"]
        assert "set" not in delta and "messages" not in delta
    # read back: the full requests, as sent to the server, with the fingerprints recorded
    recorded = [r for r in await load_recorded(storage, output.run_id) if r.kind == "model"]
    for item, body in zip(recorded, sent, strict=True):
        assert [m["role"] for m in item.request["messages"]] == [m["role"] for m in body["messages"]]
        assert item.request["messages"][-1]["content"] == body["messages"][-1]["content"]
        assert request_fingerprint(item.request, canonical(item.request)) == item.fingerprint
    # the server is stopped: the replay answers every call from the rebuilt requests
    replayed = await workflow.areplay(output.run_id)
    assert replayed.content == output.content
    again = [r for r in await load_recorded(storage, replayed.run_id) if r.kind == "model"]
    assert [r.fingerprint for r in again] == [r.fingerprint for r in recorded]
    await _close(workflow)


async def test_a_run_recorded_with_whole_requests_still_replays(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAIT_TEST_LOG", str(tmp_path / "effects.log"))
    monkeypatch.setattr(StorageSink, "deltas", False)  # the format before deltas ...
    monkeypatch.setattr(_record_store, "INLINE", 0)  # ... and before short payloads were inline
    with OpenAIServer() as server:
        workflow, output, storage = await _run_loop(backend, server)
    calls = [c for c in await storage.load_calls(output.run_id) if c.kind == "model"]
    stored = await storage.load_payloads([c.request for c in calls])
    assert all(DELTA not in json.loads(stored[c.request]) for c in calls)
    monkeypatch.setattr(StorageSink, "deltas", True)
    monkeypatch.undo()
    replayed = await workflow.areplay(output.run_id)  # the server is stopped
    assert replayed.content == output.content
    old = [r for r in await load_recorded(storage, output.run_id) if r.kind == "model"]
    new = [r for r in await load_recorded(storage, replayed.run_id) if r.kind == "model"]
    assert [r.request for r in new] == [r.request for r in old]
    assert [r.fingerprint for r in new] == [r.fingerprint for r in old]
    # the replay stored its own requests as deltas, much smaller than the whole ones
    new_calls = [c for c in await storage.load_calls(replayed.run_id) if c.kind == "model"]
    new_stored = await storage.load_payloads([c.request for c in new_calls])
    assert sum(map(len, new_stored.values())) < sum(map(len, stored.values())) / 2
    await _close(workflow)


def test_deltas_carry_changed_fields_and_unrelated_requests_are_stored_whole() -> None:
    from plait._record_data import Recorded
    from plait._record_store import rebuild_request, to_records

    system = {"role": "system", "content": "Be brief."}
    user = {"role": "user", "content": "hi"}
    first = {"model": "m", "messages": [system, user], "tools": [], "tool_choice": "auto"}
    second = {
        "model": "m",
        "messages": [system, user, {"role": "assistant", "content": "yo"}],
        "tools": ["t"],
    }
    other = {"model": "m", "messages": [{"role": "user", "content": "something else"}], "tools": ["t"]}
    items = [
        Recorded("model", "s", i, "m", f"fp{i}", r, {"message": {}})
        for i, r in enumerate((first, second, other))
    ]
    last: dict[Any, Any] = {}
    records, payloads = to_records("run", items, last)
    parsed = {h: json.loads(text) for h, text in payloads.items()}
    delta = parsed[records[1].request]
    assert delta[DELTA] == 1 and delta["keep"] == 2 and delta["set"] == {"tools": ["t"]}
    assert delta["drop"] == ["tool_choice"]
    assert DELTA not in parsed[records[2].request]  # nothing in common: stored whole
    built: dict[str, Any] = {}
    assert [rebuild_request(r.request, parsed, built) for r in records] == [first, second, other]
    assert [r.fingerprint for r in records] == ["fp0", "fp1", "fp2"]  # as the recorder computed them


async def test_short_payloads_are_kept_in_the_call_record_and_read_back(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAIT_TEST_LOG", str(tmp_path / "effects.log"))
    with OpenAIServer() as server:
        workflow, output, storage = await _run_loop(backend, server)
    calls = await storage.load_calls(output.run_id)
    hashes = [h for c in calls for h in (c.request, c.response)]
    stored = await storage.load_payloads(hashes)
    for call in calls:
        for digest in (call.request, call.response):  # in one place, never both
            assert (digest in stored) != (digest in call.inline), call
        assert all(len(text) < INLINE for text in call.inline.values())
        if call.kind == "model":  # the next request's delta refers to it: stored apart
            assert call.request in stored
    tools = [c for c in calls if c.kind == "tool"]
    assert len(tools) == 5 and all(c.request in c.inline and c.response in c.inline for c in tools)
    recorded = await load_recorded(storage, output.run_id)
    assert [r.request["arguments"] for r in recorded if r.kind == "tool"] == [{"n": n} for n in range(1, 6)]
    replayed = await workflow.areplay(output.run_id)  # the server is stopped
    assert replayed.content == output.content
    await _close(workflow)


def test_a_call_record_stored_before_inline_payloads_reads_as_none_inline() -> None:
    old = {"run_id": "r", "step_id": "s", "kind": "tool", "fingerprint": "f", "request": "a", "response": "b"}
    assert CallRecord.model_validate_json(json.dumps(old)).inline == {}


async def test_a_lone_surrogate_in_a_tool_call_is_recorded_and_replayed(backend: str) -> None:
    """JSON's "\\ud800" decodes to a str no UTF-8 database stores: a tool call holding one
    failed its step in the recording (the canonical text now writes it as its escape)."""
    odd = "x\ud800y\x00z"

    def reply(messages: list[Any]) -> Any:
        if messages[-1].role != "tool":
            return ToolCall("c1", "echo", {"text": odd})
        return f"echoed {len(messages[-1].content)} characters"

    def echo(text: str) -> str:
        """Echo the text."""
        return text + "\udfff"

    agent = Agent(name="Echo", model=FunctionModel(reply), tools=[echo])
    workflow = Workflow(name="odd", steps=[Step(name="echo", agent=agent)], storage=storage_for(backend))
    output = await workflow.arun("echo it")
    assert output.content == "echoed 6 characters"
    storage = await workflow._ready_storage()
    assert storage is not None
    (tool,) = [r for r in await load_recorded(storage, output.run_id) if r.kind == "tool"]
    assert tool.request["arguments"] == {"text": odd} and tool.response["result"] == odd + "\udfff"
    replayed = await workflow.areplay(output.run_id)  # strict: every call answered from the record
    assert replayed.content == output.content
    await _close(workflow)
