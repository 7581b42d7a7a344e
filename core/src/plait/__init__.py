"""plait: deterministic, production-grade LLM workflows.

>>> from plait import Workflow, Step, Parallel
>>> workflow = Workflow(name="Pipeline", steps=[research, Parallel(a, b, name="fan-out"), write])
>>> workflow.print_response("topic", stream=True)

``import plait`` imports nothing else (PEP 562): a name is imported from its module the first
time it is looked up (``from plait import Workflow`` imports the workflow code, not agents,
storage or pydantic). Type checkers and IDEs see every name through the imports below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plait._budget import Budget
    from plait._codec import allow_content_type
    from plait._context import StepContext
    from plait._diff import RunDiff, StepDiff, adiff_runs, diff_runs
    from plait._durable import CachePolicy
    from plait._handle import AsyncRunHandle, RunHandle
    from plait._io import (
        ParallelContent,
        RunStatus,
        StepInput,
        StepMetrics,
        StepOutput,
        StepType,
        WorkflowExecutionInput,
        WorkflowMetrics,
        WorkflowRunOutput,
        WorkflowStepMetrics,
    )
    from plait._limits import RateLimit, set_rate_limits
    from plait._pause import PendingInput
    from plait._queue import QueuedRun
    from plait._run_context import RunContext
    from plait._worker import Worker
    from plait.agent import Agent, AgentRunOutput, Tool, Toolset, tool
    from plait.approval import Approval, RejectedError
    from plait.errors import (
        BudgetExceededError,
        DefinitionChangedError,
        DefinitionError,
        PlaitError,
        ReplayDivergenceError,
        RunTimeoutError,
        StateConflictError,
        StepError,
        StepTimeoutError,
        ToolsetError,
    )
    from plait.events import RunEvent
    from plait.hookspecs import hookimpl
    from plait.models import AudioPart, FallbackModel, FilePart, ImagePart, TextPart, VideoPart
    from plait.primitives import Condition, Loop, Parallel, Router, Step, StepNode, Steps
    from plait.retry import RetryPolicy
    from plait.team import Team, TeamRunEvent
    from plait.workflow import Workflow

__version__ = "0.1.0"

#: where each public name that a public module defines lives (the private modules' are in
#: plait._public.PLAIT_EXPORTS): imported on first lookup
_HOMES = {
    "Agent": "plait.agent",
    "AgentRunOutput": "plait.agent",
    "Approval": "plait.approval",
    "AudioPart": "plait.models",
    "BudgetExceededError": "plait.errors",
    "Condition": "plait.primitives",
    "DefinitionChangedError": "plait.errors",
    "DefinitionError": "plait.errors",
    "FallbackModel": "plait.models",
    "FilePart": "plait.models",
    "ImagePart": "plait.models",
    "VideoPart": "plait.models",
    "Loop": "plait.primitives",
    "Parallel": "plait.primitives",
    "PlaitError": "plait.errors",
    "RejectedError": "plait.approval",
    "ReplayDivergenceError": "plait.errors",
    "RetryPolicy": "plait.retry",
    "Router": "plait.primitives",
    "RunEvent": "plait.events",
    "RunTimeoutError": "plait.errors",
    "StateConflictError": "plait.errors",
    "Step": "plait.primitives",
    "StepError": "plait.errors",
    "StepNode": "plait.primitives",
    "StepTimeoutError": "plait.errors",
    "Steps": "plait.primitives",
    "Team": "plait.team",
    "TeamRunEvent": "plait.team",
    "TextPart": "plait.models",
    "Tool": "plait.agent",
    "Toolset": "plait.agent",
    "ToolsetError": "plait.errors",
    "Workflow": "plait.workflow",
    "hookimpl": "plait.hookspecs",
    "tool": "plait.agent",
}


#: the public submodules ``import plait`` used to import: ``plait.errors`` still works after it
_SUBMODULES = frozenset(
    {
        "agent",
        "approval",
        "errors",
        "events",
        "hookspecs",
        "models",
        "primitives",
        "retry",
        "runners",
        "team",
        "tracing",
        "workflow",
    }
)


def __getattr__(name: str) -> object:
    """A public name, imported from its module on first lookup (then an ordinary global)."""
    home = _HOMES.get(name)
    if home is None and name in __all__:  # defined in a private module: its home is in the table
        from plait._public import PLAIT_EXPORTS  # which that module imports anyway

        home = next(module for module, names in PLAIT_EXPORTS.items() if name in names)
    if home is None:
        if name in _SUBMODULES:
            return importlib.import_module(f"plait.{name}")
        raise AttributeError(f"module 'plait' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    # The private modules' names report plait already (plait._public.publish); the public
    # modules' keep their own (plait.errors.StepError).
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """Every public name, imported or not (for ``dir(plait)`` and completion)."""
    return sorted({*globals(), *__all__})


__all__ = [
    "Agent",
    "AgentRunOutput",
    "Approval",
    "AsyncRunHandle",
    "AudioPart",
    "Budget",
    "BudgetExceededError",
    "CachePolicy",
    "Condition",
    "DefinitionChangedError",
    "DefinitionError",
    "FallbackModel",
    "FilePart",
    "ImagePart",
    "Loop",
    "Parallel",
    "ParallelContent",
    "PendingInput",
    "PlaitError",
    "QueuedRun",
    "RateLimit",
    "RejectedError",
    "ReplayDivergenceError",
    "RetryPolicy",
    "Router",
    "RunContext",
    "RunDiff",
    "RunEvent",
    "RunHandle",
    "RunStatus",
    "RunTimeoutError",
    "StateConflictError",
    "Step",
    "StepContext",
    "StepDiff",
    "StepError",
    "StepInput",
    "StepMetrics",
    "StepNode",
    "StepOutput",
    "StepTimeoutError",
    "StepType",
    "Steps",
    "Team",
    "TeamRunEvent",
    "TextPart",
    "Tool",
    "Toolset",
    "ToolsetError",
    "VideoPart",
    "Worker",
    "Workflow",
    "WorkflowExecutionInput",
    "WorkflowMetrics",
    "WorkflowRunOutput",
    "WorkflowStepMetrics",
    "adiff_runs",
    "allow_content_type",
    "diff_runs",
    "hookimpl",
    "set_rate_limits",
    "tool",
]
