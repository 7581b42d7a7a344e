"""plait entry point: registers the ``http`` step type."""

from __future__ import annotations

from typing import Any

from plait.hookspecs import hookimpl


@hookimpl
def register_step_types(register: Any) -> None:
    from plait_http.step import HttpRequest

    register(HttpRequest)
