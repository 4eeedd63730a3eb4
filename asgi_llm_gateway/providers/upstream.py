"""What an attempt carries to the upstream beyond its request, and brings back: the call's request id (for
providers that take a client request id), the hooks' headers (trace context: `traceparent`, …), and the
upstream's own request id, read from its answer.

The attempts unit sets `REQUEST_ID` for the time of a call's attempts, hooks or not: an `HTTPProvider`
whose `client_request_id_header` names a header (OpenAI's `X-Client-Request-Id`) sends the id in it when it
builds a request, and one without never reads it. When the gateway has hooks, the attempts unit also sets
an `UpstreamAttempt` in `ATTEMPT` for the time of each attempt (asking them for `Hooks.upstream_headers`);
`HTTPProvider` adds its headers when it builds the request and notes the upstream's request id when the
answer's head arrives; the attempts unit then copies it to `Call.upstream_request_id`.

Context variables, not arguments: the providers' `complete`/`stream` signatures stay the wire contract, and
the values follow the attempt's task (a stream's request is built and answered inside its attempt). A call
pays a set and a reset of `REQUEST_ID`; without hooks `ATTEMPT` is never set and a request pays two `get`s.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar

__all__ = ["ATTEMPT", "REQUEST_ID", "UpstreamAttempt"]


class UpstreamAttempt:
    """One attempt's extra request headers, and the request id the upstream answered with."""

    __slots__ = ("headers", "request_id")

    def __init__(self, headers: Mapping[str, str]) -> None:
        self.headers = headers
        self.request_id: str | None = None


#: The attempt in flight in this task, when the gateway has hooks.
ATTEMPT: ContextVar[UpstreamAttempt | None] = ContextVar("asgi_llm_gateway_attempt", default=None)

#: The request id of the call whose attempts run in this task (`Call.request_id`: safe characters, 1-128).
REQUEST_ID: ContextVar[str | None] = ContextVar("asgi_llm_gateway_request_id", default=None)
