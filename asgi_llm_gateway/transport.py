"""The upstream HTTP client: the httpx API over aiohttp's connection pool on asyncio.

httpx's own pool slows down as connections grow (encode/httpx#3215); `httpx-aiohttp` keeps the httpx API
and swaps in aiohttp's pool, which also sets TCP_NODELAY on every socket. Under trio (no aiohttp) the
gateway uses httpx's own transport with TCP_NODELAY set explicitly.
"""

from __future__ import annotations

import asyncio
import socket

import httpx

__all__ = ["create_client"]

_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=200, keepalive_expiry=30.0)


def create_client(timeout: httpx.Timeout) -> httpx.AsyncClient:
    """A pooled client for one provider. Called lazily, inside the running event loop."""
    if _on_asyncio():
        from httpx_aiohttp import HttpxAiohttpClient

        return HttpxAiohttpClient(timeout=timeout, limits=_LIMITS)
    transport = httpx.AsyncHTTPTransport(
        limits=_LIMITS, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    )
    return httpx.AsyncClient(timeout=timeout, transport=transport)


def _on_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
