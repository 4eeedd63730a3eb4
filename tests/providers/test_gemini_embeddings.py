"""Gemini's embeddings translation (golden fixtures, compared exactly) and the provider's I/O
(httpx.MockTransport): one text to embedContent, more in batches of 100 kept in order, errors."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from asgi_llm_gateway.errors import GatewayError
from asgi_llm_gateway.providers import GeminiProvider
from asgi_llm_gateway.providers.gemini._embeddings import (
    batch_body,
    batch_vectors,
    content_body,
    content_vector,
)
from tests.support.golden import golden

KEY = "AIzaSyTEST-embeddings-key-00000000000"


@pytest.mark.parametrize("case", golden("gemini", "embeddings/request"))
def test_request_translation(case: dict[str, Any]) -> None:
    if case["method"] == "embedContent":
        assert content_body(case["texts"][0], case["request"]) == case["gemini"]
    else:
        assert batch_body(case["texts"], case["request"], case["resource"]) == case["gemini"]


@pytest.mark.parametrize("case", golden("gemini", "embeddings/response"))
def test_answer_translation(case: dict[str, Any]) -> None:
    if case["method"] == "embedContent":
        vector, tokens = content_vector(case["gemini"])
        found = ([vector], tokens)
    else:
        found = batch_vectors(case["gemini"], case["count"])
    assert found == (case["vectors"], case["prompt_tokens"])


@pytest.mark.parametrize(
    "answer", [{}, {"embedding": {"values": []}}, {"embedding": {"values": ["x"]}}, {"embedding": [1.0]}]
)
def test_a_malformed_embed_content_answer_is_a_502(answer: Any) -> None:
    with pytest.raises(GatewayError) as caught:
        content_vector(answer)
    assert caught.value.status == 502


def test_a_batch_answer_with_too_few_embeddings_is_a_502() -> None:
    with pytest.raises(GatewayError) as caught:
        batch_vectors({"embeddings": [{"values": [1.0]}]}, 2)
    assert caught.value.status == 502


def provider(handler: Any) -> GeminiProvider:
    return GeminiProvider(api_key=KEY, client=httpx.AsyncClient(transport=httpx.MockTransport(handler)))


def test_only_embedding_models_embed() -> None:
    gemini = GeminiProvider(api_key=KEY)
    assert gemini.embeds("gemini-embedding-001") and gemini.embeds("text-embedding-004")
    assert not gemini.embeds("gemini-3-flash")


@pytest.mark.anyio
async def test_250_texts_go_in_three_batches_and_come_back_in_order() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1beta/models/text-embedding-004:batchEmbedContents"
        body = json.loads(request.content)
        seen.append(body)
        values = [{"values": [float(item["content"]["parts"][0]["text"])]} for item in body["requests"]]
        return httpx.Response(200, json={"embeddings": values})

    texts = [str(number) for number in range(250)]
    answer = await provider(handler).embed({"model": "x", "input": texts}, "text-embedding-004")
    assert [item["embedding"] for item in answer["data"]] == [[float(text)] for text in texts]
    assert [item["index"] for item in answer["data"]] == list(range(250))
    assert sorted(len(body["requests"]) for body in seen) == [50, 100, 100]
    assert answer["usage"] == {"prompt_tokens": 0, "total_tokens": 0}


@pytest.mark.anyio
async def test_an_error_object_in_a_200_is_raised() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}}
        )

    with pytest.raises(GatewayError) as caught:
        await provider(handler).embed({"model": "x", "input": ["a"]}, "gemini-embedding-001")
    assert caught.value.status == 429


@pytest.mark.anyio
async def test_one_failing_batch_fails_the_call() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if body["requests"][0]["content"]["parts"][0]["text"] == "100":
            return httpx.Response(
                503, json={"error": {"code": 503, "message": "busy", "status": "UNAVAILABLE"}}
            )
        return httpx.Response(200, json={"embeddings": [{"values": [1.0]} for _ in body["requests"]]})

    with pytest.raises(GatewayError) as caught:
        await provider(handler).embed(
            {"model": "x", "input": [str(n) for n in range(150)]}, "gemini-embedding-001"
        )
    assert caught.value.status == 503


@pytest.mark.anyio
async def test_a_generative_model_is_refused_before_any_call() -> None:
    def handler(request: httpx.Request) -> httpx.Response:  # pragma: no cover - must not be called
        raise AssertionError("called")

    with pytest.raises(GatewayError) as caught:
        await provider(handler).embed({"model": "x", "input": ["a"]}, "gemini-3-flash")
    assert caught.value.code == "embeddings_not_supported"


@pytest.mark.anyio
async def test_embedding_models_are_listed_apart() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        models = [
            {
                "name": "models/gemini-3-flash",
                "supportedGenerationMethods": ["generateContent", "countTokens"],
            },
            {"name": "models/gemini-embedding-001", "supportedGenerationMethods": ["embedContent"]},
        ]
        return httpx.Response(200, json={"models": models})

    assert await provider(handler).list_models() == ["gemini-3-flash"]
    assert await provider(handler).list_embedding_models() == ["gemini-embedding-001"]
    configured = GeminiProvider(api_key=KEY, models=["gemini-x"])
    assert await configured.list_embedding_models() == []
