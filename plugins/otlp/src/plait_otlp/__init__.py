"""OTLP export for plait: ``pip install plait-otlp``, set ``OTEL_EXPORTER_OTLP_ENDPOINT``.

Installed, the plugin configures the OpenTelemetry SDK on startup whenever an
OTLP endpoint variable is set, so every workflow's spans are exported with no
code change. :func:`configure` does the same from code, with arguments.

The SDK is imported on first use of :func:`configure`, so loading plait's
plugins stays light when export is off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plait_otlp._configure import PROJECT_NAME_ATTRIBUTE, configure

__all__ = ["PROJECT_NAME_ATTRIBUTE", "configure"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from plait_otlp import _configure

        _configure.configure.__module__ = __name__
        return getattr(_configure, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
