"""Observability through the pipeline's hooks: logs, OpenTelemetry GenAI traces and metrics, Prometheus.

    module       job                                                   needs
    logs         `LogHook`: one structured record per request, and     nothing (the `logging` module)
                 one per failed attempt
    otel         `OpenTelemetryHook`: GenAI spans and metrics, v1.41   the `otel` extra (opentelemetry-api)
                 names or the newer ones (OTEL_SEMCONV_STABILITY_OPT_IN)
    prometheus   `PrometheusHook`, `metrics_app`: counters,            the `prometheus` extra
                 histograms and an ASGI scrape endpoint                (prometheus_client)
    runner       what the runner's --log-requests, --metrics and       what each switch builds
                 --otel (or [observability]) build

Hooks, not ASGI middleware: only the pipeline sees retries, fallbacks, tokens and a stream's first chunk.
A gateway given none of them calls no hook at all. Importing this package imports neither OpenTelemetry
nor prometheus_client: each is imported when its hook is built.
"""

from ._facts import OPERATIONS
from .logs import LogHook
from .otel import LATEST_OPT_IN, PROVIDER_NAMES, UPSTREAM_REQUEST_ID, OpenTelemetryHook, latest_conventions
from .prometheus import OTHER, PrometheusHook, configured_models, configured_targets, metrics_app

__all__ = [
    "LATEST_OPT_IN",
    "OPERATIONS",
    "OTHER",
    "PROVIDER_NAMES",
    "UPSTREAM_REQUEST_ID",
    "LogHook",
    "OpenTelemetryHook",
    "PrometheusHook",
    "configured_models",
    "configured_targets",
    "latest_conventions",
    "metrics_app",
]
