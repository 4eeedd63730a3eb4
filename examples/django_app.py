"""Django: the gateway under `/llm` beside Django's own views, in one file (settings in code, no database).

    uvicorn examples.django_app:application --port 8000
    python -m examples.django_app alice          # prints an API key for the user "alice"

`application` is the gateway's `PathPrefixDispatcher`: `/llm/...` goes to the gateway, with the prefix
moved into `root_path` as Starlette's `Mount` does, and everything else goes to Django. Django's ASGI handler
refuses the lifespan protocol, so lifespan goes to the gateway, which closes its connections on shutdown.

Django decides who may call the gateway, two ways:
- API keys are values signed by Django (`django.core.signing`, keyed by SECRET_KEY): `issue_api_key("alice")`.
- A page of this site, logged in with Django's session cookie (`POST /login`), may call it with `fetch`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from importlib import import_module

from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", "django-insecure-example-only-set-DJANGO_SECRET_KEY"),
        ALLOWED_HOSTS=["127.0.0.1", "localhost", "[::1]"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"],
        # Sessions live in a signed cookie, so this example needs no database; any engine works.
        SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
    )

from django.core import signing
from django.core.asgi import get_asgi_application
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.http import require_POST
from starlette.requests import Request
from starlette.types import ASGIApp

from asgi_llm_gateway import Gateway, PathPrefixDispatcher
from asgi_llm_gateway.providers import Provider

PREFIX = "/llm"
API_KEY_SALT = "examples.django_app.api-key"
API_KEY_MAX_AGE = 90 * 24 * 3600


def issue_api_key(username: str) -> str:
    """A key naming `username`, signed with SECRET_KEY (stateless: store keys, hashed, to revoke them)."""
    return signing.dumps(username, salt=API_KEY_SALT)


def user_for_api_key(key: str) -> str | None:
    try:
        username: str = signing.loads(key, salt=API_KEY_SALT, max_age=API_KEY_MAX_AGE)
    except signing.BadSignature:
        return None
    return username


def _bearer(authorization: str | None) -> str | None:
    scheme, _, key = (authorization or "").partition(" ")
    return key if scheme.lower() == "bearer" and key else None


async def gateway_auth(request: Request) -> str | None:
    """The gateway's auth hook: a Django API key, or else Django's session cookie."""
    key = _bearer(request.headers.get("authorization"))
    if key is not None:
        return user_for_api_key(key)
    session_key = request.cookies.get(settings.SESSION_COOKIE_NAME)
    # The cookie is a browser's: only honour it for requests from this site's own pages (no CSRF).
    if not session_key or request.headers.get("sec-fetch-site", "same-origin") != "same-origin":
        return None
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    username: str | None = await session.aget("username")
    return username


# -- Django's own views --------------------------------------------------------------------------------


async def hello(request: HttpRequest) -> JsonResponse:
    key = _bearer(request.headers.get("authorization"))
    username = user_for_api_key(key) if key else await request.session.aget("username")
    if username is None:
        return JsonResponse({"detail": "Missing or unknown API key"}, status=401)
    return JsonResponse({"hello": username})


@require_POST
async def login(request: HttpRequest) -> JsonResponse:
    """Starts a browser session. A real site checks a password here; the demo accepts an API key."""
    username = user_for_api_key(request.POST.get("api_key", ""))
    if username is None:
        return JsonResponse({"detail": "Unknown API key"}, status=401)
    await request.session.aset("username", username)
    return JsonResponse({"hello": username})


urlpatterns = [path("hello", hello), path("login", login)]


# -- the ASGI application ------------------------------------------------------------------------------


def create_app(providers: Mapping[str, Provider] | None = None) -> ASGIApp:
    """Django plus the gateway under PREFIX; `providers` defaults to the offline echo provider."""
    gateway = Gateway(providers=providers, auth=gateway_auth)
    # Django refuses the lifespan protocol: the gateway answers it, and closes its connections on shutdown.
    return PathPrefixDispatcher(get_asgi_application(), gateway, prefix=PREFIX, lifespan="gateway")


application = create_app()

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m examples.django_app <username>   (prints an API key for that user)")
    print(issue_api_key(sys.argv[1]))
