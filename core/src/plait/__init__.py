"""plait: deterministic, production-grade LLM workflows.

>>> from plait import Workflow, Step, Parallel
>>> workflow = Workflow(name="Pipeline", steps=[research, Parallel(a, b, name="fan-out"), write])
>>> workflow.print_response("topic", stream=True)
"""

from plait._budget import Budget
from plait._codec import allow_content_type
from plait._context import RunContext, StepContext
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
from plait._public import report_public_home
from plait.agent import Agent, AgentRunOutput, Tool, tool
from plait.approval import Approval, RejectedError
from plait.errors import (
    BudgetExceededError,
    DefinitionError,
    PlaitError,
    ReplayDivergenceError,
    RunTimeoutError,
    StateConflictError,
    StepError,
    StepTimeoutError,
)
from plait.events import RunEvent
from plait.hookspecs import hookimpl
from plait.models import FallbackModel
from plait.primitives import Condition, Loop, Parallel, Router, Step, StepNode, Steps
from plait.retry import RetryPolicy
from plait.team import Team, TeamRunEvent
from plait.workflow import Workflow


def __getattr__(name: str) -> object:
    # CachePolicy lives with the (pydantic-backed) durable-run code: imported on first use.
    if name == "CachePolicy":
        from plait._durable import CachePolicy

        report_public_home(__name__, {name: CachePolicy}, [name])
        return CachePolicy
    if name in _DIFF:  # comparing stored runs: with the storage code, imported on first use
        from plait import _diff

        report_public_home(__name__, vars(_diff), _DIFF)
        return getattr(_diff, name)
    raise AttributeError(f"module 'plait' has no attribute {name!r}")


_DIFF = ("RunDiff", "StepDiff", "adiff_runs", "diff_runs")

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "AgentRunOutput",
    "Approval",
    "AsyncRunHandle",
    "Budget",
    "BudgetExceededError",
    "CachePolicy",
    "Condition",
    "DefinitionError",
    "FallbackModel",
    "Loop",
    "Parallel",
    "ParallelContent",
    "PendingInput",
    "PlaitError",
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
    "Tool",
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

# Every class and function above reports ``plait`` as its home (``plait.StepOutput``, not
# ``plait._io.StepOutput``): see plait._public.
report_public_home(__name__, globals(), __all__)
