"""Pausing a run for a person: what it waits for, and the signal that stops it.

Kept free of heavy imports: the executor needs these on every run's path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from plait._public import publish as _publish

__all__ = ["Durability", "PauseRequested", "PendingInput", "yes_or_no"]

Durability = Literal["step", "batch", "exit"]

_YES = {"yes", "y", "approve", "approved", "true", "ok"}
_NO = {"no", "n", "reject", "rejected", "false", "deny"}


def yes_or_no(answer: Any) -> bool | None:
    """A confirmation's answer as True or False (a bool, or words like yes/no, approve/reject);
    None when it is neither."""
    if isinstance(answer, bool):
        return answer
    text = str(answer).strip().lower()
    if text in _YES or text in _NO:
        return text in _YES
    return None


@dataclass(slots=True)
class PendingInput:
    """What a paused run waits for at one step."""

    step_id: str
    step_name: str
    kind: Literal["confirm", "input", "choice"]
    prompt: str
    schema: dict[str, Any] | None = None
    choices: list[str] | None = None
    #: a budget pause (``Budget(on_exceeded="pause")``): whose budget, which limit, what was
    #: used and what the next call needs (plait._budget_pause); None for an Approval
    budget: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {
            "step_id": self.step_id,
            "step_name": self.step_name,
            "kind": self.kind,
            "prompt": self.prompt,
            "schema": self.schema,
            "choices": self.choices,
        }
        if self.budget is not None:
            data["budget"] = self.budget
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PendingInput:
        return cls(
            step_id=data["step_id"],
            step_name=data["step_name"],
            kind=data["kind"],
            prompt=data["prompt"],
            schema=data.get("schema"),
            choices=data.get("choices"),
            budget=data.get("budget"),
        )


class PauseRequested(BaseException):
    """Raised by a step that waits for a person; the run is stored as paused.

    A BaseException so that ``except Exception`` in user code or in retry
    policies never swallows it.
    """

    def __init__(self, pending: list[PendingInput]) -> None:
        super().__init__(", ".join(p.step_id for p in pending))
        self.pending = pending


# Last: the names plait exports report ``plait`` as their home (plait._public).
_publish(__name__, globals())
