"""The ``otlp`` entry point: configure OTLP export on startup when an endpoint is set,
and add ``plait run --otlp [ENDPOINT]``.

Loading the plugin imports nothing heavy: the OpenTelemetry SDK is imported only
when an endpoint variable or ``--otlp`` asks for export.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from plait.hookspecs import hookimpl

if TYPE_CHECKING:
    import argparse

__all__ = ["on_startup", "register_run_options"]

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


@hookimpl
def register_run_options(register: Any) -> None:
    register("otlp", _add_otlp_option, _apply_otlp_option)


def _add_otlp_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--otlp",
        nargs="?",
        const="",
        default=None,
        metavar="ENDPOINT",
        help="export traces over OTLP (plait-otlp); ENDPOINT defaults to $OTEL_EXPORTER_OTLP_ENDPOINT",
    )


def _apply_otlp_option(args: argparse.Namespace) -> None:
    if args.otlp is not None:
        from plait_otlp._configure import configure

        configure(args.otlp or None)
