"""plait-serve: workflows over HTTP.

>>> from plait_serve import create_app
>>> app = create_app(workflows=[workflow], storage="sqlite:///runs.db")   # a FastAPI app
>>> # uvicorn.run(app)   or   plait serve module:workflow
"""

from plait_serve._app import DEFAULT_BODY_LIMIT, create_app

__all__ = ["DEFAULT_BODY_LIMIT", "create_app"]
