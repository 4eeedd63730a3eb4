"""The small ASGI plumbing the gateway needs: where a request points below the mount, reading a capped body,
and sending JSON and SSE bodies. Raw ASGI rather than Starlette's Request/Response: these few lines are on
every request's path.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from .errors import GatewayError
from .wire import dumps

__all__ = [
    "ClientGone",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "accept_request_id",
    "local_path",
    "read_body",
    "send_body",
    "send_error",
    "send_json",
    "stamped",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class ClientGone(Exception):
    """The client disconnected before the request was complete."""


def local_path(scope: Scope) -> str:
    """The path below the mount point, without the optional `/v1` prefix or a trailing slash.

    Starlette and FastAPI keep the full path and put the mount prefix in `root_path`; Litestar strips the
    prefix itself (and may add a trailing slash). Both end up the same here.
    """
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        path = path[len(root) :]
    path = path.rstrip("/")
    if path.startswith("/v1/"):
        path = path[3:]
    return path or "/"


#: A client's own `x-request-id` is kept when it is 1-128 of these characters; anything else (a CR/LF that
#: would split a header, spaces, a megabyte of text) is replaced by a fresh id, never echoed.
_SAFE_REQUEST_ID = re.compile(rb"[A-Za-z0-9_.:-]{1,128}")


def accept_request_id(scope: Scope) -> str:
    """The request's id: the client's `x-request-id` when safe to echo, else `req_` and 24 hex digits."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            if _SAFE_REQUEST_ID.fullmatch(value):
                return bytes(value).decode("ascii")
            break
    return "req_" + secrets.token_hex(12)


def stamped(send: Send, headers: Sequence[tuple[bytes, bytes]]) -> Send:
    """`send` that puts `headers` (the request id's) on the response start.

    The one owner of the request id headers: every response carries them, whichever endpoint, error path or
    detached run sends it, and no sender adds them itself."""

    async def send_stamped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), *headers]}
        await send(message)

    return send_stamped


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The request body, refusing with 413 as soon as it is known to exceed `limit` bytes."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                raise GatewayError("invalid Content-Length header") from None
            if declared > limit:
                raise _too_large(limit)
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            parts.append(chunk)
        if not message.get("more_body", False):
            return parts[0] if len(parts) == 1 else b"".join(parts)


def _too_large(limit: int) -> GatewayError:
    return GatewayError(
        f"The request body is larger than the gateway's limit of {limit} bytes.",
        status=413,
        code="request_too_large",
    )


async def send_json(
    send: Send, status: int, body: Any, extra_headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """A JSON answer. The request id header is not its business: `stamped` puts it on every response."""
    content = dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(content)).encode()),
                *extra_headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})


async def send_error(
    send: Send, error: GatewayError, extra_headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    headers = [(name.encode(), value.encode()) for name, value in error.headers.items()]
    await send_json(send, error.status, error.to_dict(), [*headers, *extra_headers])


async def send_body(send: Send, data: bytes, more: bool = True) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": more})
