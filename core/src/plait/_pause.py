"""Pausing a run for a person: what it waits for, and the signal that stops it.

Kept free of heavy imports: the executor needs these on every run's path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from plait._public import publish as _publish

__all__ = ["Durability", "PauseRequested", "PendingInput"]

Durability = Literal["step", "batch", "exit"]


@dataclass(slots=True)
class PendingInput:
    """What a paused run waits for at one step."""

    step_id: str
    step_name: str
    kind: Literal["confirm", "input", "choice"]
    prompt: str
    schema: dict[str, Any] | None = None
    choices: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "step_id": self.step_id,
            "step_name": self.step_name,
            "kind": self.kind,
            "prompt": self.prompt,
            "schema": self.schema,
            "choices": self.choices,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PendingInput:
        return cls(
            step_id=data["step_id"],
            step_name=data["step_name"],
            kind=data["kind"],
            prompt=data["prompt"],
            schema=data.get("schema"),
            choices=data.get("choices"),
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
