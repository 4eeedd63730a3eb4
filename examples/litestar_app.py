"""Litestar: the gateway as an ASGI mount at `/llm`, behind the app's authentication middleware.

    uvicorn examples.litestar_app:app --port 8000

The middleware sets `scope["user"]` for every route, the mount included; host routes refuse anonymous
callers with a guard, and the gateway's auth hook does the same (answering in OpenAI's error format).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from litestar import Litestar, Request, asgi, get
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, NotFoundException
from litestar.handlers import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult, DefineMiddleware
from litestar.types import Receive, Scope, Send
from starlette.requests import Request as StarletteRequest

from asgi_llm_gateway import Gateway
from asgi_llm_gateway.providers import Provider


@dataclass(frozen=True)
class User:
    name: str


# The app's user store. A real app looks the key up (hashed) in its database.
USERS: Mapping[str, User] = MappingProxyType({"sk-demo-alice": User("alice"), "sk-demo-bob": User("bob")})


class KeyAuthMiddleware(AbstractAuthenticationMiddleware):
    """Bearer key → `scope["user"]` (None when missing or unknown; guards decide what that means)."""

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        scheme, _, key = connection.headers.get("authorization", "").partition(" ")
        return AuthenticationResult(user=USERS.get(key) if scheme.lower() == "bearer" else None, auth=None)


def requires_user(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if connection.scope.get("user") is None:
        raise NotAuthorizedException("Missing or unknown API key")


async def gateway_auth(request: StarletteRequest) -> User | None:
    """The gateway's auth hook: the user Litestar's middleware put in the scope."""
    user: User | None = request.scope.get("user")
    return user


@get("/hello", guards=[requires_user])
async def hello(request: Request[User, None, Any]) -> dict[str, str]:
    return {"hello": request.user.name}


def create_app(providers: Mapping[str, Provider] | None = None) -> Litestar:
    """The host app; `providers` defaults to the offline echo provider."""
    gateway = Gateway(providers=providers, auth=gateway_auth)

    @asgi("/llm", is_mount=True, copy_scope=True)
    async def llm(scope: Scope, receive: Receive, send: Send) -> None:
        # Litestar strips the mount prefix from `path` but matches it as a plain string prefix, so
        # "/llmx" arrives here as "x/": that is not ours.
        if not scope["path"].startswith("/"):
            raise NotFoundException()
        await gateway(scope, receive, send)  # type: ignore[arg-type]

    return Litestar(
        route_handlers=[hello, llm],
        middleware=[DefineMiddleware(KeyAuthMiddleware)],
        on_shutdown=[gateway.aclose],  # mounted apps get no lifespan events: the host closes the gateway
    )


app = create_app()
