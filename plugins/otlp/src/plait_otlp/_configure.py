"""Set up the OpenTelemetry SDK to export over OTLP: one call, standard variables.

Arguments win over the ``OTEL_*`` variables, which win over the OTLP defaults
(``http://localhost:4318`` over HTTP, ``http://localhost:4317`` over gRPC).
Header values (API keys) are handed to the exporter and never logged; an
endpoint is logged without its user info or query string.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import metrics, trace
from opentelemetry.metrics._internal import _ProxyMeterProvider  # the API's placeholder, not exported
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.util.re import parse_env_headers

__all__ = ["PROJECT_NAME_ATTRIBUTE", "Protocol", "configure"]

logger = logging.getLogger("plait.otlp")

#: The resource attribute Arize Phoenix files traces under (its "project").
PROJECT_NAME_ATTRIBUTE = "openinference.project.name"
DEFAULT_SERVICE_NAME = "plait"

Protocol = Literal["http/protobuf", "grpc"]
_PROTOCOLS: tuple[str, ...] = ("http/protobuf", "grpc")
_DEFAULT_BASE = {"http/protobuf": "http://localhost:4318", "grpc": "http://localhost:4317"}

_lock = threading.Lock()
_installed: trace.TracerProvider | None = None  # the global provider configure() installed
_warned_foreign = False


def configure(
    endpoint: str | None = None,
    *,
    protocol: Protocol | None = None,
    headers: Mapping[str, str] | str | None = None,
    service_name: str | None = None,
    project_name: str | None = None,
    set_global: bool = True,
) -> trace.TracerProvider:
    """Export spans (and, when enabled, metrics) over OTLP; return the tracer provider.

    ``endpoint`` is the collector's base URL, like ``OTEL_EXPORTER_OTLP_ENDPOINT``
    (``/v1/traces`` is appended over HTTP; a URL that already ends with it is
    taken as the traces URL). ``protocol`` is ``"http/protobuf"`` (the default)
    or ``"grpc"``; ``headers`` a mapping or ``"key=value,..."`` as in
    ``OTEL_EXPORTER_OTLP_HEADERS``. The resource has ``service.name``
    (``service_name``, ``OTEL_SERVICE_NAME``, else ``"plait"``), the
    ``OTEL_RESOURCE_ATTRIBUTES`` and, from ``project_name`` or
    ``PLAIT_PROJECT_NAME``, ``openinference.project.name`` (Phoenix's project).

    With ``set_global=True`` the provider becomes OpenTelemetry's global one,
    and so every workflow's, unless a provider is installed already: then that
    one is kept and returned, with one warning. A global ``MeterProvider`` with
    the OTLP metric exporter is installed too unless ``OTEL_METRICS_EXPORTER``
    is ``none``. With ``set_global=False`` the provider is only returned: pass
    it as ``Workflow(tracer_provider=...)`` and shut it down yourself.
    Global providers flush and shut down when the process exits.

    Example::

        import plait_otlp

        plait_otlp.configure("http://127.0.0.1:6006", project_name="research")
    """
    global _installed, _warned_foreign
    with _lock:
        if set_global:
            current = trace.get_tracer_provider()
            if _installed is not None and current is _installed:
                return current
            if not isinstance(current, trace.ProxyTracerProvider):
                if not _warned_foreign:
                    _warned_foreign = True
                    logger.warning(
                        "plait-otlp: a tracer provider is already installed (%s); keeping it, "
                        "plait's spans go wherever it sends them",
                        type(current).__name__,
                    )
                return current
        chosen = _protocol(protocol, "TRACES")
        resource = _resource(service_name, project_name)
        url = _signal_url(endpoint, chosen, "TRACES", "traces")
        extra_headers = _headers(headers)
        provider = TracerProvider(resource=resource, shutdown_on_exit=set_global)
        provider.add_span_processor(BatchSpanProcessor(_span_exporter(chosen, url, extra_headers)))
        if set_global:
            trace.set_tracer_provider(provider)
            _installed = provider
            _configure_metrics(endpoint, protocol, extra_headers, resource)
        logger.info(
            "plait-otlp: exporting spans to %s over %s (service.name=%s)",
            _redact(url),
            chosen,
            resource.attributes.get(SERVICE_NAME),
        )
        return provider


def _protocol(given: str | None, signal: str) -> str:
    value = (
        given
        or os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if value not in _PROTOCOLS:
        raise ValueError(
            f"plait-otlp: unsupported OTLP protocol {value!r}, expected one of {', '.join(_PROTOCOLS)}"
        )
    return value


def _signal_url(endpoint: str | None, protocol: str, signal: str, path: str) -> str:
    """The URL one signal is sent to, following the OTLP exporter specification."""
    if endpoint:
        base = endpoint.rstrip("/").removesuffix("/v1/traces")
    elif specific := os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"):
        return specific  # a signal's own endpoint is used as given
    else:
        base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", _DEFAULT_BASE[protocol]).rstrip("/")
    # gRPC addresses the service by method, not by URL path.
    return base if protocol == "grpc" else f"{base}/v1/{path}"


def _headers(headers: Mapping[str, str] | str | None) -> dict[str, str] | None:
    """Explicit headers, or None to let the exporter read ``OTEL_EXPORTER_OTLP_*HEADERS``."""
    if headers is None:
        return None
    if isinstance(headers, str):
        return dict(parse_env_headers(headers, liberal=True))
    return dict(headers)


def _resource(service_name: str | None, project_name: str | None) -> Resource:
    attributes: dict[str, Any] = {}
    if service_name:
        attributes[SERVICE_NAME] = service_name
    project = project_name or os.environ.get("PLAIT_PROJECT_NAME")
    if project:
        attributes[PROJECT_NAME_ATTRIBUTE] = project
    # Resource.create merges OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME under ours.
    resource = Resource.create(attributes)
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return resource


def _span_exporter(protocol: str, url: str, headers: dict[str, str] | None) -> SpanExporter:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter(endpoint=url, headers=headers)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter(endpoint=url, headers=headers)


def _configure_metrics(
    endpoint: str | None, protocol: str | None, headers: dict[str, str] | None, resource: Resource
) -> None:
    if os.environ.get("OTEL_METRICS_EXPORTER", "otlp").strip().lower() == "none":
        return
    if not isinstance(metrics.get_meter_provider(), _ProxyMeterProvider):
        return  # someone installed one already: theirs stays
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader

    chosen = _protocol(protocol, "METRICS")
    url = _signal_url(endpoint, chosen, "METRICS", "metrics")
    exporter: MetricExporter
    if chosen == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcExporter

        exporter = GrpcExporter(endpoint=url, headers=headers)
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpExporter

        exporter = HttpExporter(endpoint=url, headers=headers)
    metrics.set_meter_provider(
        MeterProvider(resource=resource, metric_readers=[PeriodicExportingMetricReader(exporter)])
    )
    logger.info("plait-otlp: exporting metrics to %s over %s", _redact(url), chosen)


def _redact(url: str) -> str:
    """``url`` without user info or query string, which may carry credentials."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
