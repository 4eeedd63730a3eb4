"""Observability through the real client: the openai SDK on loopback against a gateway with `LogHook`,
`OpenTelemetryHook` and `PrometheusHook`, in front of two fake OpenAI upstreams (the rig of test_hooks.py).

One known sequence runs once per OpenTelemetry mode (v1.41 names, and the newer ones by
`OTEL_SEMCONV_STABILITY_OPT_IN`): a plain call, a call retried then fallen back, a stream, a client that
leaves (499), an upstream's 400, and an admission refusal (429). Then the log records, the spans (the SDK's
in-memory exporter), the metrics (its in-memory reader) and Prometheus's text (scraped from `metrics_app`
over loopback and parsed) are checked against it — and for the absence of every key and of the prompt."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest

from asgi_llm_gateway import Call, Gateway, GatewayError, Hooks, Policy, Principal, Target, api_keys
from asgi_llm_gateway.observability import (
    UPSTREAM_REQUEST_ID,
    LogHook,
    OpenTelemetryHook,
    PrometheusHook,
    metrics_app,
)
from asgi_llm_gateway.providers import OpenAIProvider
from tests.e2e.test_hooks import HELLO
from tests.fakes.openai import KEY, FakeOpenAI, Fault
from tests.support.observability import needs
from tests.support.server import serve

CLIENT_KEY = "sk-client-secret-abcdef0123456789"
PROMPT = HELLO[0]["content"]
POLICY = Policy(max_attempts=2, backoff=0.01, max_backoff=0.05)
#: The calls of the sequence, in order: (what, status the client gets).
SEQUENCE = [
    ("plain", 200),
    ("fallback", 200),
    ("stream", 200),
    ("left", 499),
    ("error", 400),
    ("refused", 429),
]


class RefuseBroke(Hooks):
    """Admission refuses a call whose `user` is "broke", as a budget would."""

    async def admit(self, call: Call, targets: Sequence[Target]) -> None:
        if call.body.get("user") == "broke":
            raise GatewayError("Budget exhausted for this key.", status=429, code="budget_exceeded")


class Propagation(Hooks):
    """What `OpenTelemetryHook.headers` gives at each attempt's start (the point a provider would ask)."""

    def __init__(self, otel: OpenTelemetryHook) -> None:
        self.otel = otel
        self.traceparents: list[str | None] = []

    async def attempt_started(self, call: Call, target: Target) -> None:
        self.traceparents.append(self.otel.headers(call).get("traceparent"))


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def ended(self) -> list[logging.LogRecord]:
        return [record for record in self.records if hasattr(record, "latency_ms")]


@dataclass
class Seen:
    """What the sequence left behind."""

    latest: bool
    logs: list[logging.LogRecord]
    spans: list[Any]
    metrics: dict[str, list[Any]]
    prometheus: dict[str, Any]
    prometheus_text: str
    traceparents: list[str | None]
    #: The `traceparent` of every request the two upstreams received.
    upstream_traceparents: list[str | None]

    def requests(self) -> list[Any]:
        return sorted((s for s in self.spans if s.parent is None), key=lambda span: span.start_time)

    def children(self, parent: Any) -> list[Any]:
        found = [s for s in self.spans if s.parent is not None and s.parent.span_id == parent.context.span_id]
        return sorted(found, key=lambda span: span.start_time)


def run_sequence(url: str, a: FakeOpenAI, records: Records) -> None:
    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 5
        while len(records.ended()) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(records.ended()) == count

    with openai.OpenAI(base_url=url + "/v1", api_key=CLIENT_KEY, max_retries=0) as client:
        client.chat.completions.create(model="a/m", messages=HELLO)
        wait_for(1)
        a.faults += [Fault(503, {"error": {"message": "busy"}})] * 2
        assert client.chat.completions.create(model="ab", messages=HELLO).model == "b/m"
        wait_for(2)
        stream = client.chat.completions.create(
            model="b/m",
            messages=HELLO,
            stream=True,
            stream_options={"include_usage": True},
            max_tokens=50,
            temperature=0.5,
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == PROMPT
        wait_for(3)
        a.faults.append(Fault(None, delay=2.0))
        with pytest.raises(openai.APITimeoutError):
            client.with_options(timeout=0.3).chat.completions.create(model="a/m", messages=HELLO)
        wait_for(4)
        a.faults.append(Fault(400, {"error": {"message": "bad", "type": "invalid_request_error"}}))
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="a/m", messages=HELLO)
        wait_for(5)
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="ab", messages=HELLO, user="broke")
        wait_for(6)


@pytest.fixture(scope="module", params=[False, True], ids=["v1.41", "latest"])
def seen(request: pytest.FixtureRequest) -> Iterator[Seen]:
    needs("opentelemetry.trace", "otel")
    sdk_trace = needs("opentelemetry.sdk.trace", "test")
    sdk_metrics = needs("opentelemetry.sdk.metrics", "test")
    export = needs("opentelemetry.sdk.trace.export", "test")
    in_memory = needs("opentelemetry.sdk.trace.export.in_memory_span_exporter", "test")
    metrics_export = needs("opentelemetry.sdk.metrics.export", "test")
    parser = needs("prometheus_client.parser", "prometheus")

    exporter = in_memory.InMemorySpanExporter()
    tracer_provider = sdk_trace.TracerProvider()
    tracer_provider.add_span_processor(export.SimpleSpanProcessor(exporter))
    reader = metrics_export.InMemoryMetricReader()
    meter_provider = sdk_metrics.MeterProvider(metric_readers=[reader])
    records = Records()
    logger = logging.getLogger("asgi_llm_gateway")
    logger.addHandler(records)
    previous_level = logger.level
    logger.setLevel(logging.INFO)
    a, b = FakeOpenAI(), FakeOpenAI()
    with pytest.MonkeyPatch.context() as patch:
        if request.param:
            patch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http,gen_ai_latest_experimental")
        else:
            patch.delenv("OTEL_SEMCONV_STABILITY_OPT_IN", raising=False)
        otel = OpenTelemetryHook(tracer_provider, meter_provider)
    prometheus = PrometheusHook(models=["a/m", "ab"])
    propagation = Propagation(otel)
    try:
        with serve(a.app()) as a_url, serve(b.app()) as b_url:
            upstreams = {"a": a_url, "b": b_url}
            gateway = Gateway(
                providers={
                    name: OpenAIProvider(api_key=KEY, base_url=f"{url}/v1") for name, url in upstreams.items()
                },
                routes={"ab": ["a/m", "b/m"]},
                policy=POLICY,
                auth=api_keys({CLIENT_KEY: Principal("team-x")}),
                hooks=[
                    LogHook(logging.getLogger("asgi_llm_gateway.requests")),
                    otel,
                    prometheus,
                    RefuseBroke(),
                    propagation,
                ],
            )
            with serve(gateway) as url, serve(metrics_app(prometheus.registry)) as metrics_url:
                run_sequence(url, a, records)
                text = httpx.get(metrics_url + "/metrics").text
    finally:
        logger.removeHandler(records)
        logger.setLevel(previous_level)
    data = reader.get_metrics_data()
    points: dict[str, list[Any]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points.setdefault(metric.name, []).extend(metric.data.data_points)
    families = {family.name: family for family in parser.text_string_to_metric_families(text)}
    spans = list(exporter.get_finished_spans())
    received = [r["headers"].get("traceparent") for r in [*a.requests, *b.requests]]
    yield Seen(
        request.param, records.records, spans, points, families, text, propagation.traceparents, received
    )


def _dump(record: logging.LogRecord) -> str:
    return record.getMessage() + json.dumps(record.__dict__, default=str)


# -- logs ----------------------------------------------------------------------------------------------


def test_one_record_per_request_says_what_happened(seen: Seen) -> None:
    ended = [r for r in seen.logs if r.name == "asgi_llm_gateway.requests" and hasattr(r, "latency_ms")]
    assert [(r.status, r.model) for r in ended] == [
        (200, "a/m"), (200, "ab"), (200, "b/m"), (499, "a/m"), (400, "a/m"), (429, "ab"),
    ]  # fmt: skip
    plain, fallback, stream, left, error, refused = ended
    for record in ended:
        assert record.principal == "team-x" and record.endpoint == "chat.completions"
        assert record.request_id and record.request_id in record.getMessage()
    assert (plain.provider, plain.upstream_model, plain.attempts, plain.fallbacks) == ("a", "m", 1, 0)
    # the upstream's own request id of the answer (the fake numbers them as OpenAI's are: `x-request-id`)
    assert plain.upstream_request_id.startswith("req_upstream")
    assert fallback.upstream_request_id.startswith("req_upstream") and refused.upstream_request_id is None
    assert plain.input_tokens > 0 and plain.output_tokens > 0 and plain.ttft_ms is None
    assert (fallback.provider, fallback.target, fallback.attempts, fallback.fallbacks) == ("b", "b/m", 3, 1)
    assert stream.stream and 0 < stream.ttft_ms <= stream.latency_ms
    assert left.error_type is None and left.levelno == logging.INFO
    assert (error.error_type, error.levelno) == ("invalid_request_error", logging.WARNING)
    assert (refused.error_code, refused.attempts, refused.provider) == ("budget_exceeded", 0, None)


def test_a_failed_attempt_gets_a_record_saying_what_came_next(seen: Seen) -> None:
    failed = [r for r in seen.logs if hasattr(r, "next")]
    assert [(r.target, r.status, r.error_code, r.next) for r in failed] == [
        ("a/m", 503, "upstream_overloaded", "retry"),
        ("a/m", 503, "upstream_overloaded", "fallback"),
        ("a/m", 400, "invalid_request_error", "none"),
    ]


def test_no_log_record_holds_a_key_or_the_prompt(seen: Seen) -> None:
    mine = [r for r in seen.logs if r.name == "asgi_llm_gateway.requests"]
    assert len(mine) == 9
    for record in mine:
        text = _dump(record)
        assert KEY not in text and CLIENT_KEY not in text and CLIENT_KEY[:12] not in text
        assert PROMPT not in text
    assert not [r for r in seen.logs if "failed" in r.getMessage() and r.exc_info]  # no hook raised


# -- spans ---------------------------------------------------------------------------------------------


def test_a_span_per_request_and_a_child_per_attempt(seen: Seen) -> None:
    from opentelemetry.trace import SpanKind, StatusCode

    requests = seen.requests()
    assert [span.name for span in requests] == [
        "chat a/m",
        "chat ab",
        "chat b/m",
        "chat a/m",
        "chat a/m",
        "chat ab",
    ]
    assert {span.kind for span in requests} == {SpanKind.SERVER}
    plain, fallback, stream, left, error, refused = requests
    [answer] = seen.children(plain)
    assert (answer.name, answer.kind) == ("chat m", SpanKind.CLIENT)
    attributes = answer.attributes
    assert attributes["gen_ai.operation.name"] == "chat" and attributes["gen_ai.provider.name"] == "openai"
    assert (attributes["gen_ai.request.model"], attributes["gen_ai.response.model"]) == ("m", "m")
    assert attributes["server.address"] == "127.0.0.1" and attributes["server.port"] > 0
    assert attributes["gen_ai.usage.input_tokens"] > 0 and attributes["gen_ai.usage.output_tokens"] > 0
    assert answer.status.status_code == StatusCode.UNSET and answer.end_time <= plain.end_time
    assert answer.attributes[UPSTREAM_REQUEST_ID].startswith("req_upstream")  # the fake's own id

    tries = seen.children(fallback)
    assert [span.attributes.get("error.type") for span in tries] == ["upstream_overloaded"] * 2 + [None]
    assert [span.status.status_code for span in tries] == [StatusCode.ERROR] * 2 + [StatusCode.UNSET]
    assert tries[2].attributes["server.port"] != tries[0].attributes["server.port"]  # b answered
    upstream_ids = [span.attributes[UPSTREAM_REQUEST_ID] for span in tries]  # the 503s had one too
    assert len(set(upstream_ids)) == 3 and all(i.startswith("req_upstream") for i in upstream_ids)
    assert UPSTREAM_REQUEST_ID not in fallback.attributes
    assert fallback.attributes["gen_ai.request.model"] == "ab"
    assert (
        fallback.attributes["gen_ai.response.model"] == "m"
        and fallback.status.status_code == StatusCode.UNSET
    )

    [streamed] = seen.children(stream)
    assert streamed.attributes["gen_ai.request.stream"] is True
    assert streamed.attributes["gen_ai.response.time_to_first_chunk"] > 0
    assert streamed.attributes["gen_ai.request.max_tokens"] == 50
    assert streamed.attributes["gen_ai.request.temperature"] == 0.5
    assert streamed.attributes["gen_ai.usage.output_tokens"] > 0

    assert left.attributes["http.response.status_code"] == 499 and "error.type" not in left.attributes
    assert left.status.status_code == StatusCode.UNSET
    assert [span.status.status_code for span in seen.children(left)] == [StatusCode.UNSET]  # ended, too
    assert [UPSTREAM_REQUEST_ID in span.attributes for span in seen.children(left)] == [False]  # no answer

    assert error.attributes["error.type"] == "invalid_request_error"
    assert error.status.status_code == StatusCode.ERROR

    assert seen.children(refused) == []
    assert refused.attributes["error.type"] == "budget_exceeded"


def test_headers_carry_the_trace_context_of_the_attempt_in_flight(seen: Seen) -> None:
    """What `OpenTelemetryHook.headers(call)` gives for the upstream request: a W3C traceparent naming the
    attempt's span, for every attempt; and every request the upstreams received carried exactly its
    attempt's (the hooks' `upstream_headers`, read by the providers when they build the request)."""
    attempts = sorted((s for s in seen.spans if s.parent is not None), key=lambda span: span.start_time)
    expected = [
        f"00-{s.context.trace_id:032x}-{s.context.span_id:016x}-{s.context.trace_flags:02x}" for s in attempts
    ]
    assert seen.traceparents == expected
    assert sorted(seen.upstream_traceparents) == sorted(expected)  # type: ignore[type-var]


def test_no_span_holds_a_key_or_the_prompt(seen: Seen) -> None:
    text = json.dumps([dict(span.attributes) for span in seen.spans], default=str)
    assert KEY not in text and CLIENT_KEY not in text and PROMPT not in text


# -- metrics -------------------------------------------------------------------------------------------


def test_genai_metrics_in_the_mode_asked_for(seen: Seen) -> None:
    family = "gen_ai.client.inference" if seen.latest else "gen_ai.client.operation"
    durations = seen.metrics[f"{family}.duration"]
    # attempts measured: plain 1, fallback 3, stream 1, error 1; the abandoned one has no duration
    assert sum(point.count for point in durations) == 6
    failed = [p for p in durations if "error.type" in p.attributes]
    assert sorted((p.attributes["error.type"], p.count) for p in failed) == [
        ("invalid_request_error", 1),
        ("upstream_overloaded", 2),
    ]
    [first_chunk] = seen.metrics[f"{family}.time_to_first_chunk"]
    assert first_chunk.count == 1 and first_chunk.attributes["gen_ai.request.model"] == "m"
    answered = [p for p in durations if "error.type" not in p.attributes]
    assert {p.attributes["gen_ai.provider.name"] for p in answered} == {"openai"}
    input_total = sum(
        span.attributes.get("gen_ai.usage.input_tokens", 0) for span in seen.spans if span.parent
    )
    if seen.latest:
        assert "gen_ai.client.token.usage" not in seen.metrics
        inputs = seen.metrics["gen_ai.client.inference.usage.input_tokens"]
        assert sum(p.value for p in inputs) == input_total
        assert {p.attributes["gen_ai.token.modality"] for p in inputs} == {"unknown"}
        assert sum(p.count for p in seen.metrics["gen_ai.client.inference.operation.output_tokens"]) == 3
    else:
        assert not [name for name in seen.metrics if name.startswith("gen_ai.client.inference")]
        usage = seen.metrics["gen_ai.client.token.usage"]
        assert sum(p.sum for p in usage if p.attributes["gen_ai.token.type"] == "input") == input_total
        assert sum(p.count for p in usage if p.attributes["gen_ai.token.type"] == "output") == 3


# -- Prometheus ----------------------------------------------------------------------------------------


def _samples(seen: Seen, family: str, name: str | None = None) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for sample in seen.prometheus[family].samples
        if sample.name == (name or family + "_total")
    }


def test_prometheus_counts_the_sequence(seen: Seen) -> None:
    requests = _samples(seen, "llm_gateway_requests")
    by = {(dict(k)["model"], dict(k)["provider"], dict(k)["status_class"]): v for k, v in requests.items()}
    assert by == {
        ("a/m", "a", "2xx"): 1,
        ("ab", "b", "2xx"): 1,
        ("other", "b", "2xx"): 1,  # b/m is not among the labelled models
        ("a/m", "a", "4xx"): 2,  # the 499 and the 400
        ("ab", "none", "4xx"): 1,
    }
    errors = {dict(k)["type"]: v for k, v in _samples(seen, "llm_gateway_errors").items()}
    assert errors == {"client_closed_request": 1, "invalid_request_error": 1, "rate_limit_exceeded": 1}
    assert _samples(seen, "llm_gateway_retries") == {(("model", "ab"), ("provider", "a")): 1}
    assert _samples(seen, "llm_gateway_fallbacks") == {(("model", "ab"), ("provider", "a")): 1}
    assert _samples(seen, "llm_gateway_limit_rejections") == {
        (("code", "budget_exceeded"), ("endpoint", "chat.completions")): 1
    }
    upstream = {dict(k)["type"]: v for k, v in _samples(seen, "llm_gateway_upstream_errors").items()}
    assert upstream == {"server_error": 2, "invalid_request_error": 1}
    assert _samples(seen, "llm_gateway_streams_in_flight", "llm_gateway_streams_in_flight") == {(): 0}
    ttft = _samples(
        seen, "llm_gateway_time_to_first_token_seconds", "llm_gateway_time_to_first_token_seconds_count"
    )
    assert ttft == {(("model", "other"), ("provider", "b")): 1}
    latency = _samples(
        seen, "llm_gateway_request_duration_seconds", "llm_gateway_request_duration_seconds_count"
    )
    assert sum(latency.values()) == len(SEQUENCE)
    tokens = {
        (dict(k)["direction"], dict(k)["model"]): v for k, v in _samples(seen, "llm_gateway_tokens").items()
    }
    assert set(tokens) == {(d, m) for d in ("input", "output") for m in ("a/m", "ab", "other")}
    assert all(value > 0 for value in tokens.values())
    assert KEY not in seen.prometheus_text and CLIENT_KEY not in seen.prometheus_text
