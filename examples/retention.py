"""Retention: stored runs are deleted when they are old enough, with everything that belongs to them.

`Workflow(retention="30d")` is stored with each run; `storage.prune()` (or `plait runs prune`,
from cron or a worker) deletes the finished runs older than their workflow's retention: their
checkpoints, events, recorded calls, and the payloads no other run shares. Here the retention is
one second, so the example does not have to wait a month. From the command line:

    plait runs prune --dry-run                       # what each workflow's retention would delete
    plait runs prune --older-than 30d --status completed
    plait runs delete RUN_ID                         # one run (refused while a process executes it)
    plait sessions list
    plait sessions delete SESSION_ID                 # a session's state and conversation history
"""

import asyncio
import os

from plait import Step, Workflow
from plait.storage import resolve_storage

storage = resolve_storage(os.environ.get("PLAIT_STORAGE") or "sqlite:///.plait/plait.db")


def count(step_input, session_state):
    session_state["visits"] = session_state.get("visits", 0) + 1
    return f"visit {session_state['visits']} for {step_input.input}"


workflow = Workflow(
    name="Short-lived",
    steps=[Step(name="count", executor=count)],
    storage=storage,
    session_id="retention-example",
    retention="1s",
)


async def main() -> None:
    first = await workflow.arun("ada")
    await asyncio.sleep(1.2)  # the first run is now past its retention
    second = await workflow.arun("bob")
    assert storage is not None
    print(f"checkpoints of the first run: {len(await storage.load_checkpoints(first.run_id))}")
    print(f"pruned: {await storage.prune(workflow_id=workflow.id)} run")
    print(f"first run kept: {await storage.get_run(first.run_id) is not None}")
    print(f"second run kept: {await storage.get_run(second.run_id) is not None}")
    print(f"checkpoints of the first run now: {len(await storage.load_checkpoints(first.run_id))}")
    sessions = [s.session_id for s in await storage.list_sessions()]
    print(f"session listed: {'retention-example' in sessions}")
    print(f"session deleted: {await storage.delete_session('retention-example')}")
    print(f"second run deleted: {await storage.delete_run(second.run_id)}")


if __name__ == "__main__":
    asyncio.run(main())
