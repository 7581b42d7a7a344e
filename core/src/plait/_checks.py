"""Argument checks shared by the constructors: each raises a DefinitionError that says
where, what was expected and what was given."""

from __future__ import annotations

import math
from typing import Any

from plait.errors import DefinitionError

__all__ = ["check_number", "check_seconds"]


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_number(value: Any, where: str, name: str, *, minimum: float = 0.0, integer: bool = False) -> None:
    """``value`` is a finite number (an int if ``integer``) of at least ``minimum``."""
    kind = "an int" if integer else "a finite number"
    ok = (isinstance(value, int) and not isinstance(value, bool)) if integer else _is_real(value)
    if not ok or not math.isfinite(value) or value < minimum:
        raise DefinitionError(f"{where}: {name} must be {kind} >= {minimum:g}, got {value!r}")


def check_seconds(value: Any, where: str, name: str = "timeout") -> None:
    """``value`` is None or a positive, finite number of seconds."""
    if value is None:
        return
    if not _is_real(value) or not math.isfinite(value) or value <= 0:
        raise DefinitionError(f"{where}: {name} must be a positive, finite number of seconds, got {value!r}")
