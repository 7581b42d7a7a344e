"""Argument checks shared by the constructors: each raises a DefinitionError that says
where, what was expected and what was given."""

from __future__ import annotations

import math
from typing import Any

from plait._lookup import unknown_name
from plait.errors import DefinitionError

__all__ = ["check_model_string", "check_number", "check_seconds", "check_storage_url"]


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


def check_model_string(spec: str, where: str) -> None:
    """A ``"provider:model"`` string (or ``"fallback:a,b"``) whose provider is neither
    registered nor provided by a known plait distribution is a DefinitionError now, naming the
    known providers and the closest one (``opnai`` -> ``openai``), not an error at the first run.
    A known provider that is not installed passes: its use says what to install. A known or
    built-in provider costs a dictionary lookup (no registry is built)."""
    if spec.startswith("fallback:"):
        for member in spec.removeprefix("fallback:").split(","):
            check_model_string(member, where)
        return
    problem = unknown_name("model", spec.partition(":")[0])
    if problem is not None:
        raise DefinitionError(f"{where}: model {spec!r}: {problem}")


def check_storage_url(url: Any, where: str) -> None:
    """A storage URL whose scheme no storage is registered for, nor provided by a known plait
    distribution, is a DefinitionError now (``sqlit:///runs.db`` -> did you mean ``sqlite``),
    not at the first run. Only the scheme is shown: the rest of a URL may hold a password."""
    if not isinstance(url, str) or "://" not in url:
        return  # other forms are resolved (and refused, if they must be) at the first run
    scheme = url.split("://", 1)[0].split("+", 1)[0]
    problem = unknown_name("storage", scheme)
    if problem is not None:
        raise DefinitionError(f"{where}: storage {scheme}://...: {problem}")
