"""What user code sees of its step: :class:`RunContext`, passed to an executor or a tool that
declares a ``run_context`` parameter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plait._public import publish as _publish

if TYPE_CHECKING:
    from plait._context import StepContext

__all__ = ["RunContext"]


@dataclass(slots=True)
class RunContext:
    """What an executor (or an agent's tool) that declares a ``run_context`` parameter
    receives (one that declares ``session_state`` gets its :attr:`session_state`). A tool of an agent run outside any workflow gets one of the agent's own run:
    a fresh ``session_state``, the agent's run id, and an ``emit`` that goes nowhere."""

    session_state: dict[str, Any]
    run_id: str
    session_id: str
    workflow_id: str
    workflow_name: str
    step_id: str
    step_name: str
    nested_depth: int
    _ctx: StepContext | None
    #: who the run is for (``run(..., user_id=...)``)
    user_id: str | None = None
    #: the run's metadata: ``run(metadata=...)`` merged with ``Workflow(metadata=...)``
    #: (the workflow's keys win, as in Agno)
    metadata: dict[str, Any] | None = None
    #: the run's dependencies: ``Workflow(dependencies=...)`` merged with
    #: ``run(dependencies=...)`` (the run's keys win)
    dependencies: dict[str, Any] | None = None

    def emit(self, data: Any) -> None:
        """Send a custom event (any JSON-compatible data) to the run's listeners."""
        if self._ctx is not None:
            self._ctx.emit_content(data)

    @property
    def cancelled(self) -> bool:
        """True once this step's result will be discarded: the run was cancelled or timed
        out, this attempt timed out, or a sibling branch failed. Long sync code, which
        cannot be interrupted, should check it and return early."""
        ctx = self._ctx
        if ctx is None:
            return False
        return ctx.run.cancelled or (ctx.discard is not None and ctx.discard.is_set())

    @property
    def idempotency_key(self) -> str:
        """A key for this step of this run, for external APIs that accept an idempotency key:
        the same across the step's retries and across resumes of the run (it derives from the
        run id and the step id, ``loop[2]/pay`` for a loop iteration), different in another
        run (a fork or replay is a new run). Add your own suffix for several calls in one step."""
        import hashlib

        digest = hashlib.sha256(f"{self.run_id}\x00{self.step_id}".encode()).hexdigest()
        return f"plait-{digest[:32]}"

    def once(self, key: str, fn: Callable[[], Any]) -> Any:
        """Call ``fn()`` the first time this run reaches ``key``, record its result, and return
        the recorded result on every later call with ``key`` in this run: on a retry of the
        step, and on a resume of the run (the result is stored in the workflow's storage,
        through the content codec: pydantic models, dataclasses, datetimes and tuples come back
        as such; without storage it is kept in memory for the run).

        What is guaranteed: at most once *after a recorded result*. A crash between ``fn``'s
        effect and the record (a process killed mid-call) runs ``fn`` again on resume; only an
        idempotency key that the external system honours (pass :attr:`idempotency_key`)
        closes that window. ``fn`` is sync; use :meth:`aonce` for a coroutine function.
        """
        from plait._once import once

        return once(self, key, fn)

    async def aonce(self, key: str, fn: Callable[[], Any]) -> Any:
        """:meth:`once` for ``fn`` returning an awaitable (``await run_context.aonce(key, fn)``)."""
        from plait._once import aonce

        return await aonce(self, key, fn)


_publish(__name__, globals())
