"""Public names report their public home.

A class or function defined in a private module (``plait._io.StepOutput``) and
exported by a public one (``plait``) reports the public module as its
``__module__``, so reprs, tracebacks, docs and pickles name ``plait.StepOutput``,
the place users import it from. Names defined in a public module
(``plait.errors.StepError``) keep it.

A dataclass's field annotations are strings (``from __future__ import
annotations``) that pydantic and :func:`typing.get_type_hints` look up in the
module ``__module__`` names; they are resolved in the defining module first,
while it still is that module.
"""

from __future__ import annotations

import dataclasses
import sys
import types
from collections.abc import Iterable
from typing import Any

__all__ = ["PLAIT_EXPORTS", "is_private", "publish", "report_public_home"]

#: The names :mod:`plait` exports that private modules define, by defining module. Each of
#: these modules calls :func:`publish` as its last line, so its classes and functions report
#: ``plait`` from the moment they exist, whichever module imports them first: ``import plait``
#: is lazy (it imports none of them), and stored type tags (:func:`plait._codec.class_key`,
#: ``plait:StepOutput``) must not depend on whether ``plait.StepOutput`` was looked up yet.
PLAIT_EXPORTS: dict[str, tuple[str, ...]] = {
    "plait._budget": ("Budget",),
    "plait._codec": ("allow_content_type",),
    "plait._content": ("ParallelContent",),
    "plait._context": ("StepContext",),
    "plait._diff": ("RunDiff", "StepDiff", "adiff_runs", "diff_runs"),
    "plait._durable": ("CachePolicy",),
    "plait._handle": ("AsyncRunHandle", "RunHandle"),
    "plait._io": (
        "RunStatus",
        "StepInput",
        "StepMetrics",
        "StepOutput",
        "StepType",
        "WorkflowExecutionInput",
        "WorkflowMetrics",
        "WorkflowRunOutput",
        "WorkflowStepMetrics",
    ),
    "plait._limits": ("RateLimit", "set_rate_limits"),
    "plait._pause": ("PendingInput",),
    "plait._queue": ("QueuedRun",),
    "plait._run_context": ("RunContext",),
    "plait._worker": ("Worker",),
}


def is_private(module_name: str) -> bool:
    """``plait._io``, ``plait.storage._base``: a module with a part that starts with ``_``."""
    return any(part.startswith("_") for part in module_name.split("."))


def report_public_home(module_name: str, namespace: dict[str, Any], names: Iterable[str]) -> None:
    """Set ``__module__ = module_name`` on the classes and functions among ``names`` (looked up
    in ``namespace``) that a private module defines."""
    for name in names:
        obj = namespace.get(name)
        if not isinstance(obj, (type, types.FunctionType)) or not is_private(obj.__module__):
            continue
        if isinstance(obj, type) and dataclasses.is_dataclass(obj):
            _resolve_field_types(obj)
        obj.__module__ = module_name


def _resolve_field_types(cls: type) -> None:
    globalns = vars(sys.modules[cls.__module__])
    localns = {cls.__name__: cls}
    own = cls.__annotations__  # this class's own (a class's, since Python 3.10)
    for field in dataclasses.fields(cls):
        if not isinstance(field.type, str):
            continue
        try:
            resolved = eval(field.type, globalns, localns)
        except NameError:  # a name imported for type checkers only: left as it is
            continue
        field.type = resolved
        if field.name in own:
            own[field.name] = resolved


def publish(module_name: str, namespace: dict[str, Any]) -> None:
    """Make the names :data:`PLAIT_EXPORTS` lists for ``module_name`` report ``plait`` (called
    by that module, last, with ``globals()``)."""
    report_public_home("plait", namespace, PLAIT_EXPORTS[module_name])
