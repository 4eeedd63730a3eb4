"""`OpenTelemetryHook`: GenAI spans and metrics through the OpenTelemetry API (the `otel` extra).

Only `opentelemetry-api` is imported, and only when the hook is built: the host brings the SDK and its
exporters (an OTLP collector, …) and passes its providers, or sets the global ones.

**Spans.** One per request and one child per upstream attempt:

    span                 kind    name                              attributes
    the request          SERVER  "{operation} {requested model}"   what the client asked, who answered,
                                                                   usage, http.response.status_code
    each attempt         CLIENT  "{operation} {upstream model}"    the GenAI client inference span:
                                                                   provider, upstream model, server.address
                                                                   and port, usage, error.type, and the
                                                                   upstream's own request id

The attempt is the GenAI *client* operation of the conventions (`gen_ai.client.inference`, kind CLIENT);
the request span is the gateway *serving* one GenAI operation to its client (kind SERVER: it is the
entry point of the trace when the host has no HTTP instrumentation, and the child of the host's HTTP
server span when it has). A failed attempt ends with `error.type` and status ERROR; the attempt that
answered stays open until the call ends (a stream's last chunk), so its duration is the whole upstream
operation. A call that failed ends with `error.type` and status ERROR. A client that left (status 499) is
not the gateway's error: both spans end with status UNSET and no `error.type`.

The upstream's own request id (the one its support asks for: OpenAI's `x-request-id`, Anthropic's
`request-id`, Bedrock's `x-amzn-requestid`) is `asgi_llm_gateway.upstream.request_id` on the attempt's span
when its answer carried one, failed attempts included. The GenAI conventions have no attribute for it:
`gen_ai.response.id` is the completion's id from the body (`chatcmpl-…`), another thing, and an attribute
the conventions do not define does not belong in their `gen_ai.*` namespace, so it is in the gateway's own.
It is never a metric attribute (one value per request).

**Metrics.** Per upstream attempt, with the attempt span's attributes (a duration equals its span's):

    default: the v1.41-era names (semantic-conventions repository)
      gen_ai.client.operation.duration              histogram  s        every attempt
      gen_ai.client.operation.time_to_first_chunk   histogram  s        streams
      gen_ai.client.token.usage                     histogram  {token}  gen_ai.token.type input / output

    OTEL_SEMCONV_STABILITY_OPT_IN contains gen_ai_latest_experimental: the semantic-conventions-genai names
      gen_ai.client.inference.duration              histogram  s        every attempt
      gen_ai.client.inference.time_to_first_chunk   histogram  s        streams
      gen_ai.client.inference.usage.input_tokens    counter    {token}  gen_ai.token.modality "unknown"
      gen_ai.client.inference.usage.output_tokens   counter    {token}    (the gateway's usage objects do
      gen_ai.client.inference.usage.cache_read.input_tokens,             not split tokens by modality)
        .usage.cache_write.input_tokens, .usage.reasoning.output_tokens   counters, when non-zero
      gen_ai.client.inference.operation.input_tokens,  histogram  {token}  answered attempts
        gen_ai.client.inference.operation.output_tokens

The newer names are those of `docs/gen-ai/client-inference.md` and `gen-ai-token-metrics.md` in the
semantic-conventions-genai repository as read in December 2026 (status: Development; the repository's
changelog also shows an earlier draft with `gen_ai.client.inference.tokens` counters, which was replaced).
The span attribute for cache writes is `gen_ai.usage.cache_creation.input_tokens` by default and
`gen_ai.usage.cache_write.input_tokens` in the newer mode. In the newer mode a failed attempt also adds
0 to the token counters, as those conventions ask.

**Trace context to the upstream.** `headers(call)` returns the `traceparent` (and whatever else the
global propagator injects) for the attempt in flight, for the provider's request.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..errors import GatewayError
from ..pipeline.call import CLIENT_CLOSED_REQUEST, Call
from ..pipeline.hooks import Hooks
from ..routing import Target
from ..usage import UsageRecord
from ._facts import OPERATIONS, Progress, Tokens, attempt_error_class, error_class, progress

if TYPE_CHECKING:
    from opentelemetry.metrics import Counter, Histogram, MeterProvider
    from opentelemetry.trace import Span, TracerProvider

__all__ = [
    "LATEST_OPT_IN",
    "PROVIDER_NAMES",
    "UPSTREAM_REQUEST_ID",
    "OpenTelemetryHook",
    "latest_conventions",
]

#: The `OTEL_SEMCONV_STABILITY_OPT_IN` value that asks for the latest experimental GenAI conventions.
LATEST_OPT_IN = "gen_ai_latest_experimental"

#: The attempt span's attribute for the upstream's own request id (the gateway's namespace: see above).
UPSTREAM_REQUEST_ID = "asgi_llm_gateway.upstream.request_id"

#: Our provider kinds → the conventions' well-known `gen_ai.provider.name` values; a kind without one
#: (openai-compatible servers, echo, a host's own) is used as is, as the conventions allow.
PROVIDER_NAMES: Mapping[str, str] = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "bedrock": "aws.bedrock",
    "mistral": "mistral_ai",
    "groq": "groq",
    "deepseek": "deepseek",
    "xai": "x_ai",
}

#: The bucket boundaries both versions of the conventions advise (seconds; tokens).
_SECONDS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
_TOKENS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]

#: Request parameters → attributes, in the order the body's fields are looked up.
_PARAMETERS = (
    ("gen_ai.request.max_tokens", ("max_completion_tokens", "max_tokens", "max_output_tokens")),
    ("gen_ai.request.temperature", ("temperature",)),
    ("gen_ai.request.top_p", ("top_p",)),
)

_SCHEMA_V1_41 = "https://opentelemetry.io/schemas/1.41.0"


def latest_conventions(environ: Mapping[str, str] | None = None) -> bool:
    """Whether `OTEL_SEMCONV_STABILITY_OPT_IN` (a comma-separated list) asks for the latest GenAI names."""
    value = (os.environ if environ is None else environ).get("OTEL_SEMCONV_STABILITY_OPT_IN", "")
    return LATEST_OPT_IN in (part.strip() for part in value.split(","))


@dataclass(frozen=True, slots=True)
class _Instruments:
    duration: Histogram
    first_chunk: Histogram
    #: Default mode: the one token histogram (`gen_ai.token.type`); newer mode: None.
    token_usage: Histogram | None
    #: Newer mode: the counters by token category, and the per-operation histograms.
    counters: Mapping[str, Counter]
    per_operation: Mapping[str, Histogram]


class OpenTelemetryHook(Hooks):
    """GenAI spans and metrics for every call. `latest` overrides `OTEL_SEMCONV_STABILITY_OPT_IN`."""

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        *,
        latest: bool | None = None,
    ) -> None:
        from opentelemetry import metrics, trace

        from .. import __version__

        self.latest = latest_conventions() if latest is None else latest
        schema = None if self.latest else _SCHEMA_V1_41
        self.tracer = trace.get_tracer(
            "asgi_llm_gateway", __version__, tracer_provider=tracer_provider, schema_url=schema
        )
        meter = metrics.get_meter(
            "asgi_llm_gateway", __version__, meter_provider=meter_provider, schema_url=schema
        )
        family = "gen_ai.client.inference" if self.latest else "gen_ai.client.operation"
        duration = meter.create_histogram(
            f"{family}.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=_SECONDS,
        )
        first_chunk = meter.create_histogram(
            f"{family}.time_to_first_chunk",
            unit="s",
            description="Time to receive the first chunk of a streamed response.",
            explicit_bucket_boundaries_advisory=_SECONDS,
        )
        if self.latest:
            counters = {
                category: meter.create_counter(
                    f"gen_ai.client.inference.usage.{category}", unit="{token}", description=description
                )
                for category, description in (
                    ("input_tokens", "Input tokens used, including cached tokens."),
                    ("output_tokens", "Output tokens used, including reasoning tokens."),
                    ("cache_read.input_tokens", "Input tokens served from a provider-managed cache."),
                    ("cache_write.input_tokens", "Input tokens written to a provider-managed cache."),
                    ("reasoning.output_tokens", "Output tokens used for reasoning."),
                )
            }
            per_operation = {
                direction: meter.create_histogram(
                    f"gen_ai.client.inference.operation.{direction}_tokens",
                    unit="{token}",
                    description=f"{direction.capitalize()} tokens per inference operation.",
                    explicit_bucket_boundaries_advisory=_TOKENS,
                )
                for direction in ("input", "output")
            }
            self.instruments = _Instruments(duration, first_chunk, None, counters, per_operation)
        else:
            token_usage = meter.create_histogram(
                "gen_ai.client.token.usage",
                unit="{token}",
                description="Number of input and output tokens used.",
                explicit_bucket_boundaries_advisory=_TOKENS,
            )
            self.instruments = _Instruments(duration, first_chunk, token_usage, {}, {})

    # -- hook points ----------------------------------------------------------------------------------

    async def request_started(self, call: Call) -> None:
        from opentelemetry.trace import SpanKind

        operation = OPERATIONS.get(call.endpoint, call.endpoint)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.request.model": call.model,
            "gen_ai.request.stream": call.stream,
            **_parameters(call.body),
        }
        span = self.tracer.start_span(
            f"{operation} {call.model}",
            kind=SpanKind.SERVER,
            attributes=attributes,
            start_time=_epoch_ns(call.started),
        )
        progress(call, self).extra["request"] = span

    async def attempt_started(self, call: Call, target: Target) -> None:
        from opentelemetry.trace import SpanKind, set_span_in_context

        seen = progress(call, self)
        seen.started(target)
        request = seen.extra.get("request")
        attributes = _attempt_attributes(call, target)
        span = self.tracer.start_span(
            f"{attributes['gen_ai.operation.name']} {target.model}",
            context=set_span_in_context(request) if request is not None else None,
            kind=SpanKind.CLIENT,
            attributes={**attributes, "gen_ai.request.stream": call.stream, **_parameters(call.body)},
        )
        seen.extra["attempt"] = (span, time.perf_counter(), attributes)

    async def attempt_ended(self, call: Call, target: Target, error: GatewayError | None) -> None:
        seen = progress(call, self)
        seen.ended(call, target, error)
        if error is None:
            if seen.first_chunk is not None:
                span, started, _ = seen.extra["attempt"]
                span.set_attribute("gen_ai.response.time_to_first_chunk", time.perf_counter() - started)
            return
        span, started, attributes = seen.extra.pop("attempt")
        failed = {**attributes, "error.type": attempt_error_class(error)}
        _fail(span, failed["error.type"])
        _note_upstream_request_id(span, call)
        span.end()
        self.instruments.duration.record(time.perf_counter() - started, failed)
        if self.latest:
            self._count_tokens(Tokens(0, 0, 0, 0, 0), failed)

    async def request_ended(self, call: Call, record: UsageRecord) -> None:
        seen = progress(call, self)
        tokens = Tokens.of(record.usage)
        answered = seen.extra.pop("attempt", None)
        if answered is not None:
            self._end_attempt(call, seen, record, tokens, *answered)
        request: Span | None = seen.extra.pop("request", None)
        if request is None:
            return
        target = call.target
        request.set_attribute("http.response.status_code", record.status)
        if target is not None:
            request.set_attributes(_answer_attributes(target, tokens, self.latest))
            request.set_attribute("gen_ai.provider.name", _provider_name(target))
        failure = error_class(record)
        if failure is not None:
            _fail(request, failure)
        request.end()

    def upstream_headers(self, call: Call, target: Target) -> dict[str, str]:
        """The attempt's trace context for its upstream request (the attempts unit asks at its start)."""
        return self.headers(call)

    def headers(self, call: Call) -> dict[str, str]:
        """The trace context headers (`traceparent`, …) of `call`'s attempt in flight, for its upstream
        request; empty when there is none."""
        from opentelemetry import propagate
        from opentelemetry.trace import set_span_in_context

        found: Progress | None = call.state.get(self)
        attempt = found.extra.get("attempt") if found is not None else None
        carrier: dict[str, str] = {}
        if attempt is not None:
            propagate.inject(carrier, context=set_span_in_context(attempt[0]))
        return carrier

    # -- helpers --------------------------------------------------------------------------------------

    def _end_attempt(
        self,
        call: Call,
        seen: Progress,
        record: UsageRecord,
        tokens: Tokens | None,
        span: Span,
        started: float,
        attributes: dict[str, Any],
    ) -> None:
        """End the attempt that answered (or was abandoned when the client left) and record its metrics."""
        target = call.target
        _note_upstream_request_id(span, call)
        if record.status == CLIENT_CLOSED_REQUEST and seen.running:
            span.end()  # abandoned mid-attempt: no answer to measure
            return
        end = time.perf_counter() if call.stream or seen.answered is None else seen.answered
        answer = {**attributes, "gen_ai.response.model": target.model} if target else attributes
        failure = error_class(record)
        if failure is not None:
            answer["error.type"] = failure
            _fail(span, failure)
        if target is not None:
            span.set_attributes(_answer_attributes(target, tokens, self.latest))
        span.end(end_time=_epoch_ns(end))
        self.instruments.duration.record(end - started, answer)
        if seen.first_chunk is not None and seen.answered is not None:
            self.instruments.first_chunk.record(seen.answered - started, answer)
        if tokens is not None:
            if self.instruments.token_usage is not None:
                self.instruments.token_usage.record(tokens.input, {**answer, "gen_ai.token.type": "input"})
                self.instruments.token_usage.record(tokens.output, {**answer, "gen_ai.token.type": "output"})
            self._count_tokens(tokens, answer)

    def _count_tokens(self, tokens: Tokens, attributes: Mapping[str, Any]) -> None:
        """The newer conventions' counters and per-operation histograms (nothing in the default mode)."""
        if not self.instruments.counters:
            return
        counted = {**attributes, "gen_ai.token.modality": "unknown"}
        counters = self.instruments.counters
        counters["input_tokens"].add(tokens.input, counted)
        counters["output_tokens"].add(tokens.output, counted)
        for category, value in (
            ("cache_read.input_tokens", tokens.cached),
            ("cache_write.input_tokens", tokens.cache_write),
            ("reasoning.output_tokens", tokens.reasoning),
        ):
            if value:
                counters[category].add(value, counted)
        if "error.type" not in attributes:
            self.instruments.per_operation["input"].record(tokens.input, attributes)
            self.instruments.per_operation["output"].record(tokens.output, attributes)


def _epoch_ns(perf: float) -> int:
    """A `time.perf_counter()` reading as the wall-clock nanoseconds spans take."""
    return time.time_ns() - int((time.perf_counter() - perf) * 1e9)


def _provider_name(target: Target) -> str:
    kind = target.provider.kind
    return PROVIDER_NAMES.get(kind, kind)


def _server(target: Target) -> dict[str, Any]:
    """`server.address` and `server.port` from the provider's base URL (HTTP providers keep one)."""
    base_url = getattr(target.provider, "base_url", None)
    if not isinstance(base_url, str) or not base_url:
        return {}
    parts = urlsplit(base_url)
    if not parts.hostname:
        return {}
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return {"server.address": parts.hostname, "server.port": port}


def _attempt_attributes(call: Call, target: Target) -> dict[str, Any]:
    """The attributes an attempt's span and metrics share."""
    return {
        "gen_ai.operation.name": OPERATIONS.get(call.endpoint, call.endpoint),
        "gen_ai.provider.name": _provider_name(target),
        "gen_ai.request.model": target.model,
        **_server(target),
    }


def _parameters(body: Mapping[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for attribute, keys in _PARAMETERS:
        value = next((body[key] for key in keys if body.get(key) is not None), None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            found[attribute] = value
    return found


def _answer_attributes(target: Target, tokens: Tokens | None, latest: bool) -> dict[str, Any]:
    answer: dict[str, Any] = {"gen_ai.response.model": target.model}
    if tokens is not None:
        answer["gen_ai.usage.input_tokens"] = tokens.input
        answer["gen_ai.usage.output_tokens"] = tokens.output
        cache_write = "cache_write" if latest else "cache_creation"
        details: Sequence[tuple[str, int]] = (
            ("gen_ai.usage.cache_read.input_tokens", tokens.cached),
            (f"gen_ai.usage.{cache_write}.input_tokens", tokens.cache_write),
            ("gen_ai.usage.reasoning.output_tokens", tokens.reasoning),
        )
        answer.update((name, value) for name, value in details if value)
    return answer


def _note_upstream_request_id(span: Span, call: Call) -> None:
    """The request id the upstream gave this attempt's answer, when it gave one."""
    if call.upstream_request_id:
        span.set_attribute(UPSTREAM_REQUEST_ID, call.upstream_request_id)


def _fail(span: Span, error_type: str) -> None:
    """Mark `span` as ended in an error of class `error_type` (never the message: it may quote content)."""
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("error.type", error_type)
    span.set_status(Status(StatusCode.ERROR, error_type))
