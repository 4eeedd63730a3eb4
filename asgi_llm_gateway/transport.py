"""The upstream HTTP client: the httpx API over aiohttp's connection pool on asyncio.

httpx's own pool slows down as connections grow (encode/httpx#3215); `httpx-aiohttp` keeps the httpx API
and swaps in aiohttp's pool, which also sets TCP_NODELAY on every socket. Under trio (no aiohttp) the
gateway uses httpx's own transport with TCP_NODELAY set explicitly.
"""

from __future__ import annotations

import asyncio
import socket
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx
from httpx_aiohttp import HttpxAiohttpClient  # imported up front: a lazy import costs the first request

__all__ = ["create_client"]

_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=200, keepalive_expiry=30.0)


def create_client(timeout: httpx.Timeout) -> httpx.AsyncClient:
    """A pooled client for one provider. Called lazily, inside the running event loop."""
    if on_asyncio():
        return HttpxAiohttpClient(timeout=timeout, limits=_LIMITS, cookies=_no_cookies())
    transport = httpx.AsyncHTTPTransport(
        limits=_LIMITS, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    )
    return httpx.AsyncClient(timeout=timeout, transport=transport, cookies=_no_cookies())


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
