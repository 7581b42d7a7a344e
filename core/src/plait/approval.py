"""Human approval: a step that pauses the run until a person answers.

Place an :class:`Approval` anywhere in a workflow (nested workflows and parallel
branches included). When the run reaches it without an answer, the run is
stored as ``paused`` with what it waits for (``output.pending``); the other
parallel branches finish first. ``workflow.continue_run(run_id, ...)`` (in this
or another process, with the same storage) resumes from the checkpoints with
the answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from plait._io import StepInput, StepOutput
from plait._node import StepNode
from plait._step import as_nodes, sequence_output
from plait.errors import DefinitionError, PlaitError, StepError
from plait.events import StepPausedEvent

if TYPE_CHECKING:
    from plait._context import StepContext

__all__ = ["Approval", "RejectedError"]

Kind = Literal["confirm", "input", "choice"]


class RejectedError(PlaitError):
    """A person rejected an approval whose policy is ``on_reject="fail"``."""


class Approval(StepNode):
    """Ask a person, then go on.

    * ``kind="confirm"`` (default): the answer is yes/no (``True``/``False``);
      approved, what the step received (the previous content, else the input) flows on; rejected, ``on_reject`` decides:
      ``"fail"`` (the run fails), ``"skip"``, ``"stop"`` (the run ends here), or a
      list of steps to run instead.
    * ``kind="input"``: free input validated by ``schema`` (a pydantic model);
      the step's content is the validated object.
    * ``kind="choice"``: one of ``choices``; with ``routes={"choice": [steps]}``
      the chosen route runs (a router decided by a person).

    >>> Approval(name="publish?", prompt="Publish this article?", on_reject="stop")
    """

    step_type = "Approval"

    def __init__(
        self,
        name: str | None = None,
        prompt: str | None = None,
        *,
        kind: Kind = "confirm",
        schema: type[Any] | None = None,
        choices: Sequence[str] | None = None,
        routes: dict[str, Sequence[Any]] | None = None,
        on_reject: str | Sequence[Any] = "fail",
        description: str | None = None,
        **policies: Any,
    ) -> None:
        super().__init__(name or "Approval", description=description, **policies)
        where = f"Approval {self.name!r}"
        if kind not in ("confirm", "input", "choice"):
            raise DefinitionError(f"{where}: kind must be 'confirm', 'input' or 'choice', got {kind!r}")
        if kind == "input" and not (isinstance(schema, type) and hasattr(schema, "model_validate")):
            raise DefinitionError(
                f"{where}: kind='input' needs schema= (a pydantic model class), got {schema!r}"
            )
        self.routes = {
            key: as_nodes(list(steps), where=f"{where} route {key!r}")
            for key, steps in (routes or {}).items()
        }
        if kind == "choice":
            choices = list(choices or self.routes)
            if not choices:
                raise DefinitionError(f"{where}: kind='choice' needs choices= or routes=")
            unknown = set(self.routes) - set(choices)
            if unknown:
                raise DefinitionError(f"{where}: routes {sorted(unknown)} are not among choices {choices}")
        self.kind: Kind = kind
        self.prompt = prompt or f"Approve {self.name!r}?"
        self.schema = schema
        self.choices = list(choices) if choices else None
        if isinstance(on_reject, str):
            if on_reject not in ("fail", "skip", "stop"):
                raise DefinitionError(
                    f"{where}: on_reject must be 'fail', 'skip', 'stop' or a list of steps, got {on_reject!r}"
                )
            self.on_reject: str | list[StepNode] = on_reject
        else:
            self.on_reject = as_nodes(list(on_reject), where=f"{where} on_reject")

    def children(self) -> Sequence[StepNode]:
        nodes = [node for steps in self.routes.values() for node in steps]
        if isinstance(self.on_reject, list):
            nodes.extend(self.on_reject)
        return nodes

    def load_content(self, content: Any) -> Any:
        if self.kind == "input" and self.schema is not None and isinstance(content, dict):
            return self.schema.model_validate(content)
        return content

    def pending(self, step_id: str) -> Any:
        from plait._pause import PendingInput

        schema = self.schema.model_json_schema() if self.schema is not None else None
        return PendingInput(step_id, self.name, self.kind, self.prompt, schema, self.choices)

    def validate_answer(self, answer: Any, step_id: str) -> Any:
        """The answer in its checked form, or a ValueError saying what was expected."""
        if self.kind == "confirm":
            from plait._pause import yes_or_no

            confirmed = yes_or_no(answer)
            if confirmed is not None:
                return confirmed
            raise ValueError(f"Approval {step_id!r}: expected yes or no (True/False), got {answer!r}")
        if self.kind == "choice":
            assert self.choices is not None
            if answer not in self.choices:
                raise ValueError(f"Approval {step_id!r}: expected one of {self.choices}, got {answer!r}")
            return answer
        assert self.schema is not None
        from pydantic import ValidationError

        try:
            if isinstance(answer, (str, bytes)):
                return self.schema.model_validate_json(answer)
            return self.schema.model_validate(answer)
        except ValidationError as exc:
            raise ValueError(
                f"Approval {step_id!r}: the answer does not match {self.schema.__name__}: {exc}"
            ) from None

    async def execute(self, step_input: StepInput, ctx: StepContext) -> StepOutput:
        if ctx.step_id not in ctx.run.answers:
            from plait._pause import PauseRequested

            if ctx.run.step_events:
                ctx.emit(ctx.event(StepPausedEvent, step_type=self.step_type, prompt=self.prompt))
            raise PauseRequested([self.pending(ctx.step_id)])
        try:
            answer = self.validate_answer(ctx.run.answers[ctx.step_id], ctx.step_id)
        except ValueError as exc:
            raise StepError(str(exc), step_path=ctx.step_id, step_name=self.name) from exc
        if self.kind == "input":
            return StepOutput(content=answer, metadata={"answer": "input"})
        if self.kind == "choice":
            route = self.routes.get(answer)
            if route:
                return sequence_output(await ctx.run_steps(route, step_input), metadata={"choice": answer})
            return StepOutput(content=answer, metadata={"choice": answer})
        if answer:
            return StepOutput(content=step_input.message, metadata={"approved": True})
        metadata = {"approved": False}
        if self.on_reject == "fail":
            raise RejectedError(f"rejected by a person: {self.prompt}")
        if self.on_reject == "skip":
            return StepOutput(skipped=True, metadata=metadata)
        if self.on_reject == "stop":
            return StepOutput(content=f"Stopped: {self.prompt} was rejected", stop=True, metadata=metadata)
        assert isinstance(self.on_reject, list)
        return sequence_output(await ctx.run_steps(self.on_reject, step_input), metadata=metadata)
