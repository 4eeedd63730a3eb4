"""Client authentication: the hook protocol and the ready-made `api_keys()` hook.

An auth hook is any async callable that takes the incoming `starlette.requests.Request` (headers only: the
body has not been read yet) and returns a principal — anything the host uses to identify the caller — or
None to refuse with 401. It may also raise `GatewayError` itself (e.g. 403). A principal that is a
`Principal` can restrict which models it may call.
"""

from __future__ import annotations

import fnmatch
import hmac
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import GatewayError

if TYPE_CHECKING:  # imported when a hook first runs: a gateway without auth never needs Starlette's request
    from starlette.requests import HTTPConnection, Request

__all__ = ["AuthHook", "Principal", "api_keys", "authenticate", "bearer_token", "check_model_allowed"]

AuthHook = Callable[["Request"], Awaitable[Any]]


@dataclass(frozen=True)
class Principal:
    """A caller. `allowed_models` holds glob patterns (`"openai/*"`, `"smart"`); None allows every model."""

    name: str
    allowed_models: tuple[str, ...] | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def may_use(self, model: str) -> bool:
        if self.allowed_models is None:
            return True
        return any(fnmatch.fnmatchcase(model, pattern) for pattern in self.allowed_models)


async def authenticate(auth: AuthHook | None, scope: MutableMapping[str, Any]) -> Any:
    """The caller's principal by the host's hook (None when there is no hook); 401 when it refuses."""
    if auth is None:
        return None
    from starlette.requests import Request

    principal = await auth(Request(scope))
    if principal is None:
        raise GatewayError(
            "Incorrect API key provided. Send your gateway key as 'Authorization: Bearer <key>'.",
            status=401,
            code="invalid_api_key",
        )
    return principal


def check_model_allowed(principal: Any, model: str) -> None:
    """403 when the principal is a `Principal` whose `allowed_models` do not cover `model`."""
    if isinstance(principal, Principal) and not principal.may_use(model):
        raise GatewayError(
            f"The key in use may not call the model '{model}'.",
            status=403,
            param="model",
            code="model_not_allowed",
        )


def bearer_token(request: HTTPConnection) -> str | None:
    """The client's key: `Authorization: Bearer …`, else the `api-key` header (Azure-style clients) or
    `x-api-key` (Anthropic's SDKs and Claude Code)."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return None
    return request.headers.get("api-key") or request.headers.get("x-api-key")


def api_keys(keys: Mapping[str, Any] | Iterable[str]) -> AuthHook:
    """An auth hook that accepts the given client keys. A mapping gives each key its principal.

    Keys are compared in constant time so that response timing does not reveal a key's prefix.
    """
    table: dict[bytes, Any] = (
        {key.encode(): principal for key, principal in keys.items()}
        if isinstance(keys, Mapping)
        else {key.encode(): key[:6] + "…" for key in keys}
    )

    async def authenticate(request: Request) -> Any:
        token = bearer_token(request)
        if token is None:
            return None
        presented = token.encode()
        found = None
        for key, principal in table.items():
            if hmac.compare_digest(key, presented):
                found = principal
        return found

    return authenticate
