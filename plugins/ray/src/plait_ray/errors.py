"""The exceptions plait-ray adds, chained under the core's StepError."""

from __future__ import annotations

from plait.errors import PlaitError

__all__ = ["RayBranchError", "RemoteTraceback"]


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a Ray worker, chained under it."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return self.text


class RayBranchError(PlaitError):
    """Ray could not run a branch to its end: its worker died (``worker_lost``) or Ray failed."""

    def __init__(self, message: str, *, worker_lost: bool = False) -> None:
        super().__init__(message)
        self.worker_lost = worker_lost
