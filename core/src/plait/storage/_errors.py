"""The storage errors (here, below the protocol, so that the modules the protocol uses can
raise them too)."""

from __future__ import annotations

from plait.errors import PlaitError

__all__ = ["RunClaimedError", "StorageError"]


class StorageError(PlaitError):
    """A storage backend failed (unreachable, corrupt, or the value cannot be stored)."""


class RunClaimedError(StorageError):
    """Another process (or task) holds the run's lease: it is executing the run."""
