"""Ray options for a step: the resources its branch asks for when it runs as a Ray task."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from plait.errors import DefinitionError

__all__ = ["ATTRIBUTE", "ray_options", "task_options_of", "validate_options"]

#: the step attribute RayRunner reads
ATTRIBUTE = "ray_options"

#: Ray's own retries would hide failures from the core, which decides retries (RetryPolicy)
_FORBIDDEN = {
    "max_retries": "Ray's task retries are off: give the step retry=RetryPolicy(...) instead",
    "retry_exceptions": "Ray's task retries are off: give the step retry=RetryPolicy(...) instead",
    "num_returns": "RayRunner streams a branch's events and result itself",
}

S = TypeVar("S")


def validate_options(where: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Check Ray task options plait controls; the rest is Ray's to validate."""
    if not isinstance(options, Mapping):
        raise DefinitionError(f"{where}: expected a mapping of Ray task options, got {options!r}")
    for key in options:
        if key in _FORBIDDEN:
            raise DefinitionError(f"{where}: {key!r} is not allowed ({_FORBIDDEN[key]})")
    return dict(options)


def ray_options(
    step: S,
    *,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
    resources: Mapping[str, float] | None = None,
    memory: int | None = None,
    **options: Any,
) -> S:
    """Ask for Ray resources for ``step`` when a RayRunner runs it as a parallel branch.

    The branch then runs as a Ray task with these options instead of on the actor
    pool; other options (``accelerator_type``, ``scheduling_strategy``,
    ``runtime_env``...) pass to Ray's ``.options()`` as they are. Returns the step::

        Parallel(ray_options(Step(name="embed", executor=embed), num_gpus=1), ...)
    """
    named = {"num_cpus": num_cpus, "num_gpus": num_gpus, "resources": resources, "memory": memory}
    chosen = {key: value for key, value in named.items() if value is not None}
    chosen.update(options)
    name = getattr(step, "name", step)
    setattr(step, ATTRIBUTE, validate_options(f"ray_options({name!r})", chosen))
    return step


def task_options_of(step: Any) -> dict[str, Any]:
    """The Ray options a step asks for (empty when it asks for none)."""
    options = getattr(step, ATTRIBUTE, None)
    if not options:
        return {}
    return validate_options(f"Step {getattr(step, 'name', step)!r}: {ATTRIBUTE}", options)
