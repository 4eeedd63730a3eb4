"""The upstream client the gateway creates for itself."""

from __future__ import annotations

import httpx
import pytest

from asgi_llm_gateway.transport import create_client


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_upstream_set_cookie_is_never_kept_for_the_next_user(anyio_backend: str) -> None:
    """Regression: one pooled client serves every user; httpx's default jar would replay cookies."""
    client = create_client(httpx.Timeout(5))
    try:
        response = httpx.Response(
            200,
            headers={"set-cookie": "session=alice; Path=/"},
            request=httpx.Request("GET", "https://api.example.com/v1/chat/completions"),
        )
        client.cookies.extract_cookies(response)
        assert dict(client.cookies) == {}
        assert "cookie" not in client.build_request("GET", "https://api.example.com/v1/models").headers
    finally:
        await client.aclose()


@pytest.mark.anyio
async def test_asyncio_uses_the_aiohttp_pool_with_tcp_nodelay_from_aiohttp() -> None:
    from httpx_aiohttp import HttpxAiohttpClient

    client = create_client(httpx.Timeout(5))
    try:
        assert isinstance(client, HttpxAiohttpClient)
    finally:
        await client.aclose()
