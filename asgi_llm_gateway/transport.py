"""The upstream HTTP client: the httpx API over aiohttp's connection pool on asyncio.

httpx's own pool slows down as connections grow (encode/httpx#3215); `httpx-aiohttp` keeps the httpx API
and swaps in aiohttp's pool, which also sets TCP_NODELAY on every socket. Under trio (no aiohttp) the
gateway uses httpx's own transport with TCP_NODELAY set explicitly.

The gateway's own client has no auth, redirects, cookies or event hooks, so when no proxy is configured in
the environment its requests go straight to the client's transport (`handle_async_request`, httpx's public
transport API): `AsyncClient.send` around it costs more than the aiohttp pool itself (measured ~60-80 µs a
request, a third of it in cookie extraction for a jar that keeps nothing). With `HTTP(S)_PROXY`/`ALL_PROXY`
set, requests go through `AsyncClient.send`, whose proxy mounts honour them (and `NO_PROXY`).
"""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import NamedTuple

import httpx
from httpx_aiohttp import HttpxAiohttpClient  # imported up front: a lazy import costs the first request
from httpx_aiohttp.transport import AiohttpTransport

__all__ = ["Upstream", "create_client"]

_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=200, keepalive_expiry=30.0)


class Upstream(NamedTuple):
    """A provider's own pooled client, and the transport to send to directly (None: use `client.send`)."""

    client: httpx.AsyncClient
    direct: httpx.AsyncBaseTransport | None


def create_client(timeout: httpx.Timeout) -> Upstream:
    """A pooled client for one provider. Called lazily, inside the running event loop."""
    if urllib.request.getproxies():  # what httpx reads: a client without an explicit transport mounts them
        if on_asyncio():
            return Upstream(HttpxAiohttpClient(timeout=timeout, limits=_LIMITS, cookies=_no_cookies()), None)
        return Upstream(httpx.AsyncClient(timeout=timeout, limits=_LIMITS, cookies=_no_cookies()), None)
    transport: httpx.AsyncBaseTransport
    if on_asyncio():
        transport = AiohttpTransport(limits=_LIMITS)
    else:
        transport = httpx.AsyncHTTPTransport(
            limits=_LIMITS, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
        )
    return Upstream(httpx.AsyncClient(timeout=timeout, transport=transport, cookies=_no_cookies()), transport)


def _no_cookies() -> CookieJar:
    """A jar that keeps nothing: one client serves every user, so an upstream's Set-Cookie must never be
    replayed on someone else's request. (Passed as a jar: httpx would copy an `httpx.Cookies` into a plain
    jar and lose the policy.)"""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


def on_asyncio() -> bool:
    """Whether the running event loop is asyncio's (the gateway also runs under trio)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
