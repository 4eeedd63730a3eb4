"""The OpenAI family's embeddings translation (golden fixtures, compared exactly), its checks of the
upstream's answer, and the provider's I/O (httpx.MockTransport): URLs, token arrays kept or decoded."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from asgi_llm_gateway.errors import GatewayError
from asgi_llm_gateway.providers import (
    AzureOpenAIProvider,
    DeepSeekProvider,
    GroqProvider,
    MistralProvider,
    OpenAICompatibleProvider,
    OpenAIProvider,
    XAIProvider,
)
from asgi_llm_gateway.providers.openai import _quirks
from asgi_llm_gateway.providers.openai._embeddings import embeddings_answer, embeddings_body
from tests.support.golden import golden

KEY = "sk-test-embeddings-0000000000"


@pytest.mark.parametrize("case", golden("openai_family", "embeddings/request"))
def test_request_translation(case: dict[str, Any]) -> None:
    frozen = json.dumps(case["request"])
    quirks = getattr(_quirks, case["quirks"])
    assert embeddings_body(case["request"], case["model"], quirks, case["texts"]) == case["native"]
    assert json.dumps(case["request"]) == frozen  # the request is read-only: fallback targets share it


@pytest.mark.parametrize("case", golden("openai_family", "embeddings/response"))
def test_answer_translation(case: dict[str, Any]) -> None:
    assert embeddings_answer(case["native"], case["model"], case["count"], "openai") == case["openai"]


@pytest.mark.parametrize(
    ("native", "count"),
    [
        ({"data": [{"index": 0, "embedding": [0.1]}]}, 2),  # a vector missing
        ({"data": [{"index": 0, "embedding": [0.1]}, {"index": 0, "embedding": [0.2]}]}, 2),  # same index
        ({"data": [{"index": 5, "embedding": [0.1]}]}, 1),  # an index out of range
        ({"data": [{"index": 0, "embedding": "AAAAAA=="}]}, 1),  # base64 though floats were asked for
        ({"data": [{"index": 0, "embedding": []}]}, 1),
        ({"data": [{"index": 0, "embedding": [0.1, "x"]}]}, 1),
        ({"data": [{"index": 0, "embedding": [True]}]}, 1),
        ({"data": [{"index": 0, "embedding": [1e400]}]}, 1),  # an infinity
        ({"data": "nope"}, 1),
        (["not", "an", "object"], 1),
    ],
)
def test_a_malformed_answer_is_a_502(native: Any, count: int) -> None:
    with pytest.raises(GatewayError) as caught:
        embeddings_answer(native, "m", count, "openai")
    assert caught.value.status == 502 and caught.value.code == "upstream_bad_response"


def test_which_rows_embed() -> None:
    embeds = {cls.kind: cls(api_key=KEY).embeds("any") for cls in (
        OpenAIProvider, AzureOpenAIProvider, MistralProvider, OpenAICompatibleProvider, GroqProvider,
        DeepSeekProvider, XAIProvider,
    )}  # fmt: skip
    assert embeds == {
        "openai": True,
        "azure": True,
        "mistral": True,
        "openai-compatible": True,
        "groq": False,
        "deepseek": False,
        "xai": False,
    }


def answer_for(seen: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = json.loads(request.content)
        data = [
            {"object": "embedding", "index": i, "embedding": [0.5, 0.5]} for i in range(len(body["input"]))
        ]
        return httpx.Response(200, json={"object": "list", "data": data, "usage": {"prompt_tokens": 3}})

    return httpx.MockTransport(handler)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("base_url", "api_version", "url"),
    [
        ("https://r.openai.azure.com", "2024-10-21",
         "https://r.openai.azure.com/openai/deployments/my%2Fdeploy/embeddings?api-version=2024-10-21"),
        ("https://r.openai.azure.com", None, "https://r.openai.azure.com/openai/v1/embeddings"),
        ("https://r.openai.azure.com/openai/v1", "2024-10-21", "https://r.openai.azure.com/openai/v1/embeddings"),
    ],
)  # fmt: skip
async def test_azure_embeddings_urls(base_url: str, api_version: str | None, url: str) -> None:
    seen: list[httpx.Request] = []
    async with httpx.AsyncClient(transport=answer_for(seen)) as client:
        azure = AzureOpenAIProvider(api_key=KEY, base_url=base_url, api_version=api_version, client=client)
        answer = await azure.embed({"model": "x", "input": ["hi"]}, "my/deploy")
    assert str(seen[0].url) == url and seen[0].headers["api-key"] == KEY
    assert answer["usage"] == {"prompt_tokens": 3, "total_tokens": 3}


@pytest.mark.anyio
async def test_a_provider_without_embeddings_refuses_before_any_call() -> None:
    seen: list[httpx.Request] = []
    async with httpx.AsyncClient(transport=answer_for(seen)) as client:
        groq = GroqProvider(api_key=KEY, client=client)
        with pytest.raises(GatewayError) as caught:
            await groq.embed({"model": "x", "input": ["hi"]}, "llama")
    assert caught.value.code == "embeddings_not_supported" and seen == []
