"""What Google's error bodies say beyond their HTTP status: a retry delay, and a rejected key."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["KIND", "key_rejected", "retry_delay"]

#: The provider name every error message starts with.
KIND = "gemini"


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
