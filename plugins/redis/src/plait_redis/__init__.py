"""Redis storage for plait: ``Workflow(storage="redis://host:6379/0")``.

Installing ``plait-redis`` registers the ``redis://`` and ``rediss://`` storage
URLs; :class:`RedisStorage` takes the options a URL cannot carry. redis-py is
imported on first use, never when plait loads its plugins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plait_redis._storage import RedisStorage

__all__ = ["RedisStorage"]


def __getattr__(name: str) -> Any:
    if name == "RedisStorage":
        from plait_redis._storage import RedisStorage

        return RedisStorage
    raise AttributeError(f"module 'plait_redis' has no attribute {name!r}")
