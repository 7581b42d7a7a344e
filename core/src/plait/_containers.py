"""The containers: Steps, Parallel, Condition, Loop, Router.

Each only describes itself and how it executes through
:class:`~plait._context.StepContext`; ids, events, spans, retries, timeouts and error
reports are the executor's (:func:`plait._engine.execute_node`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from types import CoroutineType
from typing import TYPE_CHECKING, Any

from plait._checks import check_number
from plait._executors import Callee, declares
from plait._io import ParallelContent, StepInput, StepOutput, StepType, carries_media, collect_media
from plait._node import OnError as OnError  # re-exported: its home before plait._node
from plait._node import StepNode
from plait.errors import DefinitionError, StepError
from plait.events import (
    ConditionExecutionCompletedEvent,
    ConditionExecutionStartedEvent,
    LoopExecutionCompletedEvent,
    LoopExecutionStartedEvent,
    LoopIterationCompletedEvent,
    LoopIterationStartedEvent,
    ParallelExecutionCompletedEvent,
    ParallelExecutionStartedEvent,
    RouterExecutionCompletedEvent,
    RouterExecutionStartedEvent,
    StepsExecutionCompletedEvent,
    StepsExecutionStartedEvent,
)
from plait.tracing import ATTR

if TYPE_CHECKING:
    from plait._context import StepContext
    from plait.runners import Runner

from plait._step import as_node, as_nodes, check_unique, sequence_output

__all__ = ["Condition", "Loop", "Parallel", "Router", "Steps"]


class Steps(StepNode):
    """A named, reusable sequence of steps.

    >>> Steps(name="article", steps=[research, write, edit])
    """

    step_type = StepType.STEPS.value
    started_event = StepsExecutionStartedEvent
    completed_event = StepsExecutionCompletedEvent

    def __init__(
        self,
        name: str | None = None,
        steps: Sequence[Any] = (),
        description: str | None = None,
        **policies: Any,
    ) -> None:
        super().__init__(name, description=description, **policies)
        self.steps = as_nodes(steps, where=f"Steps {name!r}")
        if not self.steps:
            raise DefinitionError(f"Steps {name!r}: expected at least one step in steps=")

    async def execute(self, step_input: StepInput, ctx: StepContext) -> StepOutput:
        return sequence_output(await ctx.run_steps(self.steps, step_input))

    def children(self) -> Sequence[StepNode]:
        return self.steps

    def started_event_fields(self) -> dict[str, Any]:
        return {"steps_count": len(self.steps)}

    def completed_event_fields(self, output: StepOutput) -> dict[str, Any]:
        results = output.steps or []
        return {
            "steps_count": len(self.steps),
            "executed_steps": sum(1 for o in results if not o.skipped),
            "step_results": results,
        }


class Parallel(StepNode):
    """Branches that run concurrently; the output's content is every branch's content by name,
    a :class:`~plait.ParallelContent`: a dict (``content["web"]``, ``.items()``) that reads
    as Agno's sectioned text when used as text (``content[:500]``, ``f"{content}"``, ``in``).

    >>> Parallel(Step(name="web", agent=web), Step(name="papers", agent=papers), name="research")
    >>> Parallel("research", Step(name="web", agent=web), Step(name="papers", agent=papers))

    Each branch works on its own copy of the session state; changes merge back
    in declaration order (see :mod:`plait._state`). ``max_concurrency`` bounds how
    many branches run at once; ``runner`` picks where they run.
    """

    step_type = StepType.PARALLEL.value
    started_event = ParallelExecutionStartedEvent
    completed_event = ParallelExecutionCompletedEvent

    def __init__(
        self,
        *steps: Any,
        name: str | None = None,
        description: str | None = None,
        max_concurrency: int | None = None,
        runner: Runner | str | None = None,
        **policies: Any,
    ) -> None:
        if steps and isinstance(steps[0], str):  # Parallel("research", web, papers)
            if name is not None:
                raise DefinitionError(
                    f"Parallel {steps[0]!r}: the name is given twice, as the first argument and as name={name!r}"
                )
            name, steps = steps[0], steps[1:]
        super().__init__(name or "Parallel", description=description, **policies)
        self._auto_named = name is None
        if len(steps) == 1 and isinstance(steps[0], (list, tuple)):
            steps = tuple(steps[0])
        if not steps:
            raise DefinitionError(f"Parallel {self.name!r}: expected at least one branch")
        if max_concurrency is not None:
            check_number(
                max_concurrency, f"Parallel {self.name!r}", "max_concurrency", minimum=1, integer=True
            )
        self.steps = as_nodes(steps, where=f"Parallel {self.name!r}")
        self.max_concurrency = max_concurrency
        self.runner = runner
        self._runner: Runner | None = None

    def _resolve_runner(self) -> Runner | None:
        if self.runner is None or self._runner is not None:
            return self._runner
        from plait.runners import resolve_runner

        self._runner = resolve_runner(self.runner)
        return self._runner

    async def execute(self, step_input: StepInput, ctx: StepContext) -> StepOutput:
        outputs = await ctx.run_branches(
            self.steps, step_input, runner=self._resolve_runner(), max_concurrency=self.max_concurrency
        )
        output = StepOutput(
            content=ParallelContent(
                {output.step_name: output.content for output in outputs},  # type: ignore[arg-type]
                {o.step_name: o.error for o in outputs if not o.success},  # type: ignore[misc]
            ),
            steps=outputs,
            stop=any(o.stop for o in outputs),
            success=all(o.success for o in outputs),
        )
        if any(carries_media(o) for o in outputs):  # the branches' media, in branch order, go on
            collect_media(output, None, outputs)  # (as Agno's Parallel aggregates them)
        return output

    def children(self) -> Sequence[StepNode]:
        return self.steps

    def load_content(self, content: Any) -> Any:
        # what plait stored before ParallelContent: the plain dict of the branches
        if type(content) is dict:
            return ParallelContent(content)
        return content

    def started_event_fields(self) -> dict[str, Any]:
        return {"parallel_step_count": len(self.steps)}

    def completed_event_fields(self, output: StepOutput) -> dict[str, Any]:
        return {"parallel_step_count": len(self.steps), "step_results": output.steps or []}


class Condition(StepNode):
    """Run ``steps`` when ``evaluator`` is true, else ``else_steps`` (if any).

    ``evaluator`` is a bool or a (sync or async) callable taking the StepInput and
    returning a bool; anything but a bool is an error, never silently false.
    """

    step_type = StepType.CONDITION.value
    started_event = ConditionExecutionStartedEvent
    completed_event = ConditionExecutionCompletedEvent

    def __init__(
        self,
        name: str | None = None,
        evaluator: bool | Callable[..., Any] | None = None,
        steps: Sequence[Any] = (),
        else_steps: Sequence[Any] | None = None,
        description: str | None = None,
        **policies: Any,
    ) -> None:
        super().__init__(name or "Condition", description=description, **policies)
        self._auto_named = name is None
        if isinstance(evaluator, bool):
            self._evaluator: Callee | bool = evaluator
        elif evaluator is None or not callable(evaluator):
            raise DefinitionError(
                f"Condition {self.name!r}: evaluator must be a bool or a callable returning a bool, got {evaluator!r}"
            )
        else:
            self._evaluator = Callee(
                evaluator, what=f"Condition {self.name!r} evaluator", takes="the StepInput"
            )
        self.evaluator = evaluator
        self.steps = as_nodes(steps, where=f"Condition {self.name!r}")
        if not self.steps:
            raise DefinitionError(f"Condition {self.name!r}: expected at least one step in steps=")
        self.else_steps = as_nodes(else_steps or (), where=f"Condition {self.name!r} else_steps")
        check_unique([*self.steps, *self.else_steps], where=f"Condition {self.name!r}")

    async def execute(self, step_input: StepInput, ctx: StepContext) -> StepOutput:
        if isinstance(self._evaluator, bool):
            result: Any = self._evaluator
        else:
            result = await ctx.call(self._evaluator, step_input)
        if not isinstance(result, bool):
            raise StepError(
                f"Condition {ctx.step_id!r}: evaluator returned {result!r} ({type(result).__name__}), expected a bool",
                step_path=ctx.step_id,
                step_name=self.name,
            )
        branch = self.steps if result else self.else_steps
        metadata = {"result": result}
        if not branch:
            return StepOutput(skipped=True, steps=[], metadata=metadata)
        return sequence_output(await ctx.run_steps(branch, step_input), metadata=metadata)

    def children(self) -> Sequence[StepNode]:
        return [*self.steps, *self.else_steps]

    def completed_event_fields(self, output: StepOutput) -> dict[str, Any]:
        result = (output.metadata or {}).get("result")
        if result is None:  # it failed before deciding (a policy skipped the failure)
            return {}
        branch = "if" if result else "else" if self.else_steps else None
        return {
            "condition_result": result,
            "branch": branch,
            "executed_steps": len(self.steps if result else self.else_steps),
            "step_results": output.steps or [],
        }


class Loop(StepNode):
    """Repeat ``steps`` until ``end_condition(outputs)`` is true or ``max_iterations`` ran.

    ``end_condition`` receives the outputs of the iteration just finished and
    returns a bool (True ends the loop). With ``forward_iteration_output=True``
    each iteration receives the previous iteration's content; otherwise every
    iteration receives what the loop received.
    """

    step_type = StepType.LOOP.value
    started_event = LoopExecutionStartedEvent
    completed_event = LoopExecutionCompletedEvent

    def __init__(
        self,
        name: str | None = None,
        steps: Sequence[Any] = (),
        end_condition: Callable[..., Any] | None = None,
        max_iterations: int = 3,
        forward_iteration_output: bool = False,
        description: str | None = None,
        **policies: Any,
    ) -> None:
        super().__init__(name or "Loop", description=description, **policies)
        self._auto_named = name is None
        if not isinstance(max_iterations, int) or isinstance(max_iterations, bool) or max_iterations < 1:
            raise DefinitionError(
                f"Loop {self.name!r}: max_iterations must be an int >= 1, got {max_iterations!r}"
            )
        self.steps = as_nodes(steps, where=f"Loop {self.name!r}")
        if not self.steps:
            raise DefinitionError(f"Loop {self.name!r}: expected at least one step in steps=")
        self.end_condition = end_condition
        self._end = (
            None
            if end_condition is None
            else Callee(
                end_condition, what=f"Loop {self.name!r} end_condition", takes="the iteration's outputs"
            )
        )
        self.max_iterations = max_iterations
        self.forward_iteration_output = forward_iteration_output

    async def execute(self, step_input: StepInput, ctx: StepContext) -> StepOutput:
        outputs: list[StepOutput] = []
        # each iteration runs as run_steps(step_input) would, with the previous iteration's
        # content as previous_step_content when it is forwarded (no StepInput per iteration)
        previous = step_input.previous_step_content
        has_media = carries_media(step_input)  # the loop's media go on to every iteration
        iterations = 0
        for iteration in range(1, self.max_iterations + 1):
            iterations = iteration
            suffix = f"[{iteration}]"
            scope = ctx.scope(suffix, self.name + suffix)
            if ctx.run.step_events:
                ctx.emit(
                    scope.event(
                        LoopIterationStartedEvent, iteration=iteration, max_iterations=self.max_iterations
                    )
                )
            media = step_input.media() if has_media else None
            if ctx.run.tracer is None:
                round_outputs = await scope.run_sequence(
                    self.steps, step_input.input, previous, step_input.additional_data, media
                )
            else:
                with scope.span("loop_iteration", scope.step_name, {ATTR.ITERATION: iteration}):
                    round_outputs = await scope.run_sequence(
                        self.steps, step_input.input, previous, step_input.additional_data, media
                    )
            outputs.extend(round_outputs)
            done = False
            for output in round_outputs:
                if output.stop:
                    done = True
                    break
            end = self._end
            if not done and end is not None:
                if end.plain and not ctx.offload:  # StepContext.call's hot path, without its coroutine
                    verdict = end.fn(round_outputs)
                    if type(verdict) is CoroutineType:
                        verdict = await verdict
                else:
                    verdict = await ctx.call(end, round_outputs)
                if not isinstance(verdict, bool):
                    raise StepError(
                        f"Loop {ctx.step_id!r}: end_condition returned {verdict!r} ({type(verdict).__name__}), "
                        "expected a bool",
                        step_path=ctx.step_id,
                        step_name=self.name,
                    )
                done = verdict
            if ctx.run.step_events:
                ctx.emit(
                    scope.event(
                        LoopIterationCompletedEvent,
                        iteration=iteration,
                        max_iterations=self.max_iterations,
                        should_stop=done,
                        should_continue=not done and iteration < self.max_iterations,
                        iteration_results=round_outputs,
                    )
                )
            if done:
                break
            if self.forward_iteration_output:
                for output in reversed(round_outputs):
                    if not output.skipped:  # the iteration's content: its last step that ran
                        previous = output.content
                        break
        return sequence_output(outputs, metadata={"iterations": iterations})

    def children(self) -> Sequence[StepNode]:
        return self.steps

    def started_event_fields(self) -> dict[str, Any]:
        return {"max_iterations": self.max_iterations}

    def completed_event_fields(self, output: StepOutput) -> dict[str, Any]:
        # the outputs of each iteration: their ids start with the loop's, then "[n]"
        rounds: dict[str, list[StepOutput]] = {}
        prefix = len(output.step_id or "")
        for inner in output.steps or []:
            rounds.setdefault((inner.step_id or "")[prefix:].partition("/")[0], []).append(inner)
        return {
            "total_iterations": (output.metadata or {}).get("iterations", len(rounds)),
            "max_iterations": self.max_iterations,
            "all_results": list(rounds.values()),
        }


class Router(StepNode):
    """Pick what runs next: ``selector(step_input)`` returns a step, a list of steps,
    or the name (or names) of one of ``choices``.

    >>> Router(name="topic", selector=pick, choices=[tech, business, general])

    A list among the choices is a sequence, a :class:`Steps` named ``steps_group_<index>``
    (``choices=[quick, [research, write]]``). A selector that declares a ``step_choices``
    parameter receives the router's choices (as nodes) there.

    A name that matches no choice is an error listing the choices.
    """

    step_type = StepType.ROUTER.value
    started_event = RouterExecutionStartedEvent
    completed_event = RouterExecutionCompletedEvent

    def __init__(
        self,
        name: str | None = None,
        selector: Callable[..., Any] | None = None,
        choices: Sequence[Any] = (),
        description: str | None = None,
        **policies: Any,
    ) -> None:
        super().__init__(name or "Router", description=description, **policies)
        self._auto_named = name is None
        if selector is None or not callable(selector):
            raise DefinitionError(f"Router {self.name!r}: selector must be a callable, got {selector!r}")
        self.selector = selector
        if isinstance(choices, (list, tuple)):  # a list among the choices is a sequence: Agno's Steps
            choices = [
                Steps(name=f"steps_group_{index}", steps=choice)
                if isinstance(choice, (list, tuple))
                else choice
                for index, choice in enumerate(choices)
            ]
        self.choices = as_nodes(choices, where=f"Router {self.name!r} choices")
        target: Callable[..., Any] = selector
        if declares(selector, "step_choices"):  # selector(step_input, step_choices): Agno's signature
            target = functools.partial(selector, step_choices=self.choices)
        self._selector = Callee(target, what=f"Router {self.name!r} selector", takes="the StepInput")
        if not self.choices:
            raise DefinitionError(f"Router {self.name!r}: expected at least one step in choices=")
        self._by_name = {node.name: node for node in self.choices}
        self._by_identity = {id(node): node for node in self.choices}

    async def execute(self, step_input: StepInput, ctx: StepContext) -> StepOutput:
        selected = await ctx.call(self._selector, step_input)
        nodes = self._resolve(selected, ctx)
        metadata = {"selected": [node.name for node in nodes]}
        if not nodes:
            return StepOutput(skipped=True, steps=[], metadata=metadata)
        return sequence_output(await ctx.run_steps(nodes, step_input), metadata=metadata)

    def _resolve(self, selected: Any, ctx: StepContext) -> list[StepNode]:
        items = selected if isinstance(selected, (list, tuple)) else [selected]
        nodes: list[StepNode] = []
        for item in items:
            if item is None:
                continue
            if isinstance(item, str):
                node = self._by_name.get(item)
                if node is None:
                    expected = ", ".join(repr(n) for n in self._by_name)
                    raise StepError(
                        f"Router {ctx.step_id!r}: selector returned {item!r}, expected one of {expected}",
                        step_path=ctx.step_id,
                        step_name=self.name,
                    )
            elif id(item) in self._by_identity:
                node = self._by_identity[id(item)]
            else:
                try:
                    node = as_node(item, where=f"Router {self.name!r} selection")
                except DefinitionError as exc:
                    raise StepError(
                        f"Router {ctx.step_id!r}: selector returned {item!r}; expected a step, a list of "
                        "steps, or the name of a choice",
                        step_path=ctx.step_id,
                        step_name=self.name,
                    ) from exc
            nodes.append(node)
        check_unique(nodes, where=f"Router {ctx.step_id!r} selection")
        return nodes

    def children(self) -> Sequence[StepNode]:
        return self.choices

    def completed_event_fields(self, output: StepOutput) -> dict[str, Any]:
        selected = (output.metadata or {}).get("selected")
        if selected is None:  # it failed before selecting (a policy skipped the failure)
            return {}
        results = output.steps or []
        return {"selected_steps": list(selected), "executed_steps": len(results), "step_results": results}
