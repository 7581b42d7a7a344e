"""What crosses the process boundary on the driver: payloads out, failures back.

:func:`pack` pickles a branch's payload before anything is submitted, so a step
that cannot be shipped fails early with the step's name and, when it can be
found, the attribute that holds the unpicklable object. :func:`remote_failure`
and :func:`ray_failure` turn what went wrong in a worker into the core's
:class:`~plait.errors.StepError`, with the step path and the remote traceback.
"""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any

from ray import cloudpickle

from plait.errors import DefinitionError, StepError
from plait.events import StepErrorEvent
from plait_ray.errors import RayBranchError, RemoteTraceback

if TYPE_CHECKING:
    from plait.runners import Branch

__all__ = ["pack", "ray_failure", "remote_failure"]

#: how deep to look for the unpicklable attribute inside a step
_SEARCH_DEPTH = 8


def pack(branch: Branch) -> bytes:
    """The branch's payload as bytes for Ray; a DefinitionError naming the step if it cannot be."""
    payload = branch.payload()
    try:
        return bytes(cloudpickle.dumps(payload))  # type: ignore[no-untyped-call]
    except Exception as exc:
        name = branch.node.name
        where = (
            _find_unpicklable(payload.node, repr(name), 0)
            or _find_unpicklable(payload.state, "session_state", 0)
            or _find_unpicklable(payload.step_input, "step_input", 0)
        )
        detail = f": {where} cannot be pickled" if where else ""
        raise DefinitionError(
            f"Step {name!r} cannot be shipped to a Ray worker{detail} ({type(exc).__name__}: {exc}). "
            "Steps run by RayRunner must be picklable (cloudpickle); create such objects inside the "
            "step instead of holding them."
        ) from exc


def _picklable(obj: Any) -> bool:
    try:
        cloudpickle.dumps(obj)  # type: ignore[no-untyped-call]
    except Exception:
        return False
    return True


def _parts(obj: Any) -> list[tuple[str, Any]]:
    """The named pieces an object pickles through."""
    if isinstance(obj, dict):
        return [(f"[{key!r}]", value) for key, value in obj.items()]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [(f"[{index}]", value) for index, value in enumerate(obj)]
    if isinstance(obj, types.MethodType):
        return [(".__self__", obj.__self__), (".__func__", obj.__func__)]
    if isinstance(obj, types.FunctionType):
        cells = obj.__closure__ or ()
        return [
            (f".<closure {name}>", cell.cell_contents)
            for name, cell in zip(obj.__code__.co_freevars, cells, strict=True)
        ]
    parts: list[tuple[str, Any]] = []
    if hasattr(obj, "__dict__"):
        parts.extend((f".{key}", value) for key, value in vars(obj).items())
    for cls in type(obj).__mro__:
        for slot in cls.__dict__.get("__slots__", ()):
            if slot not in ("__dict__", "__weakref__") and hasattr(obj, slot):
                parts.append((f".{slot}", getattr(obj, slot)))
    return parts


def _find_unpicklable(obj: Any, path: str, depth: int) -> str | None:
    """The path of the innermost piece of ``obj`` that cannot be pickled, or None."""
    if _picklable(obj):
        return None
    if depth < _SEARCH_DEPTH:
        for name, value in _parts(obj):
            found = _find_unpicklable(value, f"{path}{name}", depth + 1)
            if found is not None:
                return found
    return f"{path} (a {type(obj).__module__}.{type(obj).__qualname__})"


def _branch_path(branch: Branch) -> str:
    return branch.context.child(branch.node.name).step_id


def remote_failure(branch: Branch, info: dict[str, Any]) -> StepError:
    """A worker's failure description (see ``_worker.describe_error``) as a StepError.

    The user's exception comes back as its own type when it unpickles here, so
    retry filters further up still see it; the remote traceback is chained under it.
    """
    remote = RemoteTraceback(f'\n"""\nIn the Ray worker ({info["where"]}):\n{info["traceback"]}"""')
    cause: BaseException | None = None
    if info["cause"] is not None:
        try:
            cause = cloudpickle.loads(info["cause"])
        except Exception:
            cause = None
    if cause is None:
        cause = remote
    else:
        cause.__cause__ = remote
    path = info["step_path"] or _branch_path(branch)
    message = info["message"]
    if info["step_path"] is None:
        message = f"{branch.node.step_type.capitalize()} {path!r} failed: {message}"
    error = StepError(message, step_path=path, step_name=info["step_name"] or branch.node.name)
    error.__cause__ = cause
    return error


def ray_failure(branch: Branch, exc: BaseException, *, lost: bool) -> StepError:
    """A StepError for a branch that Ray could not run to the end (``lost``: its worker died).
    The branch's error event is emitted here, since no worker is left to emit it."""
    path = _branch_path(branch)
    what = "the Ray worker running it died or became unreachable" if lost else "Ray failed to run it"
    failure = RayBranchError(f"{what}: {exc}", worker_lost=lost)
    context = branch.context
    if context.run.step_events:
        branch.emit(
            context.child(branch.node.name).event(
                StepErrorEvent,
                step_type=branch.node.step_type,
                error=str(failure),
                error_type=type(failure).__name__,
                attempt=1,
            )
        )
    error = StepError(
        f"{branch.node.step_type.capitalize()} {path!r} failed: {type(failure).__name__}: {failure}",
        step_path=path,
        step_name=branch.node.name,
    )
    error.__cause__ = failure
    failure.__cause__ = exc
    return error
