"""The standalone runner: `asgi-llm-gateway --config gateway.toml --host 0.0.0.0 --port 8000 --workers 4`.

Its production behaviour is uvicorn's, set up here (docs/deployment.md tells the whole story):

- `--workers N` (N > 1) runs uvicorn's process manager. Each worker loads the config itself (the file's path
  travels in ASGI_LLM_GATEWAY_CONFIG), so SIGHUP to the manager replaces the workers one at a time with the
  file re-read: with uvicorn >= 0.51 a new worker is serving before an old one retires, and one that cannot
  start (a broken file) aborts the restart with the old workers still serving. A single process has no
  reload: a config change means a restart.
- SIGTERM or SIGINT: stop accepting connections, let in-flight requests (streams included) run for up to
  `--graceful-timeout` seconds, cancel what is still running, then close the upstream connections.
- Access logs are on unless `--no-access-log`. `--forwarded-allow-ips` names the proxies whose
  X-Forwarded-For/-Proto headers are believed (default: $FORWARDED_ALLOW_IPS, else 127.0.0.1 only).
- `--check` loads the config and exits: 0 when it is good, 2 and the problem otherwise. It does not connect
  to Redis: a `[response_store]` of type "redis" and `[limits]` with backend "redis" are checked for shape,
  not reachability.
- The start-up line names the limits in force (rules by kind, backend, fail-open or closed; a Redis URL
  without its password); limits in memory with `--workers N` are per worker, which it warns about.
- The gateway closes its response store (a Redis store's connection pool) when uvicorn shuts down its
  lifespan, in every worker.
- `--log-requests`, `--metrics [PATH]` and `--otel` (or the file's `[observability]` table; the flags win)
  switch on request logs (JSON lines on stderr), a Prometheus scrape endpoint beside the gateway, and
  OpenTelemetry traces and metrics over OTLP/HTTP (see `observability.runner`). The start-up line names
  what is on. With `--workers N` the flags travel to the workers in ASGI_LLM_GATEWAY_OBSERVABILITY; metrics
  need one worker (each would answer a scrape with its own counts).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from .config import (
    KEY_VARIABLES,
    RESPONSE_STORE_VARIABLE,
    ConfigError,
    GatewayConfig,
    describe_limits,
    describe_response_store,
    from_environment,
    load_config,
)
from .gateway import Gateway
from .limits import MemoryLimiter
from .mount import ASGIApp
from .observability.runner import (
    DEFAULT_METRICS_PATH,
    Observability,
    ObservabilityError,
    check_metrics_path,
    observe,
    require_packages,
)

__all__ = ["CONFIG_VARIABLE", "OBSERVABILITY_VARIABLE", "app_from_environment", "main"]

#: The config file's path when `--config` is not given; also how the path reaches worker processes.
CONFIG_VARIABLE = "ASGI_LLM_GATEWAY_CONFIG"
#: The observability flags given on the command line (JSON), on their way to worker processes.
OBSERVABILITY_VARIABLE = "ASGI_LLM_GATEWAY_OBSERVABILITY"
DEFAULT_GRACEFUL_TIMEOUT = 30
#: The runner's young-generation threshold (CPython's default is 700): see `_tune_gc`. bench/floor_proxy.py
#: repeats it (the floor must not import the gateway): change both.
GC_GEN0_THRESHOLD = 5000
_LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def _load(path: str | None) -> GatewayConfig:
    return load_config(path) if path else from_environment()


def app_from_environment() -> ASGIApp:
    """The app factory each worker calls (`--workers N`); the config path and the observability flags travel
    in the environment.

    A bad file ends the worker with one line instead of a traceback: on SIGHUP the process manager then keeps
    the old workers serving.
    """
    try:
        config = _load(os.environ.get(CONFIG_VARIABLE) or None)
        flags = json.loads(os.environ.get(OBSERVABILITY_VARIABLE) or "{}")
        app = _app(config, config.observability.over(flags))
    except (ConfigError, ObservabilityError) as exc:
        print(f"asgi-llm-gateway: config error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    _tune_gc()
    return app


def _app(config: GatewayConfig, settings: Observability) -> ASGIApp:
    """The gateway with what `settings` switch on: its hooks, and the scrape endpoint beside it."""
    observed = observe(settings)
    return observed.app(config.gateway(observed.hooks))


def _tune_gc() -> None:
    """Set the garbage collector up for a long-lived server process: what start-up built is frozen out of its
    sight, and the youngest generation is collected every `GC_GEN0_THRESHOLD` allocations instead of 700.

    Under load the objects of the calls in flight survive the young collections they meet: at the default
    threshold they were promoted in bulk, and full collections came every few hundred requests, each scanning
    the whole heap (10-25 ms; 15-18% of the process's CPU at c=64 in bench/). Freezing takes the start-up heap
    out of those scans, the higher threshold promotes far fewer objects; the cost is the few cycles left to
    wait a little longer (about 1 MB in bench/soak.py). Only the runner does this: an embedded gateway leaves
    the host's interpreter settings alone (docs/deployment.md shows how a host can do the same).
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, older, oldest)


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _seconds(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def _metrics_path(text: str) -> str:
    problem = check_metrics_path(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def _parser() -> argparse.ArgumentParser:
    served = "; ".join(f"{kind} ({' or '.join(variables)})" for kind, variables in KEY_VARIABLES.items())
    parser = argparse.ArgumentParser(
        prog="asgi-llm-gateway",
        description="Serve an OpenAI-compatible LLM gateway.",
        epilog=f"Without --config the file named by ${CONFIG_VARIABLE} is used; without either, the echo "
        f"provider plus every provider whose API key variable is set: {served}; /v1/responses state is kept "
        f"in memory, or in the Redis at ${RESPONSE_STORE_VARIABLE} (redis://…) when it is set.",
    )
    parser.add_argument("--config", metavar="FILE", help="TOML config file")
    parser.add_argument(
        "--check", action="store_true", help="load the config, report, and exit (0 good, 2 bad)"
    )
    parser.add_argument("--host", help="interface to listen on (default: [server] host, else 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default: [server] port, else 8000)")
    parser.add_argument("--workers", type=_count, default=1, metavar="N", help="worker processes (default 1)")
    parser.add_argument(
        "--graceful-timeout",
        type=_seconds,
        default=DEFAULT_GRACEFUL_TIMEOUT,
        metavar="SECONDS",
        help="on SIGTERM, how long in-flight requests may run before they are cut "
        f"(default {DEFAULT_GRACEFUL_TIMEOUT})",
    )
    parser.add_argument(
        "--timeout-keep-alive",
        type=_seconds,
        default=5,
        metavar="SECONDS",
        help="close idle client connections after this long; behind a load balancer, make it longer than "
        "the balancer's idle timeout (default 5)",
    )
    parser.add_argument(
        "--forwarded-allow-ips",
        metavar="IPS",
        help="comma-separated proxy addresses (or '*') whose X-Forwarded-* headers are trusted "
        "(default: $FORWARDED_ALLOW_IPS, else 127.0.0.1)",
    )
    parser.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="log one line per request (default on; needs --log-level info or lower)",
    )
    parser.add_argument("--log-level", choices=_LOG_LEVELS, default="info", help="log level (default info)")
    parser.add_argument(
        "--log-requests",
        action=argparse.BooleanOptionalAction,
        help="one JSON line per request, and per failed attempt, on stderr (default: [observability] logs)",
    )
    parser.add_argument(
        "--metrics",
        nargs="?",
        const=DEFAULT_METRICS_PATH,
        type=_metrics_path,
        metavar="PATH",
        help=f"serve Prometheus metrics at PATH (default {DEFAULT_METRICS_PATH}); needs the prometheus extra",
    )
    parser.add_argument(
        "--otel",
        action=argparse.BooleanOptionalAction,
        help="OpenTelemetry GenAI traces and metrics over OTLP/HTTP, set by the standard "
        "OTEL_EXPORTER_OTLP_* and OTEL_SERVICE_NAME variables; needs the otel-exporter extra",
    )
    return parser


def _observability_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The observability settings given on the command line (they win over the file's)."""
    given = {"logs": args.log_requests, "metrics": args.metrics, "otel": args.otel}
    return {key: value for key, value in given.items() if value is not None}


def _summary(config: GatewayConfig, gateway: Gateway, settings: Observability) -> str:
    routes = f" and routes {', '.join(gateway.router.routes)}" if gateway.router.routes else ""
    keys = "client keys required" if gateway.auth else "no client keys required"
    store = describe_response_store(gateway.response_store)
    limits = describe_limits(config.limits) if config.limits is not None else "no limits"
    return (
        f"providers {', '.join(gateway.providers)}{routes} ({keys}), response store {store}, {limits}, "
        f"{settings.describe()}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    path: str | None = args.config or os.environ.get(CONFIG_VARIABLE) or None
    flags = _observability_flags(args)
    try:
        config = _load(path)
        gateway = config.gateway()
    except ConfigError as exc:
        print(f"asgi-llm-gateway: config error: {exc}", file=sys.stderr)
        return 2
    settings = config.observability.over(flags)
    summary = _summary(config, gateway, settings)
    if args.check:
        print(f"asgi-llm-gateway: {path or 'environment'}: OK: {summary}", file=sys.stderr)
        return 0
    if settings.metrics is not None and args.workers > 1:
        print(
            f"asgi-llm-gateway: metrics need one worker: with {args.workers} each would answer a scrape with "
            "its own counts; run one runner per core behind the balancer and scrape each",
            file=sys.stderr,
        )
        return 2
    try:
        import uvicorn
    except ImportError:
        print(
            "asgi-llm-gateway: the runner needs uvicorn: pip install 'asgi-llm-gateway[server]'",
            file=sys.stderr,
        )
        return 2

    host = args.host or config.host or "127.0.0.1"
    port = args.port if args.port is not None else config.port or 8000
    shown_host = f"[{host}]" if ":" in host else host
    workers = f", {args.workers} workers" if args.workers > 1 else ""
    app: ASGIApp | str
    if args.workers > 1:
        # Each worker builds its own gateway from the file (uvicorn imports apps by name in new processes).
        try:
            require_packages(settings)  # here, rather than once per worker
        except ObservabilityError as exc:
            print(f"asgi-llm-gateway: {exc}", file=sys.stderr)
            return 2
        if path:
            os.environ[CONFIG_VARIABLE] = os.path.abspath(path)
        os.environ[OBSERVABILITY_VARIABLE] = json.dumps(flags)
        app = "asgi_llm_gateway.cli:app_from_environment"
    else:
        try:
            app = _app(config, settings)
        except ObservabilityError as exc:
            print(f"asgi-llm-gateway: {exc}", file=sys.stderr)
            return 2
    print(f"asgi-llm-gateway: serving {summary} at http://{shown_host}:{port}/v1{workers}", file=sys.stderr)
    if args.workers > 1 and config.limits is not None and isinstance(config.limits.limiter, MemoryLimiter):
        print(
            f"asgi-llm-gateway: warning: limits kept in memory are per worker: with {args.workers} workers "
            f'a limit admits up to {args.workers} times its amount; [limits] backend = "redis" shares them',
            file=sys.stderr,
        )
    print(f"asgi-llm-gateway: try  curl http://{shown_host}:{port}/v1/models", file=sys.stderr)
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": args.log_level,
        "access_log": args.access_log,
        "forwarded_allow_ips": args.forwarded_allow_ips,
        "timeout_graceful_shutdown": args.graceful_timeout,
        "timeout_keep_alive": args.timeout_keep_alive,
    }
    if args.workers > 1:
        options.update(factory=True, workers=args.workers)
    if args.workers == 1:
        _tune_gc()
    try:
        uvicorn.run(app, **options)
    except SystemExit as exc:  # uvicorn exits on start-up failures: port taken, a worker that cannot start
        return exc.code if isinstance(exc.code, int) else 1
    return 0
