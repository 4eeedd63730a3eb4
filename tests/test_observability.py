"""The observability hooks driven directly, one hook point at a time: what each records, that nothing secret
or content leaks, the provider and operation names, the bounded Prometheus labels, the scrape app, and
that importing `asgi_llm_gateway.observability` imports neither optional package."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from asgi_llm_gateway import Call, Gateway, GatewayError, Policy, Principal, Target, UsageRecord
from asgi_llm_gateway.observability import (
    OTHER,
    UPSTREAM_REQUEST_ID,
    LogHook,
    OpenTelemetryHook,
    PrometheusHook,
    configured_models,
    latest_conventions,
    metrics_app,
)
from asgi_llm_gateway.observability._facts import Tokens, principal_name
from asgi_llm_gateway.providers import AnthropicProvider, AzureOpenAIProvider, OpenAIProvider
from tests.support.fresh import printed_by_fresh_python
from tests.support.observability import needs

pytestmark = pytest.mark.anyio

PROVIDER_KEY = "sk-provider-secret-0123456789"
PROMPT = "tell me the secret plan"
USAGE = {
    "prompt_tokens": 120,
    "completion_tokens": 30,
    "total_tokens": 150,
    "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 8},
    "completion_tokens_details": {"reasoning_tokens": 12},
}


def _call(model: str = "smart", stream: bool = False, **body: Any) -> Call:
    request = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "stream": stream, **body}
    return Call("req-1", "chat.completions", Principal("alice"), model, request)


def _target(provider: Any = None, name: str = "openai", model: str = "gpt-4o") -> Target:
    provider = provider or OpenAIProvider(api_key=PROVIDER_KEY, base_url="https://api.example.test/v1")
    return Target(name, provider, model)


async def _answered(hook: Any, call: Call, target: Target, *failures: GatewayError) -> UsageRecord:
    """Drive `hook` through a call: one failed attempt per failure on `target`, then one that answers."""
    await hook.request_started(call)
    for failure in failures:
        call.target, call.attempts = target, call.attempts + 1
        await hook.attempt_started(call, target)
        await hook.attempt_ended(call, target, failure)
    call.target, call.attempts = target, call.attempts + 1
    await hook.attempt_started(call, target)
    await hook.attempt_ended(call, target, None)
    call.usage = USAGE
    record = call.record(200)
    await hook.request_ended(call, record)
    return record


def test_tokens_from_an_openai_usage_object() -> None:
    assert Tokens.of(USAGE) == Tokens(input=120, output=30, cached=100, cache_write=8, reasoning=12)
    assert Tokens.of({"prompt_tokens": 5, "completion_tokens": None}) == Tokens(5, 0, 0, 0, 0)
    assert Tokens.of(None) is None
    nonsense = {
        "prompt_tokens": True,
        "completion_tokens": 2.5,
        "prompt_tokens_details": {"cached_tokens": "3"},
    }
    assert Tokens.of(nonsense) == Tokens(0, 0, 0, 0, 0)


def test_a_principal_is_named_never_shown() -> None:
    assert principal_name(Principal("alice")) == "alice"
    assert principal_name("sk-abcdefghijklmnop") == "[REDACTED]"
    assert principal_name({"key": "sk-abcdefghijklmnop"}) is None  # an unknown object is never repr'd
    assert principal_name(None) is None


def test_the_opt_in_is_one_value_of_a_comma_separated_list() -> None:
    assert latest_conventions({"OTEL_SEMCONV_STABILITY_OPT_IN": "http, gen_ai_latest_experimental"})
    assert not latest_conventions({"OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental_not"})
    assert not latest_conventions({})


def test_importing_the_package_imports_neither_optional_package() -> None:
    code = (
        "import sys, asgi_llm_gateway.observability\n"
        "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'prometheus_client'))))"
    )
    assert printed_by_fresh_python(code) == ["[]"]


# -- logs ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("include_content", [False, True], ids=["default", "include_content"])
async def test_log_records_without_content_unless_asked(
    caplog: pytest.LogCaptureFixture, include_content: bool
) -> None:
    logger = logging.getLogger("test.observability")
    caplog.set_level(logging.INFO, logger="test.observability")
    hook = LogHook(logger, include_content=include_content)
    leak = GatewayError(
        f"upstream said: bad key {PROVIDER_KEY} for {PROMPT!r}", status=503, code="overloaded"
    )
    await _answered(hook, _call(cost=None), _target(), leak)
    failed, ended = caplog.records
    assert (failed.levelno, failed.next, failed.attempt, failed.error_code) == (
        logging.WARNING,
        "retry",
        1,
        "overloaded",
    )
    assert ended.input_tokens == 120 and ended.cached_tokens == 100 and ended.reasoning_tokens == 12
    assert (ended.attempts, ended.fallbacks, ended.principal) == (2, 0, "alice")
    text = "".join(
        record.getMessage() + json.dumps(record.__dict__, default=str) for record in caplog.records
    )
    assert PROVIDER_KEY not in text
    assert (PROMPT in text) is include_content
    if include_content:
        assert failed.error_message == f"upstream said: bad key [REDACTED] for {PROMPT!r}"


async def test_a_logger_keeping_only_warnings_gets_the_failures_and_nothing_else(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The request record is built only when the logger takes its level: a host keeping WARNING and above
    still gets every failed attempt and failed call, and pays nothing for the rest."""
    logger = logging.getLogger("test.observability.warnings")
    caplog.set_level(logging.WARNING, logger="test.observability.warnings")
    hook = LogHook(logger)
    await _answered(hook, _call(), _target(), GatewayError("busy", status=503, code="overloaded"))
    [failed_attempt] = caplog.records
    assert failed_attempt.next == "retry"
    caplog.clear()
    call, target = _call(), _target()
    await hook.request_started(call)
    call.target, call.attempts = target, 1
    await hook.attempt_started(call, target)
    await hook.attempt_ended(call, target, GatewayError("bad", status=400))
    error = GatewayError("bad", status=400)
    await hook.request_ended(call, call.record(400, error))
    assert [(r.levelno, getattr(r, "next", None)) for r in caplog.records] == [
        (logging.WARNING, "none"),
        (logging.WARNING, None),
    ]
    assert caplog.records[1].status == 400


def test_json_lines_are_one_object_per_record_with_the_extra_fields() -> None:
    """The runner's formatter: time, level, logger, message, then the record's `extra` fields in order; text
    as UTF-8 (not escaped); a value JSON has no form for written as its str(), never a lost record."""
    from decimal import Decimal

    from asgi_llm_gateway.observability.runner import JsonLines

    record = logging.makeLogRecord(
        {
            "name": "asgi_llm_gateway.requests",
            "levelname": "INFO",
            "msg": "request %s → %s",
            "args": ("req-1", "openai/gpt-4o"),
            "request_id": "req-1",
            "latency_ms": 3.5,
            "ttft_ms": None,
            "cost": Decimal("0.0012"),
        }
    )
    line = JsonLines().format(record)
    assert "\n" not in line and "→" in line
    parsed = json.loads(line)
    assert list(parsed)[:4] == ["time", "level", "logger", "message"]
    assert parsed["message"] == "request req-1 → openai/gpt-4o"
    assert {key: parsed[key] for key in list(parsed)[4:]} == {
        "request_id": "req-1",
        "latency_ms": 3.5,
        "ttft_ms": None,
        "cost": "0.0012",
    }


async def test_a_stream_logs_its_time_to_first_chunk(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="asgi_llm_gateway.requests")
    await _answered(LogHook(), _call(stream=True), _target())
    [ended] = caplog.records
    assert ended.ttft_ms is not None and ended.ttft_ms <= ended.latency_ms
    assert "first chunk after" in ended.getMessage()


async def test_a_cost_on_the_record_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    from decimal import Decimal

    caplog.set_level(logging.INFO, logger="asgi_llm_gateway.requests")
    hook, call, target = LogHook(), _call(), _target()
    call.target, call.attempts, call.usage = target, 1, USAGE
    await hook.request_ended(call, call.record(200, cost=Decimal("0.0042")))
    assert caplog.records[0].cost == "0.0042"


# -- OpenTelemetry -------------------------------------------------------------------------------------


class Otel:
    def __init__(self, latest: bool) -> None:
        sdk_trace = needs("opentelemetry.sdk.trace", "test")
        export = needs("opentelemetry.sdk.trace.export", "test")
        in_memory = needs("opentelemetry.sdk.trace.export.in_memory_span_exporter", "test")
        sdk_metrics = needs("opentelemetry.sdk.metrics", "test")
        metrics_export = needs("opentelemetry.sdk.metrics.export", "test")
        self.exporter = in_memory.InMemorySpanExporter()
        tracer_provider = sdk_trace.TracerProvider()
        tracer_provider.add_span_processor(export.SimpleSpanProcessor(self.exporter))
        self.reader = metrics_export.InMemoryMetricReader()
        self.hook = OpenTelemetryHook(
            tracer_provider, sdk_metrics.MeterProvider(metric_readers=[self.reader]), latest=latest
        )

    def spans(self) -> dict[str, Any]:
        return {span.name: span for span in self.exporter.get_finished_spans()}

    def metrics(self) -> dict[str, list[Any]]:
        found: dict[str, list[Any]] = {}
        for resource in self.reader.get_metrics_data().resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found


@pytest.fixture(params=[False, True], ids=["v1.41", "latest"])
def otel(request: pytest.FixtureRequest) -> Iterator[Otel]:
    needs("opentelemetry.trace", "otel")
    yield Otel(request.param)


@pytest.mark.parametrize(
    ("provider", "name", "address", "port"),
    [
        (OpenAIProvider(api_key=PROVIDER_KEY), "openai", "api.openai.com", 443),
        (
            AzureOpenAIProvider(api_key="k", base_url="https://r.openai.azure.com"),
            "azure.ai.openai",
            "r.openai.azure.com",
            443,
        ),
        (AnthropicProvider(api_key="k", base_url="http://10.0.0.5:8080"), "anthropic", "10.0.0.5", 8080),
    ],
    ids=["openai", "azure", "anthropic"],
)
async def test_attempt_spans_name_the_provider_and_its_server(
    otel: Otel, provider: Any, name: str, address: str, port: int
) -> None:
    await _answered(
        otel.hook, _call(max_completion_tokens=64, top_p=0.9), _target(provider, model="up-model")
    )
    spans = otel.spans()
    attempt, request = spans["chat up-model"], spans["chat smart"]
    assert attempt.parent.span_id == request.context.span_id
    assert attempt.attributes["gen_ai.provider.name"] == name
    assert (attempt.attributes["server.address"], attempt.attributes["server.port"]) == (address, port)
    assert (
        attempt.attributes["gen_ai.request.max_tokens"] == 64
        and attempt.attributes["gen_ai.request.top_p"] == 0.9
    )
    assert request.attributes["gen_ai.provider.name"] == name


async def test_usage_attributes_and_token_metrics_by_mode(otel: Otel) -> None:
    await _answered(otel.hook, _call(), _target())
    attempt = otel.spans()["chat gpt-4o"]
    cache_write = "cache_write" if otel.hook.latest else "cache_creation"
    assert attempt.attributes["gen_ai.usage.input_tokens"] == 120
    assert attempt.attributes["gen_ai.usage.cache_read.input_tokens"] == 100
    assert attempt.attributes[f"gen_ai.usage.{cache_write}.input_tokens"] == 8
    assert attempt.attributes["gen_ai.usage.reasoning.output_tokens"] == 12
    metrics = otel.metrics()
    if otel.hook.latest:
        sums = {name: sum(p.value for p in points) for name, points in metrics.items() if ".usage." in name}
        assert sums == {
            "gen_ai.client.inference.usage.input_tokens": 120,
            "gen_ai.client.inference.usage.output_tokens": 30,
            "gen_ai.client.inference.usage.cache_read.input_tokens": 100,
            "gen_ai.client.inference.usage.cache_write.input_tokens": 8,
            "gen_ai.client.inference.usage.reasoning.output_tokens": 12,
        }
        assert [p.sum for p in metrics["gen_ai.client.inference.operation.input_tokens"]] == [120]
    else:
        usage = {p.attributes["gen_ai.token.type"]: p.sum for p in metrics["gen_ai.client.token.usage"]}
        assert usage == {"input": 120, "output": 30}
        assert not [name for name in metrics if "inference" in name]


async def test_each_attempt_span_names_the_upstreams_request_id_and_no_metric_does(otel: Otel) -> None:
    """What the attempts unit recorded for each attempt (`Call.upstream_request_id`): a failed attempt's
    answer had one, a connection that never answered none, the answer its own."""
    call, target = _call(), _target()
    await otel.hook.request_started(call)
    for request_id, failure in (
        ("req_up_1", GatewayError("busy", status=503)),
        (None, GatewayError("refused", status=502, code="upstream_connection_error")),
    ):
        await otel.hook.attempt_started(call, target)
        call.target, call.attempts, call.upstream_request_id = target, call.attempts + 1, request_id
        await otel.hook.attempt_ended(call, target, failure)
    await otel.hook.attempt_started(call, target)
    call.attempts, call.upstream_request_id = call.attempts + 1, "req_up_3"
    await otel.hook.attempt_ended(call, target, None)
    call.usage = USAGE
    await otel.hook.request_ended(call, call.record(200))
    spans = sorted(otel.exporter.get_finished_spans(), key=lambda span: span.start_time)
    request, *attempts = spans
    assert [span.attributes.get(UPSTREAM_REQUEST_ID) for span in attempts] == ["req_up_1", None, "req_up_3"]
    assert UPSTREAM_REQUEST_ID not in request.attributes  # the attempt's, not the call's
    for points in otel.metrics().values():
        assert not [point for point in points if UPSTREAM_REQUEST_ID in point.attributes]


async def test_headers_are_empty_outside_an_attempt(otel: Otel) -> None:
    call, target = _call(), _target()
    await otel.hook.request_started(call)
    assert otel.hook.headers(call) == {}
    await otel.hook.attempt_started(call, target)
    assert otel.hook.headers(call)["traceparent"].startswith("00-")
    await otel.hook.attempt_ended(call, target, GatewayError("busy", status=503))
    assert otel.hook.headers(call) == {}


# -- Prometheus ----------------------------------------------------------------------------------------


def test_model_labels_stay_bounded() -> None:
    needs("prometheus_client", "prometheus")
    learning = PrometheusHook(max_models=2)
    assert [learning.model_label(m) for m in ("a", "b", "c", "a")] == ["a", "b", OTHER, "a"]
    fixed = PrometheusHook(models=["smart"])
    assert [fixed.model_label(m) for m in ("smart", "anything")] == ["smart", OTHER]


async def test_calls_counted_before_watch_keep_their_labels_and_later_ones_get_the_watched_ones() -> None:
    """`watch` after some calls (the series a kind of call touches are remembered by their labels): the calls
    before it stay where they were counted, the calls after it are labelled by the configured models; random
    model names never add series."""
    parser = needs("prometheus_client.parser", "prometheus")
    hook = PrometheusHook(max_models=1)
    for model in ("smart", "smart", "random-1", "random-2"):
        await _answered(hook, _call(model=model), _target())
    hook.watch(Gateway(providers={"openai": OpenAIProvider(api_key="k")}, routes={"fast": ["openai/gpt-4o"]}))
    for model in ("fast", "smart", "random-3"):
        await _answered(hook, _call(model=model), _target())
    [family] = [
        f
        for f in parser.text_string_to_metric_families(prometheus_text(hook))
        if f.name == "llm_gateway_requests"
    ]
    counted = {s.labels["model"]: s.value for s in family.samples if s.name == "llm_gateway_requests_total"}
    assert counted == {"smart": 2, OTHER: 4, "fast": 1}


def test_configured_models_are_routes_their_targets_and_declared_models() -> None:
    gateway = Gateway(
        providers={
            "o": OpenAIProvider(api_key="k", models=["gpt-4o", "gpt-4o-mini"]),
            "x": OpenAIProvider(api_key="k", base_url="http://127.0.0.1:1/v1"),
        },
        routes={"smart": ["o/gpt-4o", "x/llama"]},
    )
    assert configured_models(gateway) == {"smart", "o/gpt-4o", "x/llama", "o/gpt-4o-mini"}


async def test_metrics_app_serves_text_openmetrics_and_refuses_posts() -> None:
    needs("prometheus_client", "prometheus")
    hook = PrometheusHook(prefix="gw")
    await _answered(hook, _call(stream=True), _target())
    transport = httpx.ASGITransport(app=metrics_app(hook.registry))
    async with httpx.AsyncClient(transport=transport, base_url="http://metrics") as client:
        text = await client.get("/metrics")
        assert text.headers["content-type"].startswith("text/plain; version=")
        assert 'gw_tokens_total{direction="input",model="smart",provider="openai"} 120.0' in text.text
        assert "gw_streams_in_flight 0.0" in text.text
        openmetrics = await client.get("/metrics", headers={"accept": "application/openmetrics-text"})
        assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
        assert openmetrics.text.endswith("# EOF\n")
        assert (await client.post("/metrics")).status_code == 405
        head = await client.head("/metrics")
        assert head.status_code == 200 and head.content == b""


def test_watch_labels_the_configured_models_and_exports_cooldowns() -> None:
    parser = needs("prometheus_client.parser", "prometheus")
    policy = Policy(cooldown_after=1, cooldown=60)
    gateway = Gateway(
        providers={"o": OpenAIProvider(api_key="k"), "x": OpenAIProvider(api_key="k", models=["llama"])},
        routes={"smart": ["o/gpt-4o", "x/llama"]},
        policy=policy,
    )
    hook = PrometheusHook()
    hook.watch(gateway)
    assert [hook.model_label(m) for m in ("smart", "x/llama", "o/gpt-5")] == ["smart", "x/llama", OTHER]
    gateway.health.failed("o/gpt-4o", policy, time.monotonic())
    text = prometheus_text(hook)
    [family] = [
        f for f in parser.text_string_to_metric_families(text) if f.name == "llm_gateway_targets_cooling_down"
    ]
    assert {sample.labels["target"]: sample.value for sample in family.samples} == {
        "o/gpt-4o": 1.0,
        "x/llama": 0.0,
    }


def prometheus_text(hook: PrometheusHook) -> str:
    from prometheus_client import generate_latest

    return generate_latest(hook.registry).decode()
