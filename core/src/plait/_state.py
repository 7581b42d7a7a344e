"""Session-state isolation and merging.

Parallel branches and nested workflows work on their own deep copy of the
session state; when they end, each copy's changes are merged into the parent
in declaration order, deterministically, and nothing is silently lost:

* a key changed by one branch takes that branch's value (deletions included);
* numbers (not bools) changed by several branches add up their changes, so five
  branches that each do ``state["n"] += 1`` leave ``n`` five higher;
* lists changed by several branches that only appended keep every addition,
  in branch order;
* dicts changed by several branches merge key by key, by these same rules;
* a key that did not exist counts as the zero of what the branches made of it: a
  number created by several branches starts from 0 (five branches doing
  ``state["n"] = state.get("n", 0) + 1`` leave 5), a list from ``[]``, a dict from ``{}``;
* equal new values agree; anything else is a :class:`StateConflictError` that
  names the key and the branches.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from plait.errors import StateConflictError

__all__ = ["isolate", "merge_changes"]

_MISSING: Any = object()


def isolate(state: dict[str, Any]) -> dict[str, Any]:
    """A private deep copy for a branch or a nested workflow."""
    return copy.deepcopy(state) if state else {}


def merge_changes(
    base: dict[str, Any], branches: Sequence[tuple[str, dict[str, Any]]], *, where: str
) -> None:
    """Apply every branch's changes (relative to ``base``) to ``base`` in place.

    ``branches`` pairs each branch's name with its final copy of the state.
    """
    if not base and not any(state for _, state in branches):
        return  # nothing before, nothing after: the common case of a stateless workflow
    merged = _merge_dict(base, branches, path="", where=where)
    base.clear()
    base.update(merged)


def _merge_dict(
    base: dict[str, Any], branches: Sequence[tuple[str, dict[str, Any]]], *, path: str, where: str
) -> dict[str, Any]:
    result = dict(base)
    keys: dict[str, None] = dict.fromkeys(base)
    for _, state in branches:
        keys.update(dict.fromkeys(state))
    for key in keys:
        old = base.get(key, _MISSING)
        changes = [
            (name, state.get(key, _MISSING))
            for name, state in branches
            if not _same(state.get(key, _MISSING), old)
        ]
        if not changes:
            continue
        value = _merge_value(old, changes, path=f"{path}{key}", where=where)
        if value is _MISSING:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def _merge_value(old: Any, changes: list[tuple[str, Any]], *, path: str, where: str) -> Any:
    if len(changes) == 1:
        return changes[0][1]
    values = [value for _, value in changes]
    if old is _MISSING:
        old = _zero_of(values)
    if _is_number(old) and all(_is_number(v) for v in values):
        return old + sum(v - old for v in values)
    if isinstance(old, list) and all(isinstance(v, list) and v[: len(old)] == old for v in values):
        return old + [item for v in values for item in v[len(old) :]]
    if all(_same(value, values[0]) for value in values):
        return values[0]
    if isinstance(old, dict) and all(isinstance(v, dict) for v in values):
        return _merge_dict(old, changes, path=f"{path}.", where=where)
    names = ", ".join(repr(name) for name, _ in changes)
    shown = ", ".join(_show(v) for v in values)
    raise StateConflictError(
        f"{where}: session_state key {path!r} was changed by {names} to different values ({shown}) "
        "that cannot be merged; update distinct keys per branch, or use a number or a list",
        key=path,
    )


def _zero_of(values: list[Any]) -> Any:
    """What a key several branches created counts as having been before them."""
    if all(_is_number(v) for v in values):
        return 0
    if all(isinstance(v, list) for v in values):
        return []
    if all(isinstance(v, dict) for v in values):
        return {}
    return _MISSING


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if a is _MISSING or b is _MISSING:
        return False
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:
        return False


def _show(value: Any) -> str:
    return "<deleted>" if value is _MISSING else repr(value)[:60]
