"""Headers the hooks add to one attempt's upstream request (trace context: `traceparent`, …).

The attempts unit asks the hooks (`Hooks.upstream_headers`) when an attempt starts and sets them in a
context variable for the time of that attempt; `HTTPProvider` reads it once when it builds the request. A
context variable, not an argument: the providers' `complete`/`stream` signatures stay the wire contract, and
the value follows the attempt's task (a stream's request is built inside its attempt). With no hooks, or hooks
that add nothing, the variable is never set and a request pays one `get`.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar

__all__ = ["UPSTREAM_HEADERS"]

#: The current attempt's extra request headers, or None.
UPSTREAM_HEADERS: ContextVar[Mapping[str, str] | None] = ContextVar(
    "asgi_llm_gateway_upstream_headers", default=None
)
