"""plait-ray: run plait's parallel branches on a Ray cluster.

>>> from plait import Parallel, Workflow
>>> from plait_ray import RayRunner
>>> workflow = Workflow(name="fan-out", steps=[Parallel(*branches, name="all")], runner=RayRunner())

or ``runner="ray"`` once the package is installed. Importing this package does
not import Ray; the runner does on first use.
"""

from __future__ import annotations

from plait_ray._options import ray_options
from plait_ray._runner import RayRunner, shared_runner
from plait_ray.errors import RayBranchError, RemoteTraceback

__all__ = ["RayBranchError", "RayRunner", "RemoteTraceback", "ray_options", "shared_runner"]

for _name in ("RayRunner", "ray_options", "shared_runner"):
    globals()[_name].__module__ = "plait_ray"
del _name
