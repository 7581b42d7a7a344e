"""The workflow primitives: Step, Steps, Parallel, Condition, Loop, Router.

Each primitive only describes itself and how it executes through
:class:`~plait._context.StepContext`; ids, events, spans, retries, timeouts and
error reports are the executor's job (:func:`plait._engine.execute_node`), the
same for every node, including step types registered by plugins.

Subclass :class:`StepNode` to write a step type of your own.
"""

from __future__ import annotations

from plait._containers import Condition, Loop, Parallel, Router, Steps
from plait._node import OnError as OnError  # re-exported: its home before plait._node
from plait._node import RunsAsStep, StepNode
from plait._step import MAX_DEPTH, Step, as_node, as_nodes

__all__ = [
    "MAX_DEPTH",
    "Condition",
    "Loop",
    "Parallel",
    "Router",
    "RunsAsStep",
    "Step",
    "StepNode",
    "Steps",
    "as_node",
    "as_nodes",
]

# their public home: plait.primitives (defined in plait._node, plait._step, plait._containers)
for _public in (StepNode, RunsAsStep, Step, Steps, Parallel, Condition, Loop, Router, as_node, as_nodes):
    _public.__module__ = __name__
del _public
