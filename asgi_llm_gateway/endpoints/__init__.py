"""The gateway's endpoints, one module each: what the route table in `gateway.py` dispatches to.

An endpoint is called with the `Exchange` (ASGI scope, receive, send, the request id and the path below the
mount) once the path and method matched; it answers, or raises a `GatewayError` that the gateway hands to the
endpoint's own `send_error`, so every door answers errors in its own API's envelope.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

from ..asgi import Receive, Scope, Send, send_error, send_json
from ..errors import GatewayError
from ..ingress.anthropic import error_envelope

__all__ = [
    "ANTHROPIC_REQUEST_ID",
    "OPENAI_REQUEST_ID",
    "AnthropicErrors",
    "Endpoint",
    "Exchange",
    "Headers",
    "OpenAIErrors",
]

Headers = Sequence[tuple[bytes, bytes]]


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
    #: The response headers that carry the request id (`asgi.stamped` puts them on every response).
    request_id_headers: tuple[bytes, ...]

    async def __call__(self, exchange: Exchange) -> None: ...

    async def send_error(self, exchange: Exchange, error: GatewayError, headers: Headers = ()) -> None:
        """Answer `error` in this door's envelope."""


#: OpenAI's SDKs read `x-request-id`; Anthropic's read `request-id`.
OPENAI_REQUEST_ID: tuple[bytes, ...] = (b"x-request-id",)
ANTHROPIC_REQUEST_ID: tuple[bytes, ...] = (b"x-request-id", b"request-id")


class OpenAIErrors:
    """Errors in OpenAI's envelope `{"error": {"message", "type", "param", "code"}}`."""

    request_id_headers = OPENAI_REQUEST_ID

    async def send_error(self, exchange: Exchange, error: GatewayError, headers: Headers = ()) -> None:
        await send_error(exchange.send, error, headers)


class AnthropicErrors:
    """Errors in Anthropic's envelope `{"type": "error", "error": {"type", "message"}}` and its statuses."""

    request_id_headers = ANTHROPIC_REQUEST_ID

    async def send_error(self, exchange: Exchange, error: GatewayError, headers: Headers = ()) -> None:
        status, body, extra = error_envelope(error)
        encoded = [(name.encode(), value.encode()) for name, value in extra.items()]
        await send_json(exchange.send, status, body, [*encoded, *headers])
