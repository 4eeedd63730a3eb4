"""FastAPI: the gateway mounted at `/llm`, its callers authenticated by the app's own bearer-key dependency.

    uvicorn examples.fastapi_app:app --port 8000

Clients use `base_url="http://127.0.0.1:8000/llm/v1"` and an app key (`sk-demo-alice`) as their API key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import Request

from asgi_llm_gateway import Gateway
from asgi_llm_gateway.providers import Provider


@dataclass(frozen=True)
class User:
    name: str


# The app's user store. A real app looks the key up (hashed) in its database.
USERS: Mapping[str, User] = MappingProxyType({"sk-demo-alice": User("alice"), "sk-demo-bob": User("bob")})

bearer = HTTPBearer(auto_error=False)


async def optional_user(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> User | None:
    """The one place that turns a request's key into a user: FastAPI routes and the gateway both use it."""
    return USERS.get(credentials.credentials) if credentials else None


async def current_user(user: Annotated[User | None, Depends(optional_user)]) -> User:
    if user is None:
        raise HTTPException(401, "Missing or unknown API key", headers={"WWW-Authenticate": "Bearer"})
    return user


async def gateway_auth(request: Request) -> User | None:
    """The gateway's auth hook: the same dependency chain, called by hand (mounted apps skip FastAPI's DI)."""
    return await optional_user(await bearer(request))


def create_app(providers: Mapping[str, Provider] | None = None) -> FastAPI:
    """The host app; `providers` defaults to the offline echo provider."""
    gateway = Gateway(providers=providers, auth=gateway_auth)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with gateway:  # mounted apps get no lifespan events: the host closes the gateway on shutdown
            yield

    app = FastAPI(lifespan=lifespan)
    app.mount("/llm", gateway)

    @app.get("/hello")
    async def hello(user: Annotated[User, Depends(current_user)]) -> dict[str, str]:
        return {"hello": user.name}

    return app


app = create_app()
