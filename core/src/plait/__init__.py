"""plait: deterministic, production-grade LLM workflows.

>>> from plait import Workflow, Step, Parallel
>>> workflow = Workflow(name="Pipeline", steps=[research, Parallel(a, b, name="fan-out"), write])
>>> workflow.print_response("topic", stream=True)
"""

from plait._engine import RunContext, StepContext
from plait._io import (
    RunStatus,
    StepInput,
    StepMetrics,
    StepOutput,
    StepType,
    WorkflowExecutionInput,
    WorkflowRunOutput,
)
from plait.agent import Agent, AgentRunOutput, Tool, tool
from plait.errors import (
    DefinitionError,
    PlaitError,
    RunTimeoutError,
    StateConflictError,
    StepError,
    StepTimeoutError,
)
from plait.hookspecs import hookimpl
from plait.primitives import Condition, Loop, Parallel, Router, Step, StepNode, Steps
from plait.retry import RetryPolicy
from plait.team import Team
from plait.workflow import Workflow

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "AgentRunOutput",
    "Condition",
    "DefinitionError",
    "Loop",
    "Parallel",
    "PlaitError",
    "RetryPolicy",
    "Router",
    "RunContext",
    "RunStatus",
    "RunTimeoutError",
    "StateConflictError",
    "Step",
    "StepContext",
    "StepError",
    "StepInput",
    "StepMetrics",
    "StepNode",
    "StepOutput",
    "StepTimeoutError",
    "StepType",
    "Steps",
    "Team",
    "Tool",
    "Workflow",
    "WorkflowExecutionInput",
    "WorkflowRunOutput",
    "hookimpl",
    "tool",
]
