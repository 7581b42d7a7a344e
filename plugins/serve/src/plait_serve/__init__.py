"""plait-serve: workflows over HTTP.

>>> from plait_serve import create_app
>>> app = create_app(workflows=[workflow], storage="sqlite:///runs.db")   # a FastAPI app
>>> # uvicorn.run(app)   or   plait serve module:workflow

FastAPI is imported when :func:`create_app` is first used, not with this package: plait
loads every plugin's entry point (``plait_serve.plugin``) when it builds its registry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plait_serve._app import DEFAULT_BODY_LIMIT, create_app

__all__ = ["DEFAULT_BODY_LIMIT", "create_app"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from plait_serve import _app

        return getattr(_app, name)
    raise AttributeError(f"module 'plait_serve' has no attribute {name!r}")
