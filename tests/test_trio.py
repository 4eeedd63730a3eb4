"""The gateway is anyio code: it runs under trio too, with httpx's own pool as the upstream transport."""

from __future__ import annotations

import httpx
import pytest

from asgi_llm_gateway import Gateway
from asgi_llm_gateway.providers import OpenAIProvider
from tests.fakes.openai import KEY, FakeOpenAI
from tests.support.server import serve

BODY = {"model": "up/m", "messages": [{"role": "user", "content": "hello trio"}]}


@pytest.mark.parametrize("anyio_backend", ["trio"])
@pytest.mark.anyio
async def test_gateway_under_trio_calls_an_upstream(anyio_backend: str) -> None:
    fake = FakeOpenAI()
    with serve(fake.app()) as upstream:
        provider = OpenAIProvider(api_key=KEY, base_url=upstream + "/v1")
        async with Gateway(providers={"up": provider}) as gateway:
            transport = httpx.ASGITransport(app=gateway)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                response = await client.post("/v1/chat/completions", json=BODY)
                assert response.status_code == 200
                assert response.json()["choices"][0]["message"]["content"] == "hello trio"
                streamed = await client.post("/v1/chat/completions", json={**BODY, "stream": True})
                assert streamed.text.endswith("data: [DONE]\n\n")
            assert type(provider.client) is httpx.AsyncClient  # not the aiohttp-backed client
    assert len(fake.requests) == 2
