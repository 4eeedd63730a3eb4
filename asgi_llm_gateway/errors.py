"""The one error type the gateway raises, and the mapping of upstream failures onto OpenAI statuses.

Every failure a client can see is a `GatewayError`: it carries the HTTP status an OpenAI SDK maps to the
right exception class, and renders as OpenAI's envelope `{"error": {"message", "type", "param", "code"}}`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["GatewayError", "redact", "upstream_error"]

_DEFAULT_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_exceeded",
}


class GatewayError(Exception):
    """An error with an HTTP status and an OpenAI-shaped body.

    Raise it from a provider, an auth hook or a usage hook: the gateway renders it as is.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str | None = None,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        retry_hint: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type or _DEFAULT_TYPES.get(status, "server_error")
        self.param = param
        self.code = code
        self.headers: dict[str, str] = dict(headers or {})
        #: The upstream's `x-should-retry` (OpenAI and Anthropic send it); None when it said nothing.
        self.retry_hint = retry_hint

    def to_dict(self) -> dict[str, Any]:
        """The OpenAI error envelope; all four keys are always present."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    @property
    def retryable(self) -> bool:
        """Whether another attempt (or another target) could succeed."""
        return self.status in (429, 502, 503, 504)

    def __repr__(self) -> str:
        return f"GatewayError(status={self.status}, code={self.code!r}, message={self.message!r})"


# Strings that look like credentials, whatever provider issued them.
_SECRET_PATTERNS = re.compile(
    r"(sk-[A-Za-z0-9_\-]{8,}|sk-ant-[A-Za-z0-9_\-]{8,}|AIza[0-9A-Za-z_\-]{20,}|gsk_[A-Za-z0-9]{8,}"
    r"|xai-[A-Za-z0-9]{8,}|AKIA[0-9A-Z]{12,}|ASIA[0-9A-Z]{12,}|ABSK[A-Za-z0-9+/=]{8,}"
    r"|(?i:bearer)\s+[A-Za-z0-9._\-+/=]{8,})"
)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Remove known secrets and anything shaped like an API key from `text`."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[REDACTED]")
    return _SECRET_PATTERNS.sub("[REDACTED]", text)


def _status_for_upstream(status: int) -> tuple[int, str, str | None]:
    """(status for the client, error type, default code) for an upstream HTTP status."""
    if status in (401, 403):
        # The client's key was accepted by the gateway; it is the gateway's upstream credential that failed.
        return 502, "server_error", "upstream_authentication_error"
    if status == 402:  # the gateway's account is out of credit: not the client's fault, not retryable
        return 429, "insufficient_quota", "insufficient_quota"
    if status == 404:
        return 404, "invalid_request_error", "model_not_found"
    if status == 413:
        return 413, "invalid_request_error", None
    if status == 408:
        return 504, "server_error", "upstream_timeout"
    if status == 429:
        return 429, "rate_limit_exceeded", "rate_limit_exceeded"
    if status in (503, 529):
        return 503, "server_error", "upstream_overloaded"
    if status == 504:
        return 504, "server_error", "upstream_timeout"
    if 400 <= status < 500:
        return 400, "invalid_request_error", None
    return 502, "server_error", "upstream_error"


def upstream_error(
    provider: str,
    status: int,
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    retry_after: str | None = None,
    retry_hint: bool | None = None,
    secrets: Iterable[str | None] = (),
) -> GatewayError:
    """Map a failed upstream call onto the status an OpenAI client expects (see DESIGN.md's error table).

    The upstream message is kept, prefixed with the provider name, with secrets removed.
    """
    client_status, error_type, default_code = _status_for_upstream(status)
    if status in (401, 403):
        code = None  # whatever the upstream calls it, for the client it is the gateway's credential failing
    headers = {"retry-after": retry_after} if retry_after and client_status in (429, 503) else None
    text = redact(f"{provider}: {message or 'upstream error'} (upstream status {status})", secrets)
    return GatewayError(
        text,
        status=client_status,
        type=error_type,
        param=param if client_status == 400 else None,
        code=code or default_code,
        headers=headers,
        retry_hint=retry_hint,
    )
