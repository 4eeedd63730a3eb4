"""The standalone runner: `asgi-llm-gateway --config gateway.toml --host 127.0.0.1 --port 8000`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .config import ConfigError, GatewayConfig, from_environment, load_config
from .gateway import Gateway

__all__ = ["app_from_environment", "main"]

_CONFIG_VARIABLE = "ASGI_LLM_GATEWAY_CONFIG"


def _load(path: str | None) -> GatewayConfig:
    return load_config(path) if path else from_environment()


def app_from_environment() -> Gateway:
    """The app factory uvicorn's workers import (`--workers N`); the config path travels in the environment."""
    return _load(os.environ.get(_CONFIG_VARIABLE) or None).gateway()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="asgi-llm-gateway", description="Serve an OpenAI-compatible LLM gateway."
    )
    parser.add_argument("--config", help="TOML config file (default: echo + providers whose key env var is set)")
    parser.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8000)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--log-level", default="info", help="uvicorn log level (default info)")
    args = parser.parse_args(argv)

    try:
        config = _load(args.config)
        gateway = config.gateway()
    except ConfigError as exc:
        print(f"asgi-llm-gateway: config error: {exc}", file=sys.stderr)
        return 2
    try:
        import uvicorn
    except ImportError:
        print("asgi-llm-gateway: the runner needs uvicorn: pip install 'asgi-llm-gateway[server]'", file=sys.stderr)
        return 2

    host = args.host or config.host or "127.0.0.1"
    port = args.port if args.port is not None else config.port or 8000
    shown_host = f"[{host}]" if ":" in host else host
    print(
        f"asgi-llm-gateway: serving providers {', '.join(gateway.providers)}"
        + (f" and routes {', '.join(gateway.router.routes)}" if gateway.router.routes else "")
        + f" at http://{shown_host}:{port}/v1"
        + (" (client keys required)" if gateway.auth else " (no client keys required)"),
        file=sys.stderr,
    )
    print(f"asgi-llm-gateway: try  curl http://{shown_host}:{port}/v1/models", file=sys.stderr)
    if args.workers > 1:
        if args.config:
            os.environ[_CONFIG_VARIABLE] = os.path.abspath(args.config)
        uvicorn.run(
            "asgi_llm_gateway.cli:app_from_environment",
            factory=True,
            host=host,
            port=port,
            workers=args.workers,
            log_level=args.log_level,
        )
    else:
        uvicorn.run(gateway, host=host, port=port, log_level=args.log_level)
    return 0
