"""plait-ray: run plait's parallel branches on a Ray cluster.

>>> from plait import Parallel, Workflow
>>> from plait_ray import RayRunner
>>> workflow = Workflow(name="fan-out", steps=[Parallel(*branches, name="all")], runner=RayRunner())

or ``runner="ray"`` once the package is installed; :func:`submit` runs a whole workflow run on
the cluster. Importing this package does not import Ray; the runner does on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plait_ray._options import ray_options
from plait_ray.errors import RayBranchError, RemoteTraceback

if TYPE_CHECKING:
    from plait_ray._runner import RayRunner, shared_runner
    from plait_ray._runs import RayRun, submit

__all__ = [
    "RayBranchError",
    "RayRun",
    "RayRunner",
    "RemoteTraceback",
    "ray_options",
    "shared_runner",
    "submit",
]

ray_options.__module__ = __name__


def __getattr__(name: str) -> Any:
    # the runner module is loaded on first use: registering the plugin stays light
    if name in ("RayRunner", "shared_runner"):
        from plait_ray import _runner

        value = getattr(_runner, name)
        value.__module__ = __name__
        return value
    if name in ("RayRun", "submit"):
        from plait_ray import _runs

        value = getattr(_runs, name)
        value.__module__ = __name__
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
