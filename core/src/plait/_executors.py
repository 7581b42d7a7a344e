"""User callables, classified once at construction.

A step executor, evaluator, selector or end condition may be a sync or async
function, a sync or async generator function, or an object whose ``__call__`` is
any of those. :class:`Callee` records which, and whether it takes a
``run_context`` argument, so nothing is inspected on the hot path.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any, Literal

from plait._codec import allow_content_type, declared_types
from plait.errors import DefinitionError

__all__ = ["CallKind", "Callee"]

CallKind = Literal["sync", "async", "sync_gen", "async_gen"]


class Callee:
    """A user callable and how to call it."""

    __slots__ = ("declared_types", "executor_type", "fn", "kind", "name", "wants_run_context")

    def __init__(self, fn: Callable[..., Any], *, what: str) -> None:
        if not callable(fn):
            raise DefinitionError(f"{what}: expected a function or a callable object, got {fn!r}")
        self.fn = fn
        target: Any = fn
        is_class_instance = not (inspect.isfunction(fn) or inspect.ismethod(fn) or inspect.isbuiltin(fn))
        if is_class_instance and not hasattr(fn, "func"):
            target = type(fn).__call__
        if inspect.isasyncgenfunction(target):
            self.kind: CallKind = "async_gen"
        elif inspect.isgeneratorfunction(target):
            self.kind = "sync_gen"
        elif inspect.iscoroutinefunction(target):
            self.kind = "async"
        else:
            self.kind = "sync"
        self.name = getattr(fn, "__name__", None) or type(fn).__name__
        self.executor_type = "class" if is_class_instance and not hasattr(fn, "func") else "function"
        self.wants_run_context = _accepts(fn, "run_context")
        self.declared_types = _declared_types(fn, self.executor_type)
        # declared classes may be rebuilt from stored content (resume, cache) by any run of this process
        allow_content_type(*self.declared_types)

    def __repr__(self) -> str:
        return f"Callee({self.name!r}, {self.kind})"


def _accepts(fn: Callable[..., Any], parameter: str) -> bool:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    return parameter in signature.parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()
    )


def _declared_types(fn: Callable[..., Any], executor_type: str) -> list[type]:
    """Model, dataclass and enum classes in the callable's annotations."""
    target: Any = fn if executor_type == "function" else type(fn).__call__
    target = getattr(target, "func", target)  # functools.partial
    try:
        hints = list(typing.get_type_hints(target).values())
    except Exception:  # unresolvable forward references: take what already is a class
        hints = list(getattr(target, "__annotations__", {}).values())
    return declared_types(hints)
