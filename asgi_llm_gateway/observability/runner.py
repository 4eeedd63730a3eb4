"""What the runner's observability switches build: `--log-requests`, `--metrics [PATH]` and `--otel`, or the
config file's `[observability]` table (the flags win over the file).

    switch            TOML key                        builds
    --log-requests    logs = true                     `LogHook`, and a handler writing its records to stderr
                      include_content = false         as JSON lines (`include_content`: prompts too)
    --metrics [PATH]  metrics = "/metrics" (or true)  `PrometheusHook(prometheus_client.REGISTRY)` watching
                                                      the gateway, and `metrics_app` at PATH beside it
    --otel            otel = true                     `OpenTelemetryHook` on the SDK's tracer and meter
                                                      providers, exporting over OTLP/HTTP as the standard
                                                      OTEL_EXPORTER_OTLP_* and OTEL_SERVICE_NAME variables say

Only the runner does this: a host embedding the gateway builds the hooks itself and keeps its own logging,
OpenTelemetry set-up and metrics route. The gateway itself never grows a metrics route: the scrape endpoint
is mounted beside it (`PathPrefixDispatcher`), so `/v1/...` stays the gateway's alone.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from ..asgi import local_path
from ..mount import ASGIApp, PathPrefixDispatcher
from ..pipeline.hooks import Hooks
from ..wire import dumps
from .logs import LogHook
from .otel import OpenTelemetryHook
from .prometheus import PrometheusHook, metrics_app

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider as SDKMeterProvider
    from opentelemetry.sdk.trace import TracerProvider as SDKTracerProvider
    from prometheus_client import CollectorRegistry

    from ..gateway import Gateway

__all__ = [
    "DEFAULT_METRICS_PATH",
    "JsonLines",
    "Observability",
    "ObservabilityError",
    "Observed",
    "check_metrics_path",
    "observe",
    "require_packages",
]

DEFAULT_METRICS_PATH = "/metrics"
#: The OpenTelemetry service name when neither OTEL_SERVICE_NAME nor OTEL_RESOURCE_ATTRIBUTES names one.
SERVICE_NAME = "asgi-llm-gateway"
_OTEL_INSTALL = "pip install 'asgi-llm-gateway[otel-exporter]'"
_PROMETHEUS_INSTALL = "pip install 'asgi-llm-gateway[prometheus]'"
_OTEL_MODULES = ("opentelemetry.sdk.trace", "opentelemetry.exporter.otlp.proto.http.trace_exporter")


class ObservabilityError(Exception):
    """A switch that cannot work: the package it needs is missing (the message says what to install), or the
    metrics path would hide one of the gateway's own."""


@dataclass(frozen=True)
class Observability:
    """What the runner observes: the `[observability]` table, with the command line's flags over it."""

    logs: bool = False
    include_content: bool = False
    #: The scrape endpoint's path; None: no Prometheus metrics.
    metrics: str | None = None
    otel: bool = False

    def over(self, overrides: Mapping[str, Any]) -> Observability:
        """These settings with `overrides` (the flags that were given) in their place."""
        return dataclasses.replace(self, **overrides)

    def describe(self) -> str:
        """What is on, for the start-up line."""
        parts = []
        if self.logs:
            parts.append("request logs" + (" with content" if self.include_content else ""))
        if self.metrics is not None:
            parts.append(f"Prometheus metrics on {self.metrics}")
        if self.otel:
            parts.append(f"OpenTelemetry to {_otlp_endpoint()}")
        return ", ".join(parts) if parts else "no request logs, metrics or traces"


def check_metrics_path(path: str) -> str | None:
    """What is wrong with the shape of `path` as the scrape endpoint's path, if anything."""
    if (
        not path.startswith("/")
        or path.endswith("/")
        or any(part in ("", ".", "..") for part in path[1:].split("/"))
    ):
        return f"{path!r} must be an absolute path like {DEFAULT_METRICS_PATH}, not ending in '/'"
    return None


def _hides_gateway_path(path: str, gateway: Gateway) -> bool:
    """Whether serving metrics at `path` (and below it) would take a request meant for the gateway."""
    below = local_path({"path": path})
    if path in ("/", "/v1") or below in gateway.routes:
        return True
    if any(below.startswith(route) for route in gateway.routes if route.endswith("/")):
        return True
    served = [route.rstrip("/") for route in gateway.routes]
    return any(
        full == path or full.startswith(path + "/") for route in served for full in (route, "/v1" + route)
    )


@dataclass
class Observed:
    """The hooks to give the gateway, and how to serve it once built."""

    hooks: list[Hooks] = field(default_factory=list)
    prometheus: PrometheusHook | None = None
    metrics_path: str = DEFAULT_METRICS_PATH

    def app(self, gateway: Gateway) -> ASGIApp:
        """The app to serve: `gateway`, with the scrape endpoint beside it when metrics are on."""
        if self.prometheus is None:
            return gateway
        if _hides_gateway_path(self.metrics_path, gateway):
            raise ObservabilityError(
                f"metrics path {self.metrics_path!r} would hide the gateway's own paths; "
                f"choose another, e.g. {DEFAULT_METRICS_PATH}"
            )
        self.prometheus.watch(gateway)
        scrape = metrics_app(self.prometheus.registry)
        # lifespan="app": the gateway answers uvicorn's lifespan (and closes itself on shutdown).
        return PathPrefixDispatcher(gateway, scrape, prefix=self.metrics_path, lifespan="app")


def require_packages(settings: Observability) -> None:
    """`ObservabilityError` naming what to install when a switch that is on misses its package."""
    if settings.metrics is not None and (missing := _missing(("prometheus_client",))):
        raise ObservabilityError(
            f"metrics need prometheus_client ({missing} is missing): {_PROMETHEUS_INSTALL}"
        )
    if settings.otel and (missing := _missing(_OTEL_MODULES)):
        raise ObservabilityError(
            f"--otel needs the OpenTelemetry SDK and its OTLP/HTTP exporter ({missing} is missing): "
            f"{_OTEL_INSTALL}"
        )


def _missing(modules: tuple[str, ...]) -> str | None:
    """The first of `modules` that cannot be imported (as the import system names it), if any."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            return exc.name or module
    return None


def observe(settings: Observability, registry: CollectorRegistry | None = None) -> Observed:
    """Build what `settings` switch on; `ObservabilityError` names the package a switch is missing.

    Metrics go to `registry`, by default prometheus_client's process-wide one (which also has the process's
    own CPU, memory and garbage-collector metrics); only one `PrometheusHook` fits in a registry."""
    require_packages(settings)
    observed = Observed()
    if settings.logs:
        observed.hooks.append(LogHook(_request_logger(), include_content=settings.include_content))
    if settings.metrics is not None:
        if registry is None:
            from prometheus_client import REGISTRY as registry
        observed.prometheus = PrometheusHook(registry)
        observed.metrics_path = settings.metrics
        observed.hooks.append(observed.prometheus)
    if settings.otel:
        observed.hooks.append(_opentelemetry())
    return observed


def _request_logger() -> logging.Logger:
    """`LogHook`'s logger with one JSON-lines handler on stderr (uvicorn configures only its own loggers, so
    without it INFO records would be dropped). Not propagated: a root handler would print them twice."""
    logger = logging.getLogger("asgi_llm_gateway.requests")
    if not any(isinstance(handler.formatter, JsonLines) for handler in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonLines())
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


#: The attributes every `LogRecord` has; the others are a record's `extra` fields.
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonLines(logging.Formatter):
    """One JSON object per record: time, level, logger, message and the record's `extra` fields.

    Compact, through the gateway's JSON encoder (orjson with the `fast` extra: a request record in ~1 us
    instead of ~7); a field JSON cannot hold is written as its `str()`."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({key: value for key, value in record.__dict__.items() if key not in _RECORD_ATTRIBUTES})
        try:
            return dumps(line).decode()
        except TypeError:  # a value of a type JSON has no form for (a Decimal, an object…)
            return json.dumps(line, default=str, ensure_ascii=False, separators=(",", ":"))


def _opentelemetry() -> OpenTelemetryHook:
    """`OpenTelemetryHook` on SDK providers exporting over OTLP/HTTP, set as the process's global providers
    (so other instrumentation in the process joins the same traces). The exporters, the batch processor and
    the metric reader read their settings from the standard OTEL_* variables; the SDK flushes at exit."""
    from opentelemetry import metrics, trace
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create()
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    reader = PeriodicExportingMetricReader(OTLPMetricExporter())
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    return _OwnedOpenTelemetryHook(tracer_provider, meter_provider)


class _OwnedOpenTelemetryHook(OpenTelemetryHook):
    """`OpenTelemetryHook` on providers the runner made: the gateway's shutdown flushes and stops them.

    The SDK's own at-exit flush does not run under uvicorn, which ends the process by re-raising SIGTERM
    once it has shut down: the spans and metrics of the last seconds would be lost."""

    def __init__(self, tracer_provider: SDKTracerProvider, meter_provider: SDKMeterProvider) -> None:
        super().__init__(tracer_provider, meter_provider)
        self.providers = (tracer_provider, meter_provider)

    async def aclose(self) -> None:
        for provider in self.providers:  # each exports what it still holds, over HTTP: off the event loop
            await anyio.to_thread.run_sync(provider.shutdown)


def _otlp_endpoint() -> str:
    """Where traces go, as the exporter will resolve it (for the start-up line)."""
    traces = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if traces:
        return traces
    base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318")
    return base.rstrip("/") + "/v1/traces"
