"""plait entry point: registers the ``ray`` runner (``Workflow(..., runner="ray")``).

Registering imports nothing of the runner (nor Ray): :func:`create` does, when a
workflow first asks for ``runner="ray"``.
"""

from __future__ import annotations

from typing import Any

from plait.hookspecs import hookimpl

__all__ = ["create", "register_runners"]


def create(**options: Any) -> Any:
    """The shared Ray runner, or a new one with ``options`` (see ``plait_ray.RayRunner``)."""
    from plait_ray._runner import runner_factory

    return runner_factory(**options)


@hookimpl
def register_runners(register: Any) -> None:
    register("ray", create)
