"""`/healthz` and `/readyz`: liveness and readiness for load balancers, without touching any upstream."""

from __future__ import annotations

from ..asgi import send_json
from . import Exchange, OpenAIErrors

__all__ = ["HealthEndpoint"]


class HealthEndpoint(OpenAIErrors):
    methods = frozenset({"GET", "HEAD"})

    async def __call__(self, exchange: Exchange) -> None:
        await send_json(exchange.send, 200, {"status": "ok"})
