"""Bedrock exceptions → the client's errors. The exception's name says more than its HTTP status, and
in-stream exceptions have no status at all, so both come from the tables here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ...errors import GatewayError, upstream_error

__all__ = ["KIND", "bedrock_error", "error_message_of", "error_type_of", "exception_status"]

KIND = "bedrock"

# The HTTP status of each exception in the service model (used for in-stream exceptions, which have none).
_EXCEPTION_STATUS = {
    "ValidationException": 400,
    "ConflictException": 400,
    "ServiceQuotaExceededException": 400,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "ModelTimeoutException": 408,
    "ModelErrorException": 424,
    "ModelStreamErrorException": 424,
    "ThrottlingException": 429,
    "ModelNotReadyException": 429,
    "InternalServerException": 500,
    "ServiceUnavailableException": 503,
}
# Exceptions whose meaning is not what their status says: (client status, error type).
_EXCEPTION_OVERRIDES = {
    "ModelErrorException": (502, "server_error"),
    "ModelStreamErrorException": (502, "server_error"),
    "ModelNotReadyException": (503, "server_error"),
    "ServiceQuotaExceededException": (429, "rate_limit_exceeded"),
}


def bedrock_error(
    error_type: str | None,
    status: int,
    message: str,
    *,
    retry_after: str | None = None,
    secrets: Iterable[str | None] = (),
) -> GatewayError:
    """The client's error for a Bedrock exception (`error_type`, e.g. `ThrottlingException`)."""
    text = f"{error_type}: {message}" if error_type else message
    error = upstream_error(KIND, status, text, retry_after=retry_after, secrets=secrets)
    override = _EXCEPTION_OVERRIDES.get(error_type or "")
    if override is None:
        return error
    client_status, error_type_name = override
    headers = {"retry-after": retry_after} if retry_after and client_status in (429, 503) else None
    return GatewayError(error.message, status=client_status, type=error_type_name, headers=headers)


def error_type_of(header: str | None, body: Any) -> str | None:
    """`ValidationException` from `x-amzn-ErrorType: ValidationException:http://…` or a body `__type`."""
    raw = header or (body.get("__type") or body.get("code") if isinstance(body, Mapping) else None)
    if not raw:
        return None
    return str(raw).split(":", 1)[0].rsplit("#", 1)[-1] or None


def error_message_of(body: Any, text: str, status: int) -> str:
    if isinstance(body, Mapping):
        message = body.get("message") or body.get("Message")
        if message:
            return str(message)
    return text[:500] or f"HTTP {status}"


def exception_status(error_type: str) -> int:
    """The HTTP status an exception has in the service model (in-stream exceptions carry none)."""
    return _EXCEPTION_STATUS.get(error_type, 500)
