"""Whole workflow runs on Ray: :func:`submit` sends a run to the cluster as one Ray task.

The task imports the workflow by its target (``module:name``, importable on the workers, as
Ray's own code is), so nothing but the input is pickled, and runs it with the workflow's
storage, which must be one every worker reaches (PostgreSQL or Redis on a cluster; a SQLite
file on one machine). Ray retries the task when its worker dies (``max_retries``, system
failures only: a step's exception is the run's result, not a retry); the retry finds the run in
the storage and continues it from its checkpoints (``continue_run``), waiting for the dead
worker's lease when Ray cannot prove the worker dead, so completed steps do not run again.
"""

from __future__ import annotations

import asyncio
import importlib
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from plait.errors import DefinitionError

if TYPE_CHECKING:
    from plait import Workflow, WorkflowRunOutput
    from plait_ray._runner import RayRunner

__all__ = ["RayRun", "submit"]

#: seconds a retried task waits at most for the lease of the worker that died
DEFAULT_LEASE_WAIT = 120.0


class RayRun:
    """A run submitted to Ray: its ``run_id`` (known at once, for ``plait runs show`` or a
    ``continue_run`` elsewhere) and its result."""

    def __init__(self, run_id: str, ref: Any) -> None:
        self.run_id = run_id
        #: the Ray ObjectRef of the task (``ray.get``, ``ray.wait``, ``ray.cancel`` take it)
        self.ref = ref

    def result(self, timeout: float | None = None) -> WorkflowRunOutput:
        """Wait for the run to end (at most ``timeout`` seconds) and return its output."""
        import ray

        output: WorkflowRunOutput = ray.get(self.ref, timeout=timeout)
        return output

    async def aresult(self) -> WorkflowRunOutput:
        """``await run.aresult()``: :meth:`result` in async code."""
        output: WorkflowRunOutput = await self.ref
        return output

    def __repr__(self) -> str:
        return f"RayRun(run_id={self.run_id!r})"


def submit(
    workflow: Workflow | str,
    input: Any = None,
    *,
    run_id: str | None = None,
    session_id: str | None = None,
    user_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    max_retries: int = 3,
    lease_wait: float = DEFAULT_LEASE_WAIT,
    runner: RayRunner | None = None,
    **task_options: Any,
) -> RayRun:
    """Run ``workflow`` on the Ray cluster as one task and return a :class:`RayRun` at once.

    ``workflow`` is a ``module:name`` target, or a Workflow loaded from one (``workflow.target``,
    set by ``plait run`` and ``plait serve``). ``env`` sets environment variables for the task
    (Ray's ``runtime_env``: ``{"PLAIT_STORAGE": ...}``); ``task_options`` are Ray's
    (``num_cpus``, ``resources``, ...). The connection is ``runner``'s (default: the
    process-wide :func:`plait_ray.shared_runner`, which starts a local cluster or joins
    ``RAY_ADDRESS``)."""
    target = workflow if isinstance(workflow, str) else getattr(workflow, "target", None)
    if not isinstance(target, str) or ":" not in target or target.endswith(".py") or ".py:" in target:
        raise DefinitionError(
            "plait_ray.submit: give the workflow as a 'module:name' target its workers can import "
            f"(a Workflow loaded by plait run or plait serve carries one), got {workflow!r}"
        )
    if not isinstance(workflow, str) and workflow.storage is None:
        raise DefinitionError(
            f"plait_ray.submit: Workflow {workflow.name!r} has no storage; a run on Ray needs one every "
            "worker reaches (storage='postgresql://...' or 'redis://...'), to survive a worker's loss"
        )
    if not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0:
        raise DefinitionError(f"plait_ray.submit: max_retries must be an int >= 0, got {max_retries!r}")
    if "retry_exceptions" in task_options:
        raise DefinitionError(
            "plait_ray.submit: retry_exceptions cannot be set; a failed step is the run's result "
            "(the workflow's retry policies retry steps)"
        )
    if runner is None:
        from plait_ray._runner import shared_runner

        runner = shared_runner()
    runner.start()
    import ray

    options: dict[str, Any] = {"max_retries": max_retries, "retry_exceptions": False, **task_options}
    if env:
        options["runtime_env"] = {"env_vars": dict(env)}
    run_id = run_id or str(uuid.uuid4())
    arguments = {"session_id": session_id, "user_id": user_id, "metadata": metadata}
    ref = ray.remote(run_task).options(**options).remote(target, input, run_id, arguments, lease_wait)
    return RayRun(run_id, ref)


def run_task(
    target: str, input: Any, run_id: str, arguments: dict[str, Any], lease_wait: float
) -> WorkflowRunOutput:
    """The Ray task: start the run, or continue it when an earlier attempt stored it."""
    module, _, name = target.rpartition(":")
    workflow = getattr(importlib.import_module(module), name)
    workflow.target = target
    return asyncio.run(_run_or_continue(workflow, input, run_id, arguments, lease_wait))


async def _run_or_continue(
    workflow: Workflow, input: Any, run_id: str, arguments: dict[str, Any], lease_wait: float
) -> WorkflowRunOutput:
    from plait import RunStatus, WorkflowRunOutput
    from plait.storage import resolve_storage

    storage = resolve_storage(workflow.storage)
    assert storage is not None
    try:
        await storage.setup()
        record = await storage.get_run(run_id)
    finally:
        if isinstance(workflow.storage, str):  # opened here from the URL; an object stays the workflow's
            await storage.close()
    try:
        if record is None:  # the first attempt, or one that died before the run was stored
            given = {k: v for k, v in arguments.items() if v is not None}
            output: WorkflowRunOutput = await workflow.arun(input, run_id=run_id, **given)
            return output
        if record.status in (RunStatus.COMPLETED.value, RunStatus.COMPLETED_WITH_ERRORS.value):
            # it ended, and the worker died before Ray had the result: what the storage holds
            return WorkflowRunOutput.from_dict(record.model_dump())
        return await workflow.acontinue_run(run_id, wait=lease_wait)
    finally:
        await workflow.aclose()
