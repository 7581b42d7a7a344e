"""The ``otlp`` entry point: configure OTLP export on startup when an endpoint is set.

Loading the plugin imports nothing heavy: the OpenTelemetry SDK is imported only
when an endpoint variable asks for export.
"""

from __future__ import annotations

import os
from typing import Any

from plait.hookspecs import hookimpl

__all__ = ["on_startup"]

#: Setting any of these turns export on; without one the plugin does nothing.
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


@hookimpl
def on_startup(registry: Any) -> None:
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return
    if any(os.environ.get(name) for name in ENDPOINT_VARIABLES):
        from plait_otlp._configure import configure

        configure()
