"""The page at ``/``: the runs, a run's live step tree, its approvals, resume and cancel.

Static files shipped in the package (``static/``: one HTML page, one script, one style sheet;
no framework, no CDN, no build step), served as they are. The page holds no data: it reads
the API like any client, so the token guard lets its files through (see
:class:`plait_serve._security.TokenAuth`) and the page asks for the token on a 401.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles

__all__ = ["PAGE_PATHS", "STATIC", "mount_page"]

STATIC = Path(__file__).with_name("static")
#: the paths the page's files are served at (the only ones the token guard lets through)
PAGE_PATHS = ("/", "/ui/app.js", "/ui/graph.js", "/ui/app.css")


def mount_page(app: FastAPI) -> None:
    """Add ``GET /`` (the page) and ``/ui/`` (its script and style sheet) to ``app``."""

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/ui", StaticFiles(directory=STATIC), name="ui")
