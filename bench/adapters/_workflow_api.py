"""Workload builders for the Agno-style workflow API, shared by the plait and Agno adapters.

plait mirrors Agno's `Workflow, Step, Parallel, Condition, Loop, Router, StepOutput`, so both
adapters build the very same trees from this one module; each passes its own names and the few
things that differ (how a workflow is constructed, where a Parallel's branch results are found).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Api:
    Workflow: Any
    Step: Any
    Parallel: Any
    Condition: Any
    Loop: Any
    Router: Any
    StepOutput: Any
    make_workflow: Callable[..., Any]  # (name, steps, **extra) -> workflow
    parallel_contents: Callable[[Any], list[Any]]  # run output -> branch contents


def _value(step_input: Any) -> Any:
    previous = step_input.previous_step_content
    return step_input.input if previous is None else previous


def _add_one_step(api: Api, name: str) -> Any:
    StepOutput = api.StepOutput

    def add_one(step_input: Any) -> Any:
        return StepOutput(content=_value(step_input) + 1)

    return api.Step(name=name, executor=add_one)


def _aadd_one_step(api: Api, name: str) -> Any:
    StepOutput = api.StepOutput

    async def add_one(step_input: Any) -> Any:
        return StepOutput(content=_value(step_input) + 1)

    return api.Step(name=name, executor=add_one)


def chain_workflow(api: Api, n: int, **extra: Any) -> Any:
    return api.make_workflow("chain", [_add_one_step(api, f"s{i}") for i in range(n)], **extra)


def build(api: Api, workload: str, params: dict[str, Any], **extra: Any) -> Callable[[], Any]:
    StepOutput = api.StepOutput
    if workload == "chain_sync":
        wf = chain_workflow(api, params["n"])
        return lambda: wf.run(0).content

    if workload == "chain_async":
        wf = api.make_workflow("chain", [_aadd_one_step(api, f"s{i}") for i in range(params["n"])])

        async def run_async() -> Any:
            return (await wf.arun(0)).content

        return run_async

    if workload == "fanout_async":

        def sleeper(i: int) -> Any:
            async def branch(step_input: Any) -> Any:
                await asyncio.sleep(0.01)
                return StepOutput(content=i)

            return api.Step(name=f"b{i}", executor=branch)

        wf = api.make_workflow(
            "fanout", [api.Parallel(*[sleeper(i) for i in range(params["n"])], name="fan")], **extra
        )

        async def run_fanout() -> Any:
            return sorted(api.parallel_contents(await wf.arun(0)))

        return run_fanout

    if workload == "fanout_sync":

        def blocker(i: int) -> Any:
            def branch(step_input: Any) -> Any:
                time.sleep(0.01)
                return StepOutput(content=i)

            return api.Step(name=f"b{i}", executor=branch)

        wf = api.make_workflow(
            "fanout", [api.Parallel(*[blocker(i) for i in range(params["n"])], name="fan")]
        )
        return lambda: sorted(api.parallel_contents(wf.run(0)))

    if workload == "nested":
        depth, width = params["depth"], params["width"]
        inner = api.make_workflow(f"level{depth}", [_add_one_step(api, f"a{i}") for i in range(width)])
        for d in range(depth - 1, 0, -1):
            inner = api.make_workflow(
                f"level{d}",
                [
                    _add_one_step(api, "before"),
                    api.Step(name="inner", workflow=inner),
                    _add_one_step(api, "after"),
                ],
            )
        return lambda: inner.run(0).content

    if workload == "loop":
        n = params["n"]
        iterations = [0]

        def inc(step_input: Any) -> Any:
            iterations[0] += 1
            return StepOutput(content=_value(step_input) + 1)

        wf = api.make_workflow(
            "loop",
            [
                api.Loop(
                    name="loop",
                    steps=[api.Step(name="inc", executor=inc)],
                    end_condition=lambda outputs: outputs[-1].content >= n,
                    max_iterations=n,
                    forward_iteration_output=True,
                )
            ],
        )

        def run_loop() -> Any:
            iterations[0] = 0
            return wf.run(0).content, iterations[0]

        return run_loop

    if workload == "router":

        def choice(i: int) -> Any:
            def add(step_input: Any) -> Any:
                return StepOutput(content=_value(step_input) + i)

            return api.Step(name=f"c{i}", executor=add)

        choices = [choice(i) for i in range(params["n"])]
        picked = choices[params["pick"]]
        wf = api.make_workflow(
            "router", [api.Router(name="router", selector=lambda step_input: picked, choices=choices)]
        )
        return lambda: wf.run(0).content

    if workload == "condition":
        flag = params["value"]
        calls = [0]

        def guarded(step_input: Any) -> Any:
            calls[0] += 1
            return StepOutput(content=_value(step_input) + 1)

        wf = api.make_workflow(
            "condition",
            [
                api.Condition(
                    name="check",
                    evaluator=lambda step_input: flag,
                    steps=[api.Step(name="guarded", executor=guarded)],
                )
            ],
        )

        def run_condition() -> int:
            calls[0] = 0
            wf.run(0)
            return calls[0]

        return run_condition

    if workload == "stream":
        wf = chain_workflow(api, params["n"])

        def run_stream() -> tuple[Any, int]:
            count, last = 0, None
            for event in wf.run(0, stream=True, stream_events=True):
                count += 1
                last = event
            return getattr(last, "content", None), count

        return run_stream

    raise KeyError(f"no workload {workload!r}")
