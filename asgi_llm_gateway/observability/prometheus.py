"""`PrometheusHook` and `metrics_app`: the gateway's metrics in Prometheus's text format (the `prometheus`
extra). `prometheus_client` is imported only when one of them is built.

    metric (prefix llm_gateway)                 type       labels
    _requests_total                             counter    endpoint, provider, model, status_class
    _errors_total                               counter    type (the error's type; client_closed_request
                                                           for a client that left, status 499)
    _request_duration_seconds                   histogram  endpoint, provider, model
    _time_to_first_token_seconds                histogram  provider, model (streams: the first chunk)
    _tokens_total                               counter    direction (input / output), provider, model
    _streams_in_flight                          gauge      —
    _retries_total                              counter    provider, model (another attempt, same target)
    _fallbacks_total                            counter    provider, model (the target given up on)
    _upstream_errors_total                      counter    provider, model, type (every failed attempt)
    _limit_rejections_total                     counter    endpoint, code (429 at admission)
    _targets_cooling_down                       gauge      target (1 while cooling down; with `watch`)

`provider` is the configured provider name that answered (or was tried), "none" when no attempt was made.
`model` is the model the client asked for (a route alias or `<provider>/<model>`). Cardinality stays
bounded: `models` names the models that get their own label, or `watch(gateway)` takes the gateway's
routes and its providers' declared models; without either, the first `max_models` models seen get one.
Every other model is counted as "other", so a client sending random model names (a provider without a
model list serves any) cannot grow the series.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..asgi import Receive, Scope, Send
from ..errors import GatewayError
from ..pipeline.call import CLIENT_CLOSED_REQUEST, Call
from ..pipeline.hooks import Hooks
from ..routing import Target
from ..usage import UsageRecord
from ._facts import Progress, Tokens, progress

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

    from ..gateway import Gateway

__all__ = ["OTHER", "PrometheusHook", "configured_models", "configured_targets", "metrics_app"]

#: The label of every model outside the bounded set.
OTHER = "other"

_SECONDS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class PrometheusHook(Hooks):
    """Counts every call and attempt into `registry` (a new `CollectorRegistry` by default: pass
    `prometheus_client.REGISTRY` to share the process's default one)."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        prefix: str = "llm_gateway",
        *,
        models: Iterable[str] | None = None,
        max_models: int = 50,
        buckets: Iterable[float] = _SECONDS,
    ) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = registry if registry is not None else CollectorRegistry()
        self.prefix = prefix
        self.models: set[str] = set(models) if models is not None else set()
        #: Whether models not in `models` may still be learnt (up to `max_models`).
        self.learning = models is None
        self.max_models = max_models
        buckets = tuple(buckets)
        registry = self.registry

        def counter(name: str, documentation: str, *labels: str) -> Counter:
            return Counter(f"{prefix}_{name}", documentation, labels, registry=registry)

        def histogram(name: str, documentation: str, *labels: str) -> Histogram:
            return Histogram(f"{prefix}_{name}", documentation, labels, registry=registry, buckets=buckets)

        self.requests = counter(
            "requests", "Requests served.", "endpoint", "provider", "model", "status_class"
        )
        self.errors = counter("errors", "Requests that ended in an error, by type.", "type")
        self.duration = histogram(
            "request_duration_seconds",
            "Request duration, from its start to its last byte.",
            "endpoint",
            "provider",
            "model",
        )
        self.first_token = histogram(
            "time_to_first_token_seconds",
            "Time from a streamed request's start to its first chunk.",
            "provider",
            "model",
        )
        self.tokens = counter("tokens", "Tokens used.", "direction", "provider", "model")
        self.streams = Gauge(f"{prefix}_streams_in_flight", "Streams being relayed.", registry=registry)
        self.retries = counter("retries", "Attempts repeated on the same target.", "provider", "model")
        self.fallbacks = counter("fallbacks", "Targets given up on for the next one.", "provider", "model")
        self.upstream_errors = counter(
            "upstream_errors", "Failed attempts, by type.", "provider", "model", "type"
        )
        self.limit_rejections = counter(
            "limit_rejections", "Calls refused at admission with 429.", "endpoint", "code"
        )
        #: (metric, *label values) → its child: `labels()` takes a lock and rebuilds the key each time
        #: (bounded like the labels themselves).
        self._children: dict[tuple[Any, ...], Any] = {}
        #: (endpoint, provider, model label, status // 100) → the four children every call's end touches,
        #: found with one lookup (bounded: a handful of endpoints and status classes, the bounded labels).
        self._ends: dict[tuple[str, str, str, int], _End] = {}

    def watch(self, gateway: Gateway) -> None:
        """Label exactly `gateway`'s configured models (`configured_models`), and export
        `_targets_cooling_down{target}` for its configured targets. Call it once, after building the
        gateway (the hook is passed to the gateway first)."""
        self.models = configured_models(gateway)
        self.learning = False
        self.registry.register(_Cooldowns(f"{self.prefix}_targets_cooling_down", gateway))

    def child(self, metric: Any, *labels: str) -> Any:
        """`metric.labels(*labels)`, remembered."""
        key = (metric, *labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def model_label(self, model: str) -> str:
        """`model`, or "other" outside the bounded set."""
        if model in self.models:
            return model
        if self.learning and len(self.models) < self.max_models:
            self.models.add(model)
            return model
        return OTHER

    # -- hook points ----------------------------------------------------------------------------------

    async def attempt_started(self, call: Call, target: Target) -> None:
        seen = progress(call, self)
        before = seen.attempts[-1][0] if seen.attempts else None
        step = seen.started(target)
        if step is None or before is None:
            return
        provider = before.partition("/")[0]
        counter = self.retries if step == "retry" else self.fallbacks
        self.child(counter, provider, self.model_label(call.model)).inc()

    async def attempt_ended(self, call: Call, target: Target, error: GatewayError | None) -> None:
        seen = progress(call, self)
        seen.ended(call, target, error)
        if error is not None:
            self.child(
                self.upstream_errors, target.provider_name, self.model_label(call.model), error.type
            ).inc()
        elif call.stream and not seen.extra.get("streaming"):
            seen.extra["streaming"] = True
            self.streams.inc()

    async def request_ended(self, call: Call, record: UsageRecord) -> None:
        seen: Progress | None = call.state.get(self)  # none when no attempt was made
        if seen is not None and seen.extra.pop("streaming", False):
            self.streams.dec()
        provider = record.provider or "none"
        model = self.model_label(call.model)
        key = (record.endpoint, provider, model, record.status // 100)
        end = self._ends.get(key)
        if end is None:
            end = self._ends[key] = self._end(*key)
        end.requests.inc()
        end.duration.observe(record.latency_ms / 1000)
        if record.status == CLIENT_CLOSED_REQUEST:
            self.child(self.errors, "client_closed_request").inc()
        elif record.error is not None:
            self.child(self.errors, str(record.error.get("type") or "server_error")).inc()
            if record.status == 429 and call.attempts == 0:
                code = str(record.error.get("code") or "rate_limit_exceeded")
                self.child(self.limit_rejections, record.endpoint, code).inc()
        if seen is not None and seen.first_chunk is not None:
            self.child(self.first_token, provider, model).observe(seen.first_chunk)
        tokens = Tokens.of(record.usage)
        if tokens is not None:
            if end.tokens is None:  # made on first use: a series appears once it has something to count
                end.tokens = (
                    self.child(self.tokens, "input", provider, model),
                    self.child(self.tokens, "output", provider, model),
                )
            end.tokens[0].inc(tokens.input)
            end.tokens[1].inc(tokens.output)

    def _end(self, endpoint: str, provider: str, model: str, status_class: int) -> _End:
        return _End(
            self.child(self.requests, endpoint, provider, model, f"{status_class}xx"),
            self.child(self.duration, endpoint, provider, model),
        )


class _End:
    """The children a call's end touches for one (endpoint, provider, model, status class)."""

    __slots__ = ("duration", "requests", "tokens")

    def __init__(self, requests: Any, duration: Any) -> None:
        self.requests = requests
        self.duration = duration
        #: (input, output) children of `_tokens_total`, once a call of this kind reported usage.
        self.tokens: tuple[Any, Any] | None = None


def configured_models(gateway: Gateway) -> set[str]:
    """The model names a gateway is configured with: its route aliases and `configured_targets`."""
    return set(gateway.router.routes) | configured_targets(gateway)


def configured_targets(gateway: Gateway) -> set[str]:
    """The targets a gateway is configured with: its routes' targets, and `<provider>/<model>` for each
    model a provider declares (`models=[...]`)."""
    names = {
        target.name for entries, _ in gateway.router.routes.values() for e in entries for target in e.targets
    }
    for name, provider in gateway.providers.items():
        declared = getattr(provider, "models", None)
        if isinstance(declared, (list, tuple)):
            names.update(f"{name}/{model}" for model in declared)
    return names


class _Cooldowns:
    """A collector: at each scrape, 1 for each configured target cooling down after failures, else 0."""

    def __init__(self, name: str, gateway: Gateway) -> None:
        self.name = name
        self.health = gateway.health
        self.targets = sorted(configured_targets(gateway))

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        family = GaugeMetricFamily(
            self.name, "Whether a target is cooling down after failures.", labels=["target"]
        )
        now = time.monotonic()  # the clock the gateway's attempts use
        for target in self.targets:
            family.add_metric([target], 0.0 if self.health.healthy(target, now) else 1.0)
        yield family


def metrics_app(registry: CollectorRegistry) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """An ASGI app answering GET (and HEAD) with `registry`'s metrics, in the format the scraper asks for
    (Prometheus text, or OpenMetrics by its `Accept` header). Mount it wherever the host serves metrics."""
    from prometheus_client.exposition import choose_encoder

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] not in ("GET", "HEAD"):
            headers = [(b"allow", b"GET, HEAD"), (b"content-length", b"0")]
            await send({"type": "http.response.start", "status": 405, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        accept = next((value.decode("latin-1") for key, value in scope["headers"] if key == b"accept"), "")
        encoder, content_type = choose_encoder(accept)
        body = encoder(registry)
        headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})

    return app
