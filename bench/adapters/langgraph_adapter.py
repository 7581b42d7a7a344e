"""LangGraph (`langgraph.graph.StateGraph`): each workload as the idiomatic graph.

State is `{"value": int}` (plus a list reducer for fan-out results). A chain is N nodes joined by
edges; fan-out is `Send` to one branch node per item; nesting adds compiled subgraphs as nodes; the
loop is a conditional back-edge, the router and condition are conditional edges. No checkpointer,
LangSmith tracing off (`LANGSMITH_TRACING=false`, `LANGCHAIN_TRACING_V2=false` from the driver).
"""

from __future__ import annotations

import asyncio
import operator
import time
from collections.abc import Callable
from typing import Annotated, Any, TypedDict

IMPORT_STATEMENT = "from langgraph.graph import StateGraph"
FIRST_RUN_STATEMENT = (
    "from typing import TypedDict\n"
    "from langgraph.graph import END, START, StateGraph\n"
    "class S(TypedDict):\n    value: int\n"
    "g = StateGraph(S)\n"
    "g.add_node('s', lambda state: {'value': state['value'] + 1})\n"
    "g.add_edge(START, 's')\ng.add_edge('s', END)\n"
    "g.compile().invoke({'value': 0})"
)


class ValueState(TypedDict):
    value: int


class FanState(TypedDict):
    results: Annotated[list[int], operator.add]


def _add_one(state: ValueState) -> dict[str, int]:
    return {"value": state["value"] + 1}


async def _aadd_one(state: ValueState) -> dict[str, int]:
    return {"value": state["value"] + 1}


def _chain_graph(n: int, node: Callable[..., Any]) -> Any:
    from langgraph.graph import END, START, StateGraph

    g = StateGraph(ValueState)
    previous = START
    for i in range(n):
        g.add_node(f"s{i}", node)
        g.add_edge(previous, f"s{i}")
        previous = f"s{i}"
    g.add_edge(previous, END)
    return g.compile()


def _config(supersteps: int) -> dict[str, Any]:
    # LangGraph stops a run after 25 supersteps by default; long chains need more.
    return {"recursion_limit": supersteps + 10}


def _fanout(n: int, branch: Callable[..., Any]) -> Any:
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import Send

    g = StateGraph(FanState)
    g.add_node("branch", branch)
    g.add_conditional_edges(START, lambda state: [Send("branch", {"i": i}) for i in range(n)], ["branch"])
    g.add_edge("branch", END)
    return g.compile()


def build(workload: str, params: dict[str, Any]) -> Callable[[], Any]:
    from langgraph.graph import END, START, StateGraph

    if workload == "chain_sync":
        app, config = _chain_graph(params["n"], _add_one), _config(params["n"])
        return lambda: app.invoke({"value": 0}, config)["value"]

    if workload == "chain_async":
        app, config = _chain_graph(params["n"], _aadd_one), _config(params["n"])

        async def run_async() -> int:
            value: int = (await app.ainvoke({"value": 0}, config))["value"]
            return value

        return run_async

    if workload == "fanout_async":

        async def sleeper(payload: dict[str, int]) -> dict[str, list[int]]:
            await asyncio.sleep(0.01)
            return {"results": [payload["i"]]}

        app = _fanout(params["n"], sleeper)

        async def run_fanout() -> list[int]:
            return sorted((await app.ainvoke({"results": []}))["results"])

        return run_fanout

    if workload == "fanout_sync":

        def blocker(payload: dict[str, int]) -> dict[str, list[int]]:
            time.sleep(0.01)
            return {"results": [payload["i"]]}

        app = _fanout(params["n"], blocker)
        return lambda: sorted(app.invoke({"results": []})["results"])

    if workload == "nested":
        depth, width = params["depth"], params["width"]
        inner = _chain_graph(width, _add_one)
        for _ in range(depth - 1):
            g = StateGraph(ValueState)
            g.add_node("before", _add_one)
            g.add_node("inner", inner)
            g.add_node("after", _add_one)
            g.add_edge(START, "before")
            g.add_edge("before", "inner")
            g.add_edge("inner", "after")
            g.add_edge("after", END)
            inner = g.compile()
        app = inner
        return lambda: app.invoke({"value": 0})["value"]

    if workload == "loop":
        n = params["n"]
        iterations = [0]

        def inc(state: ValueState) -> dict[str, int]:
            iterations[0] += 1
            return {"value": state["value"] + 1}

        g = StateGraph(ValueState)
        g.add_node("inc", inc)
        g.add_edge(START, "inc")
        g.add_conditional_edges("inc", lambda state: END if state["value"] >= n else "inc", ["inc", END])
        app, config = g.compile(), _config(n)

        def run_loop() -> tuple[int, int]:
            iterations[0] = 0
            return app.invoke({"value": 0}, config)["value"], iterations[0]

        return run_loop

    if workload == "router":
        names = [f"c{i}" for i in range(params["n"])]
        picked = names[params["pick"]]
        g = StateGraph(ValueState)
        for i, name in enumerate(names):
            g.add_node(name, lambda state, i=i: {"value": state["value"] + i})
            g.add_edge(name, END)
        g.add_conditional_edges(START, lambda state: picked, names)
        app = g.compile()
        return lambda: app.invoke({"value": 0})["value"]

    if workload == "condition":
        flag = params["value"]
        calls = [0]

        def guarded(state: ValueState) -> dict[str, int]:
            calls[0] += 1
            return {"value": state["value"] + 1}

        g = StateGraph(ValueState)
        g.add_node("guarded", guarded)
        g.add_conditional_edges(START, lambda state: "guarded" if flag else END, ["guarded", END])
        g.add_edge("guarded", END)
        app = g.compile()

        def run_condition() -> int:
            calls[0] = 0
            app.invoke({"value": 0})
            return calls[0]

        return run_condition

    if workload == "stream":
        n = params["n"]
        app, config = _chain_graph(n, _add_one), _config(n)

        def run_stream() -> tuple[Any, int]:
            count, last = 0, None
            for update in app.stream({"value": 0}, config, stream_mode="updates"):
                count += 1
                last = update
            final = next(iter(last.values()))["value"] if last else None
            return final, count

        return run_stream

    raise KeyError(f"langgraph adapter has no workload {workload!r}")
