"""What ``GET /`` answers: where the API and its documentation are."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

__all__ = ["mount_page"]


def mount_page(app: FastAPI) -> None:
    """Add ``GET /`` to ``app``."""

    @app.get("/", include_in_schema=False)
    async def index() -> dict[str, Any]:
        return {"api": "/api/workflows", "openapi": "/openapi.json", "docs": "/docs"}
