"""Google's error envelope (`{"error": {"code", "message", "status", "details"}}`) in gateway terms: the
message and code, a retry delay, a rejected key, and an error that arrives inside a stream."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from ...errors import GatewayError, upstream_error

__all__ = ["KIND", "google_error_details", "key_rejected", "payload_error", "retry_delay"]

#: The provider name every error message starts with.
KIND = "gemini"


def google_error_details(status: int, body: Any, text: str) -> tuple[str, str | None] | None:
    """(message, code) from Google's envelope, or None for any other body. Google's `status` names a 400's
    cause (`INVALID_ARGUMENT`, `FAILED_PRECONDITION`), so it becomes the code of a 400."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None
    message = str(error.get("message") or text[:500] or f"HTTP {status}")
    google_status = error.get("status")
    code = google_status.lower() if status == 400 and isinstance(google_status, str) else None
    return message, code


def payload_error(payload: Mapping[str, Any], secrets: Iterable[str | None] = ()) -> GatewayError:
    """An error object that arrived inside a 200: Google fails mid-stream this way."""
    error = payload.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    status = code if isinstance(code, int) and 400 <= code < 600 else 500
    details = google_error_details(status, payload, "")
    if details is None:  # `error` is no object: its text, if any, is all there is
        details = (error if isinstance(error, str) else f"HTTP {status}"), None
    message, error_code = details
    return upstream_error(
        KIND, status, message, code=error_code, retry_after=retry_delay(payload), secrets=secrets
    )


def retry_delay(body: Any) -> str | None:
    """Seconds from a `google.rpc.RetryInfo` detail ("17s", "0.5s"), for a `retry-after` header."""
    error = body.get("error") if isinstance(body, dict) else None
    for detail in (error.get("details") or ()) if isinstance(error, dict) else ():
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return str(math.ceil(float(delay[:-1])))
            except ValueError:
                return None
    return None


def key_rejected(body: Any) -> bool:
    """Google answers a bad key with 400 INVALID_ARGUMENT; only this detail tells it from a bad request."""
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    return any(isinstance(d, dict) and d.get("reason") == "API_KEY_INVALID" for d in details or ())
