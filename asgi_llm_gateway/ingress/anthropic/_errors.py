"""`GatewayError` → Anthropic's envelope, status and error type: whole, or as a stream's `error` event.

Anthropic clients pick their exception class from the status and decide to retry from it (the SDKs retry
408, 409, 429 and 5xx), so the status matters more than the message:

| gateway status | Anthropic status, `error.type` |
| --- | --- |
| 400, 405, other 4xx | same status, `invalid_request_error` |
| 401 / 402 / 403 / 404 | `authentication_error` / `billing_error` / `permission_error` / `not_found_error` |
| 413 | `request_too_large` |
| 429 | `rate_limit_error` (its `retry-after` kept) |
| 429 with code `insufficient_quota` | 402 `billing_error` (see below) |
| 500 | `api_error` |
| 503 (and 529) | 529 `overloaded_error`: what Anthropic clients retry as Anthropic's own overload |
| 504 | `timeout_error` |
| other 5xx (502: the upstream failed) | same status, `api_error` |

`insufficient_quota` (the gateway's upstream account is out of credit) is a 429 on the chat door, where
OpenAI clients know that code; an Anthropic client only sees "rate limited" and retries, Claude Code up to
ten times, when no retry can help. `billing_error` says what it is, and no SDK retries a 402.
"""

from __future__ import annotations

from typing import Any

from ...errors import GatewayError
from ...wire import dumps

__all__ = ["anthropic_only", "error_envelope", "error_event"]

_OVERLOADED = 529
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    _OVERLOADED: "overloaded_error",
}


def error_envelope(error: GatewayError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, body, headers) of the Anthropic error response for `error`; the headers are the error's own
    (`retry-after` among them)."""
    status, kind = _status_and_type(error)
    return status, _body(kind, error.message), dict(error.headers)


def error_event(error: GatewayError) -> bytes:
    """The `error` event that ends a stream for `error` (the SDKs raise it as an API error)."""
    _, kind = _status_and_type(error)
    return b"event: error\ndata: " + dumps(_body(kind, error.message)) + b"\n\n"


def _status_and_type(error: GatewayError) -> tuple[int, str]:
    status = error.status
    if error.code == "insufficient_quota":
        return 402, _TYPES[402]
    if status == 503:
        status = _OVERLOADED
    if status in _TYPES:
        return status, _TYPES[status]
    if 400 <= status < 500:
        return status, "invalid_request_error"
    if 500 <= status < 600:
        return status, "api_error"
    return 500, "api_error"  # not an error status at all: the gateway's own bug


def _body(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def anthropic_only(param: str, what: str, hint: str = "") -> GatewayError:
    """A 400 for something in the request that only an Anthropic upstream can serve."""
    return GatewayError(
        f"{param}: {what} is served by Anthropic upstreams only, "
        f"and this model is served by another provider{'; ' if hint else ''}{hint}",
        status=400,
        param=param,
        code="unsupported_parameter",
    )
