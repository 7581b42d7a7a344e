"""Queued runs and a worker: runs wait in the storage until a worker claims them.

The runs are stored in SQLite (`.plait/plait.db`, or `$PLAIT_STORAGE`). `start(queue=True)`
only stores each run, as QUEUED; a worker claims them, highest priority first, and executes
them, heartbeating each one's lease. In production the worker is its own process (several of
them, on several machines, on PostgreSQL or Redis), stopped with SIGTERM:

    python examples/queued_runs.py                                   # queues three runs, serves them
    plait worker examples/queued_runs.py:workflow --concurrency 4    # a worker process
    plait runs recover examples/queued_runs.py:workflow              # without workers: crashed runs
"""

import asyncio
import os

from plait import Step, StepInput, Worker, Workflow


async def summarize(step_input: StepInput) -> str:
    await asyncio.sleep(0.05)  # a model call, say
    return f"summary of {step_input.input}"


workflow = Workflow(
    name="Summaries",
    steps=[Step(name="summarize", executor=summarize)],
    storage=os.environ.get("PLAIT_STORAGE") or "sqlite:///.plait/plait.db",
    max_concurrent_runs=1,  # one of these at a time in one worker: the order shows the priorities
)

if __name__ == "__main__":
    queued = [
        workflow.start("the weekly report", queue=True),
        workflow.start("an urgent ticket", queue=True, priority=10),
        workflow.start("the changelog", queue=True),
    ]
    print("queued:", ", ".join(str(q.status()) for q in queued))

    worker = Worker([workflow], concurrency=4, poll=0.1, log=lambda line: None)

    async def serve() -> None:
        task = asyncio.create_task(worker.run())
        for run in queued:
            record = await run.await_end(timeout=30)
            print(f"{record.status}: {record.content}")
        worker.stop()  # what SIGTERM does to `plait worker`: finish what it holds, claim no more
        await task

    asyncio.run(serve())
    inputs = {q.run_id: name for q, name in zip(queued, ("weekly", "urgent", "changelog"), strict=True)}
    print("executed in this order:", ", ".join(inputs[run_id] for run_id in worker.stats.finished))
