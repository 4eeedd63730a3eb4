"""The gateway's endpoints, one module each: what the route table in `gateway.py` dispatches to.

An endpoint is called with the `Exchange` (ASGI scope, receive, send, the request id and the path below the
mount) once the path and method matched; it answers, or raises a `GatewayError` that the gateway sends in
the door's error envelope.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from ..asgi import Receive, Scope, Send

__all__ = ["Endpoint", "Exchange"]


class Exchange(NamedTuple):
    """One HTTP request and its reply channel."""

    scope: Scope
    receive: Receive
    send: Send
    request_id: str
    #: The path below the mount point and the optional `/v1` (see `asgi.local_path`).
    path: str


class Endpoint(Protocol):
    """Serves the requests of one path (or one path prefix)."""

    #: The HTTP methods it accepts; any other is a 405 naming them.
    methods: frozenset[str]

    async def __call__(self, exchange: Exchange) -> None: ...
