"""`PathPrefixDispatcher`: the gateway under a path prefix of a host that has no mounts of its own.

Django, Quart and plain ASGI apps cannot mount another ASGI app the way Starlette, FastAPI and Litestar do.
Wrap the host app instead: requests under `prefix` go to the gateway with the prefix moved into `root_path`
(as Starlette's `Mount` does, so links and errors name the full path), everything else to the host app.

    application = PathPrefixDispatcher(django_asgi_app, gateway, prefix="/llm")

Lifespan: with `lifespan="gateway"` (the default) the gateway answers it and closes its connections on
shutdown; the host app never sees it (right for Django, which refuses the lifespan protocol). With
`lifespan="app"` the host app gets it (right for Quart and others with startup hooks) and the gateway is
closed once the host app reports its shutdown.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

from .asgi import Message, Receive, Scope, Send

__all__ = ["ASGIApp", "PathPrefixDispatcher"]

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class PathPrefixDispatcher:
    """An ASGI app that sends `prefix` and the paths below it to `gateway`, and the rest to `app`."""

    def __init__(
        self,
        app: ASGIApp,
        gateway: ASGIApp,
        *,
        prefix: str = "/llm",
        lifespan: Literal["gateway", "app"] = "gateway",
    ) -> None:
        if not prefix.startswith("/") or prefix.endswith("/"):
            raise ValueError(f"prefix {prefix!r} must start with '/' and not end with one")
        if lifespan not in ("gateway", "app"):
            raise ValueError(f"lifespan must be 'gateway' or 'app', not {lifespan!r}")
        self.app = app
        self.gateway = gateway
        self.prefix = prefix
        self.lifespan = lifespan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            if self.lifespan == "gateway":
                await self.gateway(scope, receive, send)
            else:
                await self.app(scope, receive, self._closing_gateway(send))
            return
        mount = scope.get("root_path", "") + self.prefix
        path: str = scope.get("path", "")
        if path == mount or path.startswith(mount + "/"):
            await self.gateway({**scope, "root_path": mount}, receive, send)
        else:
            await self.app(scope, receive, send)

    def _closing_gateway(self, send: Send) -> Send:
        """`send` for the host app's lifespan: the gateway is closed before its shutdown is reported."""
        aclose: Callable[[], Awaitable[None]] | None = getattr(self.gateway, "aclose", None)

        async def forward(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed") and aclose:
                await aclose()
            await send(message)

        return forward
