"""Starlette: the gateway mounted at `/llm` behind the app's `AuthenticationMiddleware`.

    uvicorn examples.starlette_app:app --port 8000

The middleware runs before routing, so `request.user` is already set when the gateway's auth hook reads it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from types import MappingProxyType

from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser, requires
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from asgi_llm_gateway import Gateway
from asgi_llm_gateway.providers import Provider

# The app's user store. A real app looks the key up (hashed) in its database.
USERS: Mapping[str, SimpleUser] = MappingProxyType(
    {"sk-demo-alice": SimpleUser("alice"), "sk-demo-bob": SimpleUser("bob")}
)


class KeyBackend(AuthenticationBackend):
    """Bearer key → user. Unknown keys leave the request anonymous; each route decides what that means."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        scheme, _, key = conn.headers.get("authorization", "").partition(" ")
        user = USERS.get(key) if scheme.lower() == "bearer" else None
        return (AuthCredentials(["authenticated"]), user) if user else None


async def gateway_auth(request: Request) -> SimpleUser | None:
    """The gateway's auth hook: the user the app's middleware already found, if any."""
    user = request.user
    return user if user.is_authenticated else None


@requires("authenticated", status_code=401)
async def hello(request: Request) -> JSONResponse:
    return JSONResponse({"hello": request.user.display_name})


def create_app(providers: Mapping[str, Provider] | None = None) -> Starlette:
    """The host app; `providers` defaults to the offline echo provider."""
    gateway = Gateway(providers=providers, auth=gateway_auth)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with gateway:  # mounted apps get no lifespan events: the host closes the gateway on shutdown
            yield

    return Starlette(
        routes=[Route("/hello", hello), Mount("/llm", app=gateway)],
        middleware=[Middleware(AuthenticationMiddleware, backend=KeyBackend())],
        lifespan=lifespan,
    )


app = create_app()
