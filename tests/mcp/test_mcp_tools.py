"""MCPTools against a real MCP server (the SDK's MCPServer): over stdio as a subprocess and
over streamable HTTP with uvicorn, called by agents on FunctionModel.

Every test starts a server process (a second or more on a busy machine), hence ``slow``;
the tests that only call tools share one HTTP server."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from plait import Agent, PlaitError, Toolset, ToolsetError
from plait.errors import DefinitionError
from plait.events import ToolCallCompletedEvent, ToolCallStartedEvent
from plait.models import Message, ModelRequest, ToolCall
from plait.testing import FunctionModel, cassette
from plait_mcp import MCPTools
from tests.mcp.conftest import STDIO, HttpServer
from tests.servers.openai_server import OpenAIServer, Reply, ToolCallReply, openai_server

__all__ = ["openai_server"]

pytestmark = pytest.mark.slow


def calling(*calls: tuple[str, dict[str, Any]], seen: list[ModelRequest] | None = None) -> FunctionModel:
    """A model that asks for ``calls`` (all at once) and then answers with the tool results."""

    def reply(messages: list[Message], request: ModelRequest) -> Any:
        if seen is not None:
            seen.append(request)
        if messages[-1].role == "user":
            return [ToolCall(f"c{i}", name, arguments) for i, (name, arguments) in enumerate(calls)]
        return " | ".join(str(m.content) for m in messages if m.role == "tool")

    return FunctionModel(reply)


def tool_results(output: Any) -> dict[str, str]:
    return {str(m.name): str(m.content) for m in output.messages if m.role == "tool"}


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_server_tools_become_agent_tools_with_schemas_events_and_spans(
    transport: str, request: pytest.FixtureRequest
) -> None:
    tools = (
        MCPTools(STDIO) if transport == "stdio" else MCPTools(url=request.getfixturevalue("http_server").url)
    )
    assert isinstance(tools, Toolset)
    seen: list[ModelRequest] = []
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    agent = Agent(
        name="calc",
        model=calling(("add", {"a": 2, "b": 3}), ("echo", {"text": "héllo ✓ \x00 end"}), seen=seen),
        tools=[tools],
        tracer_provider=provider,
    )
    events = list(agent.run("sum", stream=True, stream_events=True))
    provider.shutdown()
    definitions = {d.name: d for d in seen[0].tools}
    assert {"add", "echo", "refuse", "die", "wait"} <= set(definitions)
    add = definitions["add"]
    assert add.description == "Add two integers."
    assert add.parameters["properties"]["a"] == {
        "description": "The first addend",
        "title": "A",
        "type": "integer",
    }
    assert add.parameters["required"] == ["a", "b"] and "title" not in add.parameters
    output = agent.get_last_run_output()
    assert output is not None
    assert tool_results(output) == {"add": "5", "echo": "héllo ✓ \x00 end"}
    assert output.content == "5 | héllo ✓ \x00 end"
    started = [e.tool_name for e in events if isinstance(e, ToolCallStartedEvent)]
    completed = {e.tool_name: e.result for e in events if isinstance(e, ToolCallCompletedEvent)}
    assert sorted(started) == ["add", "echo"] and completed["add"] == "5"
    names = [s.name for s in exporter.get_finished_spans()]
    assert "execute_tool add" in names and "execute_tool echo" in names


def test_filters_and_prefix_rename_and_select_the_tools(shared_http: HttpServer) -> None:
    seen: list[ModelRequest] = []
    tools = MCPTools(url=shared_http.url, include_tools=["add", "echo"], tool_name_prefix="calc")
    agent = Agent(model=calling(("calc_add", {"a": 1, "b": 1}), seen=seen), tools=[tools])
    assert agent.run("x").content == "2"
    assert [d.name for d in seen[0].tools] == ["calc_add", "calc_echo"]

    seen.clear()
    without = Agent(
        model=calling(("echo", {"text": "x"}), seen=seen),
        tools=[MCPTools(url=shared_http.url, exclude_tools=["die"])],
    )
    assert without.run("x").content == "x"
    names = [d.name for d in seen[0].tools]
    assert "die" not in names and "add" in names


def test_a_filter_naming_a_tool_the_server_lacks_says_what_it_has(shared_http: HttpServer) -> None:
    agent = Agent(model=calling(), tools=[MCPTools(url=shared_http.url, include_tools=["add", "multiply"])])
    with pytest.raises(DefinitionError, match=r"include_tools names \['multiply'\].*it has: add, echo"):
        agent.run("x")


def test_a_name_clash_with_a_function_tool_names_both(shared_http: HttpServer) -> None:
    def add(a: int, b: int) -> int:
        return a - b

    agent = Agent(model=calling(), tools=[add, MCPTools(url=shared_http.url)])
    with pytest.raises(PlaitError, match=r"gives a tool named 'add', a name the agent already has"):
        agent.run("x")


def test_tool_errors_go_back_to_the_model(shared_http: HttpServer) -> None:
    agent = Agent(
        model=calling(
            ("refuse", {"reason": "no"}),
            ("crash_hard", {}),
            ("add", {"a": "x", "b": 1}),
        ),
        tools=[MCPTools(url=shared_http.url)],
    )
    results = tool_results(agent.run("x"))
    assert results["refuse"] == "Error: MCPToolError: Error executing tool refuse: refused: no"
    assert results["crash_hard"] == "Error: MCPToolError: Error executing tool crash_hard"
    assert results["add"].startswith("Error: MCPToolError: Error executing tool add: 1 validation error")


def test_env_and_cwd_reach_a_stdio_server(tmp_path: Path) -> None:
    tools = MCPTools(STDIO, env={"PLAIT_MCP_TEST": "from the test ✓"}, cwd=tmp_path)
    agent = Agent(model=calling(("environment", {"name": "PLAIT_MCP_TEST"})), tools=[tools])
    assert agent.run("x").content == f"from the test ✓ in {tmp_path.resolve()}"


def test_a_server_that_cannot_start_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-server"
    agent = Agent(model=calling(), tools=[MCPTools([str(missing)])])
    with pytest.raises(ToolsetError, match=r"MCP server '.*no-such-server': could not connect") as caught:
        agent.run("x")
    assert caught.value.toolset == str(missing)


def test_a_server_dying_mid_call_stops_the_run_naming_server_and_tool() -> None:
    tools = MCPTools(STDIO, name="test-server")
    agent = Agent(model=calling(("die", {})), tools=[tools])
    started = time.monotonic()
    with pytest.raises(
        ToolsetError, match=r"MCP server 'test-server' went away while calling tool 'die'"
    ) as e:
        agent.run("x")
    assert (e.value.toolset, e.value.tool) == ("test-server", "die")
    assert time.monotonic() - started < 15


def killing_between_calls(kill: Callable[[int], None]) -> FunctionModel:
    """Asks for the server's pid, kills the server, then asks for ``add``."""

    def reply(messages: list[Message]) -> Any:
        tool_messages = [m for m in messages if m.role == "tool"]
        if not tool_messages:
            return ToolCall("p", "pid", {})
        kill(int(str(tool_messages[0].content)))
        return ToolCall("a", "add", {"a": 1, "b": 2})

    return FunctionModel(reply)


def test_a_stdio_server_killed_between_calls_is_a_clear_error() -> None:
    def kill(pid: int) -> None:
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.3)  # the SDK's reader sees the pipe close

    agent = Agent(model=killing_between_calls(kill), tools=[MCPTools(STDIO, name="stdio-server")])
    with pytest.raises(ToolsetError, match=r"MCP server 'stdio-server' went away while calling tool 'add'"):
        agent.run("x")


def test_an_http_server_killed_mid_run_is_a_clear_error(http_server: HttpServer) -> None:
    def kill(pid: int) -> None:
        http_server.process.kill()
        http_server.process.wait()

    agent = Agent(model=killing_between_calls(kill), tools=[MCPTools(url=http_server.url)])
    with pytest.raises(
        ToolsetError, match=rf"MCP server '{http_server.url}' went away while calling tool 'add'"
    ):
        agent.run("x")


def test_an_unopened_toolset_connects_per_run_across_event_loops() -> None:
    tools = MCPTools(STDIO)
    agent = Agent(model=calling(("pid", {})), tools=[tools])
    first = asyncio.run(agent.arun("x")).content
    second = asyncio.run(agent.arun("x")).content
    assert first.isdigit() and second.isdigit()
    assert first != second  # each run started (and stopped) a server of its own


def test_an_opened_toolset_is_shared_by_runs_and_can_be_opened_again_in_a_new_loop() -> None:
    tools = MCPTools(STDIO)
    agent = Agent(model=calling(("pid", {})), tools=[tools])

    async def twice() -> list[str]:
        async with tools:
            return [str((await agent.arun("x")).content) for _ in range(2)]

    first = asyncio.run(twice())
    second = asyncio.run(twice())
    assert first[0] == first[1] and second[0] == second[1]  # one server per async with
    assert first[0] != second[0]


def test_an_opened_toolset_used_from_another_event_loop_says_so() -> None:
    tools = MCPTools(STDIO)
    agent = Agent(model=calling(("pid", {})), tools=[tools])

    async def main() -> None:
        async with tools:
            with pytest.raises(PlaitError, match="opened \\(async with\\) in another event loop"):
                agent.run("x")  # a sync run inside a loop runs in a loop of its own

    asyncio.run(main())


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_twenty_concurrent_runs_share_one_connection(transport: str, request: pytest.FixtureRequest) -> None:
    tools = (
        MCPTools(STDIO) if transport == "stdio" else MCPTools(url=request.getfixturevalue("http_server").url)
    )

    def reply(messages: list[Message]) -> Any:
        if messages[-1].role == "user":
            return [
                ToolCall("w", "wait", {"seconds": 0.3, "tag": str(messages[-1].content)}),
                ToolCall("p", "pid", {}),
            ]
        return " ".join(str(m.content) for m in messages if m.role == "tool")

    agent = Agent(model=FunctionModel(reply), tools=[tools])

    async def main() -> list[str]:
        async with tools:
            started = time.monotonic()
            outputs = await asyncio.gather(*(agent.arun(f"run{i}") for i in range(20)))
            assert time.monotonic() - started < 20 * 0.3 / 2  # the calls overlapped
            return [str(o.content) for o in outputs]

    answers = asyncio.run(main())
    assert [a.split(" ")[:2] for a in answers] == [["waited", f"run{i}"] for i in range(20)]
    assert len({a.split(" ")[2] for a in answers}) == 1  # one server process answered them all


def test_a_closed_shared_connection_is_reopened_per_run(shared_http: HttpServer) -> None:
    tools = MCPTools(url=shared_http.url)
    agent = Agent(model=calling(("add", {"a": 1, "b": 1})), tools=[tools])

    async def main() -> str:
        async with tools:
            pass
        return str((await agent.arun("x")).content)

    assert asyncio.run(main()) == "2"


def test_tool_calls_are_recorded_and_replayed_without_calling_the_server(tmp_path: Path) -> None:
    tools = MCPTools(STDIO, env={"PLAIT_MCP_TEST": "recorded"})
    path = tmp_path / "cassette.jsonl"
    agent = Agent(model=calling(("environment", {"name": "PLAIT_MCP_TEST"}), ("pid", {})), tools=[tools])
    # each run starts a server of its own: a replayed pid is the recorded server's, not a new one
    with cassette(path, mode="record"):
        recorded = agent.run("x")
    with cassette(path, mode="replay"):
        replayed = agent.run("x")
    assert replayed.content == recorded.content  # the same pid: the server's answer was replayed
    assert tool_results(replayed) == tool_results(recorded)


def test_definition_errors_say_what_was_expected() -> None:
    with pytest.raises(DefinitionError, match=r"give a command .* or url="):
        MCPTools()
    with pytest.raises(DefinitionError, match=r"give a command .* or url="):
        MCPTools("x", url="http://127.0.0.1:1/mcp")
    with pytest.raises(DefinitionError, match="url must be an http"):
        MCPTools(url="ftp://example")
    with pytest.raises(DefinitionError, match="env= and cwd= are for a stdio server"):
        MCPTools(url="http://127.0.0.1:1/mcp", env={"A": "1"})
    with pytest.raises(DefinitionError, match="SSE transport"):
        MCPTools(url="http://127.0.0.1:1/mcp", transport="sse")
    with pytest.raises(DefinitionError, match="must be a list of tool names"):
        MCPTools("x", include_tools="add")
    with pytest.raises(DefinitionError, match=r"\['add'\] are in both"):
        MCPTools("x", include_tools=["add"], exclude_tools=["add"])
    with pytest.raises(DefinitionError, match="timeout_seconds must be a positive number"):
        MCPTools("x", timeout_seconds=0)
    assert MCPTools("python -m my_server --port 1").command == ["python", "-m", "my_server", "--port", "1"]
    assert repr(MCPTools(["python", "s.py"])) == "MCPTools('python s.py')"


def test_a_request_that_times_out_goes_back_to_the_model(shared_http: HttpServer) -> None:
    tools = MCPTools(url=shared_http.url, timeout_seconds=0.5)

    def reply(messages: list[Message]) -> Any:
        results = [m for m in messages if m.role == "tool"]
        if not results:
            return ToolCall("w", "wait", {"seconds": 3, "tag": "late"})
        if len(results) == 1:
            return ToolCall("a", "add", {"a": 2, "b": 2})  # the connection still serves
        return " | ".join(str(m.content) for m in results)

    content = str(Agent(model=FunctionModel(reply), tools=[tools]).run("x").content)
    timed_out, added = content.split(" | ")
    assert timed_out.startswith("Error: MCPError:") and "tim" in timed_out.lower()
    assert added == "4"


def test_an_openai_model_calls_an_mcp_tool_through_the_real_sdk(
    openai_server: OpenAIServer, shared_http: HttpServer
) -> None:
    from plait_openai import OpenAIModel

    openai_server.enqueue(Reply(tool_calls=[ToolCallReply("calc_add", {"a": 40, "b": 2})]), "It is 42.")
    tools = MCPTools(url=shared_http.url, include_tools=["add"], tool_name_prefix="calc")

    async def main() -> str:
        model = OpenAIModel("gpt-4o-mini", base_url=openai_server.base_url, api_key="test-key")
        try:
            return str((await Agent(model=model, tools=[tools]).arun("What is 40 + 2?")).content)
        finally:
            await model.aclose()

    assert asyncio.run(main()) == "It is 42."
    first, second = openai_server.chat_requests
    (function,) = [t["function"] for t in first["tools"]]
    assert function["name"] == "calc_add" and function["description"] == "Add two integers."
    assert function["parameters"]["properties"]["b"]["description"] == "The second addend"
    result = second["messages"][-1]
    assert (result["role"], result["content"]) == ("tool", "42")


def test_runs_in_several_threads_each_connect_for_themselves() -> None:
    import threading

    agent = Agent(model=calling(("pid", {}), ("add", {"a": 1, "b": 2})), tools=[MCPTools(STDIO)])
    answers: list[str] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            answers.append(str(agent.run("x").content))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [] and len(answers) == 4
    assert all(a.endswith(" | 3") for a in answers)
    assert len({a.split(" | ")[0] for a in answers}) == 4  # four servers, one per run


def test_a_workflow_run_with_storage_records_the_calls_and_replays_them(tmp_path: Path) -> None:
    from plait import Step, Workflow

    agent = Agent(name="calc", model=calling(("pid", {}), ("add", {"a": 2, "b": 2})), tools=[MCPTools(STDIO)])
    workflow = Workflow(
        name="w", steps=[Step(name="ask", agent=agent)], storage=f"sqlite:///{tmp_path / 'runs.db'}"
    )
    first = workflow.run("x")
    again = workflow.replay(first.run_id)  # zero live calls: a new server would have a new pid
    assert again.content == first.content and str(first.content).endswith(" | 4")
    assert again.replay_differences == []


def test_parallel_workflow_branches_share_an_opened_connection() -> None:
    from plait import Parallel, Step, Workflow

    tools = MCPTools(STDIO)
    branches = [
        Step(name=f"b{i}", agent=Agent(name=f"a{i}", model=calling(("pid", {})), tools=[tools]))
        for i in range(3)
    ]
    workflow = Workflow(name="w", steps=[Parallel(*branches, name="p")])

    async def shared() -> list[str]:
        async with tools:
            output = await workflow.arun("x")
        return [str(r.content) for r in output.step_results[0].steps]

    pids = asyncio.run(shared())
    assert len(pids) == 3 and len(set(pids)) == 1 and pids[0].isdigit()


def test_a_server_dying_in_a_workflow_step_fails_the_step_naming_server_and_tool() -> None:
    from plait import Step, StepError, Workflow

    agent = Agent(name="calc", model=calling(("die", {})), tools=[MCPTools(STDIO, name="dying")])
    workflow = Workflow(name="w", steps=[Step(name="ask", agent=agent)])
    with pytest.raises(
        StepError, match=r"Step 'ask' failed: ToolsetError: MCP server 'dying' went away"
    ) as e:
        workflow.run("x")
    assert isinstance(e.value.__cause__, ToolsetError) and e.value.__cause__.tool == "die"


def test_a_shared_connection_whose_server_died_fails_runs_until_connect_replaces_it() -> None:
    tools = MCPTools(STDIO, name="shared")

    def reply(messages: list[Message]) -> Any:
        if messages[-1].role == "user":
            return ToolCall("c", str(messages[-1].content), {})
        return str(messages[-1].content)

    agent = Agent(model=FunctionModel(reply), tools=[tools])

    async def main() -> str:
        async with tools:
            with pytest.raises(ToolsetError, match="while calling tool 'die'"):
                await agent.arun("die")
            with pytest.raises(ToolsetError, match="MCP server 'shared' went away: "):
                await agent.arun("pid")  # the next run: the same connection, still gone
            await tools.connect()  # a new server
            return str((await agent.arun("pid")).content)

    assert asyncio.run(main()).isdigit()
