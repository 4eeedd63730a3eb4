"""The gateway as the bench runs it: one provider pointed at the mock upstream, uvicorn, uvloop, httptools.

Run: python bench/gateway_app.py --provider openai --upstream http://127.0.0.1:9001 --port 9003
Exit status 3 (with the reason on stderr) when the provider cannot be built, so the runner can skip its row.

`--hooks logs,metrics,otel` (or the BENCH_HOOKS variable, which reaches the gateways that `compare.py` and
`run.py` start) turns observability on as the runner's switches do: `logs` is `--log-requests` (JSON lines on
stderr), `metrics` is `--metrics` (`PrometheusHook` watching the gateway, the scrape endpoint mounted beside
it), `otel` is `OpenTelemetryHook` on the SDK's providers with a batch span processor and a metric reader
whose exports go nowhere (what `--otel` does short of the network).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

#: provider name -> the model string clients send
MODELS = {
    "openai": "openai/gpt-bench",
    "anthropic": "anthropic/claude-bench",
    "gemini": "gemini/gemini-bench",
    "bedrock": "bedrock/bench.model-v1:0",
}

CANT_BUILD = 3

#: What `--hooks` / BENCH_HOOKS can name.
HOOKS = ("logs", "metrics", "otel")


def build_provider(name: str, upstream: str) -> Any:
    """The provider `name`, talking to the mock at `upstream` with fake credentials."""
    if name == "openai":
        from asgi_llm_gateway.providers.openai import OpenAIProvider

        return OpenAIProvider(api_key="k", base_url=upstream + "/v1")
    if name == "anthropic":
        from asgi_llm_gateway.providers.anthropic import AnthropicProvider

        return AnthropicProvider(api_key="k", base_url=upstream)
    if name == "gemini":
        from asgi_llm_gateway.providers.gemini import GeminiProvider

        return GeminiProvider(api_key="k", base_url=upstream)
    if name == "bedrock":
        from asgi_llm_gateway.providers.bedrock import BedrockProvider

        # SigV4 with static keys: the signing cost is part of what a real Bedrock user pays per request.
        return BedrockProvider(
            base_url=upstream,
            region="us-east-1",
            aws_access_key_id="AKIDBENCHMARK0000000",
            aws_secret_access_key="bench-secret-key",
        )
    raise ValueError(f"unknown provider {name!r}")


def build_gateway(name: str, upstream: str) -> Any:
    from asgi_llm_gateway import Gateway

    return Gateway(providers={name: build_provider(name, upstream)})


def build_app(name: str, upstream: str, hooks: Sequence[str]) -> Any:
    """The gateway with the observability `hooks` on, served as the runner serves it."""
    if not hooks:
        return build_gateway(name, upstream)
    from asgi_llm_gateway import Gateway
    from asgi_llm_gateway.observability.runner import Observability, observe

    observed = observe(
        Observability(logs="logs" in hooks, metrics="/metrics" if "metrics" in hooks else None)
    )
    if "otel" in hooks:
        observed.hooks.append(_otel_hook())
    gateway = Gateway(providers={name: build_provider(name, upstream)}, hooks=observed.hooks)
    return observed.app(gateway)


def _otel_hook() -> Any:
    """`OpenTelemetryHook` on SDK providers that do all of an export's work but the sending."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from asgi_llm_gateway.observability import OpenTelemetryHook

    class Discard(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Discard()))
    return OpenTelemetryHook(tracer_provider, MeterProvider(metric_readers=[InMemoryMetricReader()]))


def hook_names(value: str) -> list[str]:
    """`logs,metrics` → ["logs", "metrics"]; an unknown name is an error."""
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in HOOKS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown hooks {unknown}; choose from {', '.join(HOOKS)}")
    return names


def _watch_gc() -> None:
    """Count collections, their time and what they freed, per generation; print it as one line at exit."""
    import atexit
    import gc
    import json
    import time

    stats = {gen: {"collections": 0, "seconds": 0.0, "collected": 0} for gen in range(3)}
    started: list[float] = []

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[:] = [time.perf_counter()]
        elif started:
            entry = stats[info["generation"]]
            entry["collections"] += 1
            entry["seconds"] += time.perf_counter() - started[0]
            entry["collected"] += info["collected"]

    gc.callbacks.append(callback)
    atexit.register(lambda: print("GCSTATS " + json.dumps(stats), file=sys.stderr, flush=True))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--provider", choices=sorted(MODELS), default="openai")
    parser.add_argument("--upstream", required=True, help="the mock upstream's origin")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9003)
    parser.add_argument(
        "--runner-gc",
        action="store_true",
        help="set the garbage collector up as the runner does (asgi_llm_gateway.cli._tune_gc: start-up heap "
        "frozen, a higher young-generation threshold) before serving",
    )
    parser.add_argument(
        "--gc-stats", action="store_true", help="on exit, print how often and how long the collector ran"
    )
    parser.add_argument("--cprofile", metavar="FILE", help="run under cProfile and write the stats to FILE")
    parser.add_argument(
        "--hooks",
        type=hook_names,
        default=hook_names(os.environ.get("BENCH_HOOKS", "")),
        help=f"comma-separated observability to turn on: {', '.join(HOOKS)} (default: $BENCH_HOOKS, or none)",
    )
    args = parser.parse_args()
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")  # never probe instance metadata
    try:
        app = build_app(args.provider, args.upstream.rstrip("/"), args.hooks)
    except Exception as exc:
        print(f"cannot build provider {args.provider!r}: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(CANT_BUILD)

    import uvicorn

    if args.gc_stats:
        _watch_gc()
    if args.runner_gc:
        from asgi_llm_gateway.cli import _tune_gc

        _tune_gc()

    def serve() -> None:
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            loop="uvloop",
            http="httptools",
            log_level="warning",
            access_log=False,
        )

    if not args.cprofile:
        serve()
        return
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        serve()
    finally:
        profiler.disable()
        profiler.dump_stats(args.cprofile)


if __name__ == "__main__":
    main()
