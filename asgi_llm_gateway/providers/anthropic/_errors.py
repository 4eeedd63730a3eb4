"""Anthropic error bodies → the client's errors, through the shared status mapping, so clients see the same
codes whatever the provider."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ...errors import GatewayError, upstream_error

__all__ = ["KIND", "error_message", "event_error"]

KIND = "anthropic"

# The HTTP status each error `type` has on a normal response; used for `event: error` mid-stream.
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def error_message(status: int, body: Any, text: str) -> str:
    """The message of an Anthropic error body `{"type": "error", "error": {"type", "message"}}`."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        kind = error.get("type")
        return f"{kind}: {error['message']}" if kind else str(error["message"])
    return text[:500] or f"HTTP {status}"


def event_error(
    payload: Mapping[str, Any], secrets: Iterable[str | None] = (), *, kind: str = KIND
) -> GatewayError:
    """The error an `event: error` mid-stream stands for, with the status its type has on a response.
    `kind` names the provider that relayed it (Bedrock streams Anthropic's events too)."""
    error = payload.get("error")
    status = _ERROR_STATUS.get(str(error.get("type")) if isinstance(error, dict) else "", 500)
    return upstream_error(kind, status, error_message(status, payload, ""), secrets=secrets)
