"""plait entry point: registers the ``ray`` runner (``Workflow(..., runner="ray")``)."""

from __future__ import annotations

from typing import Any

from plait.hookspecs import hookimpl


@hookimpl
def register_runners(register: Any) -> None:
    from plait_ray._runner import runner_factory

    register("ray", runner_factory)
