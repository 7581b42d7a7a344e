"""The Step, and turning what a user put in ``steps=[...]`` into checked nodes.

:class:`Step` runs a function, an agent or team, or a workflow; :func:`as_node` and
:func:`as_nodes` wrap step-like objects into nodes; :func:`check_tree` rejects a tree
that contains itself or nests too deep. The containers are in :mod:`plait._containers`;
users import all of them from :mod:`plait` (or :mod:`plait.primitives`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from plait._executors import Callee, to_output
from plait._io import StepInput, StepOutput, StepType
from plait._node import OnError as OnError  # re-exported: its home before plait._node
from plait._node import StepNode
from plait.errors import DefinitionError

if TYPE_CHECKING:
    from plait._context import StepContext

__all__ = ["MAX_DEPTH", "Step", "as_node", "as_nodes", "check_tree", "check_unique", "sequence_output"]


def sequence_output(outputs: list[StepOutput], **extra: Any) -> StepOutput:
    """A container's output from its children: the last content produced, stop if any stopped."""
    content = None
    produced = stop = False
    success = True
    for output in outputs:  # one pass (a loop's outputs are many): no any()/all() generators
        if not output.skipped:
            content = output.content
            produced = True
        if output.stop:
            stop = True
        if not output.success:
            success = False
    return StepOutput(
        content=content, steps=outputs, stop=stop, skipped=not produced, success=success, **extra
    )


class Step(StepNode):
    """A unit of work: exactly one of ``agent``, ``team``, ``executor`` or ``workflow``.

    >>> Step(name="research", agent=researcher)
    >>> Step(name="summary", executor=create_summary, retry=RetryPolicy(max_attempts=3))
    """

    def __init__(
        self,
        name: str | None = None,
        agent: Any = None,
        team: Any = None,
        executor: Callable[..., Any] | None = None,
        workflow: Any = None,
        description: str | None = None,
        budget: Any = None,
        add_workflow_history: bool | None = None,
        num_history_runs: int | None = None,
        **policies: Any,
    ) -> None:
        given = {
            k: v
            for k, v in (("agent", agent), ("team", team), ("executor", executor), ("workflow", workflow))
            if v is not None
        }
        if len(given) != 1:
            what = "none" if not given else " and ".join(given)
            raise DefinitionError(
                f"Step {name!r}: expected exactly one of agent=, team=, executor= or workflow=, got {what}"
            )
        kind, target = next(iter(given.items()))
        auto = name is None
        if auto:
            name = getattr(target, "name", None) or getattr(target, "__name__", None) or type(target).__name__
        super().__init__(name, description=description, **policies)
        self._auto_named = auto
        from plait._budget import check_budget

        #: provider policy: what one run of this step may spend (plait._budget)
        self.budget = check_budget(budget, f"Step {name!r}")
        if self.budget is not None:  # only a step with a budget pays for it (the hot path)
            self.execute = self._execute_in_budget  # type: ignore[method-assign]
        from plait._workflow_history import check_flag, check_runs

        #: Agno's: this step is given the workflow's earlier runs in the session (None: as the
        #: workflow's ``add_workflow_history_to_steps`` says), and how many (None: the workflow's)
        self.add_workflow_history = check_flag(add_workflow_history, "add_workflow_history", f"Step {name!r}")
        self.num_history_runs = check_runs(
            num_history_runs, "num_history_runs", f"Step {name!r}", optional=True
        )
        self.agent = agent or team
        self.executor = executor
        self.workflow = workflow
        self._callee: Callee | None = None
        self.executor_type = kind
        if executor is not None:
            self._callee = Callee(executor, what=f"Step {name!r} executor", takes="the StepInput")
            self.executor_type = self._callee.executor_type
            self.runs_blocking_code = self._callee.kind in ("sync", "sync_gen")
            if self.cache is not None:  # refuse an identity that cannot be established, now
                self.cache_identity()
        elif workflow is not None:
            if not _is_workflow(workflow):
                raise DefinitionError(f"Step {name!r}: workflow= expects a plait Workflow, got {workflow!r}")
            self.step_type = StepType.WORKFLOW.value  # type: ignore[misc]
        elif not hasattr(self.agent, "run_as_step"):
            raise DefinitionError(
                f"Step {name!r}: {kind}= expects a plait {kind.capitalize()}, got {target!r}"
            )

    async def _execute_in_budget(self, step_input: StepInput, ctx: StepContext) -> StepOutput:
        """:meth:`execute` with the step's budget in force: every call inside counts."""
        from plait._budget import budget_scope

        assert self.budget is not None
        with budget_scope(self.budget, f"step {self.name!r}"):
            return await Step.execute(self, step_input, ctx)

    async def execute(self, step_input: StepInput, ctx: StepContext) -> StepOutput:
        callee = self._callee
        if callee is not None:
            if callee.plain and not ctx.offload:  # StepContext.invoke's hot path, without its coroutine
                returned = callee.fn(step_input)
                output = (
                    returned if type(returned) is StepOutput else await to_output(returned, ctx.emit_content)
                )
            else:
                output = await ctx.invoke(callee, step_input)
            output.executor_type = self.executor_type
            output.executor_name = callee.name
            return output
        if self.workflow is not None:
            nested: StepOutput = await self.workflow.run_as_step(step_input, ctx)
            nested.executor_type = "workflow"
            nested.executor_name = self.workflow.name
            return nested
        if self.add_workflow_history or (
            self.add_workflow_history is None
            and (workflow := ctx.frame.workflow) is not None  # None: a branch shipped elsewhere
            and workflow._history.enabled
        ):  # Agno's workflow history before the message (plait._workflow_history)
            from plait._workflow_history import with_history

            step_input = await with_history(self, step_input, ctx)
        result: StepOutput = await self.agent.run_as_step(step_input, ctx)
        result.executor_type = self.executor_type
        result.executor_name = self.agent.name
        return result

    def children(self) -> Sequence[StepNode]:
        return self.workflow.nodes if self.workflow is not None else ()

    def load_content(self, content: Any) -> Any:
        schema = getattr(self.agent, "output_schema", None)
        if schema is not None and isinstance(content, dict):
            return schema.model_validate(content)
        return content

    async def cache_context(self, ctx: StepContext) -> Any:
        """What besides its input decides this step's result: the earlier runs and the
        conversation it is given (a cached answer is reused only when they are the same)."""
        from plait._workflow_history import cache_context

        return await cache_context(self, ctx)

    async def history_turn(self, ctx: StepContext, messages: list[Any] | None = None) -> Any:
        """For the step cache: without ``messages``, the conversation turn this agent or team
        step's run just added to the session's history (None: none); with them, add that turn
        again, to this run's session (a cache hit)."""
        from plait._workflow_history import history_turn

        return await history_turn(self, ctx, messages)

    def cache_identity(self) -> Any:
        if self._callee is not None:
            versioned = self.cache is not None and bool(self.cache.version)
            return ["executor", self._callee.cache_identity(f"Step {self.name!r}", versioned=versioned)]
        if self.workflow is not None:
            return ["workflow", self.workflow.id, [node.cache_identity() for node in self.workflow.nodes]]
        identity = getattr(self.agent, "cache_identity", None)
        return ["agent", identity() if callable(identity) else self.agent.name]


def as_node(obj: Any, *, where: str) -> StepNode:
    """Turn what a user put in ``steps=[...]`` into a node.

    Nodes stay as they are; a Workflow, Agent or Team is wrapped in a Step named
    after it; registered step types may wrap foreign objects; a callable becomes
    ``Step(executor=obj)`` named after the function.
    """
    if isinstance(obj, StepNode):
        return obj
    if _is_workflow(obj):
        step = Step(name=obj.name, workflow=obj)
        step._auto_named = True
        return step
    if hasattr(obj, "run_as_step"):
        step = Step(name=obj.name, agent=obj)
        step._auto_named = True
        return step
    from plait._lookup import registry

    for step_type in registry().step_types:
        wrapped: StepNode | None = step_type.wrap(obj)
        if wrapped is not None:
            return wrapped
    if callable(obj):
        return Step(executor=obj)
    raise DefinitionError(
        f"{where}: expected a Step, Steps, Parallel, Condition, Loop, Router, Workflow, Agent, Team, "
        f"a registered step type or a callable, got {obj!r}"
    )


def _is_workflow(obj: Any) -> bool:
    """Whether ``obj`` is a :class:`plait.Workflow`. Workflows are built from the primitives,
    so this module does not import theirs: an object can only be a Workflow once
    ``plait.workflow`` is imported, and then it is found among the loaded modules."""
    module = sys.modules.get("plait.workflow")
    return module is not None and isinstance(obj, module.Workflow)


def as_nodes(items: Any, *, where: str) -> list[StepNode]:
    """Coerce a sequence of step-like objects and check their names are unique."""
    if isinstance(items, (str, bytes)) or not isinstance(items, (list, tuple)):
        items = [items] if items is not None else []
    nodes = [as_node(item, where=where) for item in items]
    _dedupe_auto_names(nodes)
    check_unique(nodes, where=where)
    return nodes


#: the deepest nesting of steps (containers and nested workflows, each a level) that plait
#: runs: each level is a few Python frames deep, and Python's recursion limit is finite
MAX_DEPTH = 100


def check_tree(nodes: Sequence[StepNode], *, where: str) -> None:
    """Reject a tree nested deeper than :data:`MAX_DEPTH` or one that contains itself (a
    workflow whose steps, after a change made after construction, reach that workflow)."""
    path: list[StepNode] = []

    def shown() -> str:
        return "/".join(node.name for node in path)

    def walk(node: StepNode) -> None:
        if any(seen is node for seen in path):
            raise DefinitionError(f"{where}: step {node.name!r} contains itself: {shown()}/{node.name}")
        if len(path) >= MAX_DEPTH:
            raise DefinitionError(
                f"{where}: steps nest more than {MAX_DEPTH} levels deep (containers and nested "
                f"workflows each count one), at {shown()[:200]}...; plait runs at most {MAX_DEPTH} levels"
            )
        path.append(node)
        for child in node.children():
            walk(child)
        path.pop()

    for node in nodes:
        walk(node)


def _dedupe_auto_names(nodes: list[StepNode]) -> None:
    """Give automatically named nodes (``steps=[fn, fn]``) distinct names: ``fn``, ``fn_2``."""
    used = {node.name for node in nodes if not node._auto_named}
    for node in nodes:
        if node._auto_named:
            name, count = node.name, 1
            while name in used:
                count += 1
                name = f"{node.name}_{count}"
            node.name = name
            used.add(name)


def check_unique(nodes: Sequence[StepNode], *, where: str) -> None:
    seen: set[str] = set()
    for node in nodes:
        if node.name in seen:
            raise DefinitionError(
                f"{where}: two steps are named {node.name!r}; names must be unique within one "
                "container, since they key outputs, checkpoints and events"
            )
        seen.add(node.name)
