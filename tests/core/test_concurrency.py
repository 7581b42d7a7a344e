"""Parallel branches really run concurrently; sync code never blocks the loop there."""

from __future__ import annotations

import asyncio
import threading

from plait import Parallel, Step, StepInput, Workflow


def test_sync_branches_run_concurrently_in_threads() -> None:
    # Each branch waits at a barrier for all four: only concurrent execution passes it.
    barrier = threading.Barrier(4, timeout=10)
    threads: set[str] = set()

    def meet(step_input: StepInput) -> str:
        threads.add(threading.current_thread().name)
        barrier.wait()
        return "met"

    branches = [Step(name=f"b{i}", executor=meet) for i in range(4)]
    output = Workflow(name="w", steps=[Parallel(*branches, name="p")]).run("x")
    assert output.content == {f"b{i}": "met" for i in range(4)}
    assert len(threads) == 4 and all(name.startswith("plait") for name in threads)


def test_sync_branch_does_not_block_async_branches_or_the_loop() -> None:
    gate = threading.Event()

    def blocking(step_input: StepInput) -> str:
        # Blocks until the async branch has run, which needs the loop to be free.
        assert gate.wait(10), "the event loop was blocked by a sync branch"
        return "sync"

    async def opener(step_input: StepInput) -> str:
        await asyncio.sleep(0.01)
        gate.set()
        return "async"

    workflow = Workflow(name="w", steps=[Parallel(blocking, opener, name="p")])

    async def main() -> object:
        return (await workflow.arun("x")).content

    assert asyncio.run(main()) == {"blocking": "sync", "opener": "async"}


def test_sync_generators_in_branches_run_off_the_loop() -> None:
    barrier = threading.Barrier(2, timeout=10)

    def gen(step_input: StepInput):  # type: ignore[no-untyped-def]
        yield "start"
        barrier.wait()
        yield "end"

    output = Workflow(
        name="w", steps=[Parallel(Step(name="g1", executor=gen), Step(name="g2", executor=gen), name="p")]
    ).run("x")
    assert output.content == {"g1": "startend", "g2": "startend"}


def test_one_workflow_many_concurrent_runs() -> None:
    async def step(step_input: StepInput) -> str:
        await asyncio.sleep(0.001)
        return f"done {step_input.input}"

    workflow = Workflow(name="w", steps=[step, Parallel(step, Step(name="again", executor=step), name="p")])

    async def main() -> list[object]:
        outputs = await asyncio.gather(*(workflow.arun(i) for i in range(50)))
        return [o.content for o in outputs]

    contents = asyncio.run(main())
    assert contents == [{"step": f"done {i}", "again": f"done {i}"} for i in range(50)]
