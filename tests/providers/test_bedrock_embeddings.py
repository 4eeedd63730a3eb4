"""Bedrock's embeddings translation (golden fixtures, compared exactly) and the provider's I/O
(httpx.MockTransport): Titan one text per call, Cohere 96 per call, sizes refused before any call."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from asgi_llm_gateway.errors import GatewayError
from asgi_llm_gateway.providers import BedrockProvider
from asgi_llm_gateway.providers.bedrock._embeddings import (
    cohere_body,
    cohere_vectors,
    embedding_family,
    titan_body,
    titan_vector,
)
from tests.support.golden import golden

API_KEY = "ABSKQmVkcm9ja0FQSUtleS1lbWJlZGRpbmdzLXRlc3Q="


@pytest.mark.parametrize("case", golden("bedrock", "embeddings/request"))
def test_request_translation(case: dict[str, Any]) -> None:
    if embedding_family(case["model"]) == "titan":
        assert titan_body(case["texts"][0], case["request"], case["model"]) == case["bedrock"]
    else:
        assert cohere_body(case["texts"], case["request"], case["model"]) == case["bedrock"]


@pytest.mark.parametrize("case", golden("bedrock", "embeddings/response"))
def test_answer_translation(case: dict[str, Any]) -> None:
    if embedding_family(case["model"]) == "titan":
        vector, tokens = titan_vector(case["bedrock"])
        found = ([vector], tokens)
    else:
        found = cohere_vectors(case["bedrock"], case["count"], case["headers"])
    assert found == (case["vectors"], case["prompt_tokens"])


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("amazon.titan-embed-text-v2:0", "titan"),
        ("amazon.titan-embed-text-v1", "titan"),
        ("arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0", "titan"),
        ("cohere.embed-english-v3", "cohere"),
        ("us.cohere.embed-v4:0", "cohere"),
        ("amazon.titan-embed-image-v1", None),
        ("amazon.nova-pro-v1:0", None),
        ("cohere.command-r-v1:0", None),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", None),
    ],
)
def test_which_models_embed(model: str, family: str | None) -> None:
    assert embedding_family(model) == family


@pytest.mark.parametrize(
    ("model", "dimensions"),
    [
        ("amazon.titan-embed-text-v2:0", 300),
        ("amazon.titan-embed-text-v1", 1536),
        ("cohere.embed-v4:0", 2048),
        ("cohere.embed-english-v3", 256),
    ],
)
def test_a_size_the_model_lacks_is_a_400_naming_dimensions(model: str, dimensions: int) -> None:
    request = {"model": "x", "input": ["a"], "dimensions": dimensions}
    with pytest.raises(GatewayError) as caught:
        if embedding_family(model) == "titan":
            titan_body("a", request, model)
        else:
            cohere_body(["a"], request, model)
    assert (caught.value.status, caught.value.param) == (400, "dimensions")


@pytest.mark.parametrize(
    "answer",
    [{}, {"embeddings": {"int8": [[1]]}}, {"embeddings": [[0.1], [0.2]]}, {"embeddings": {"float": [["x"]]}}],
)
def test_a_malformed_cohere_answer_is_a_502(answer: Any) -> None:
    with pytest.raises(GatewayError) as caught:
        cohere_vectors(answer, 1, {})
    assert caught.value.status == 502


def provider(handler: Any) -> BedrockProvider:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return BedrockProvider(api_key=API_KEY, region="us-east-1", client=client)


@pytest.mark.anyio
async def test_cohere_sends_96_texts_per_call_and_counts_tokens_from_the_header() -> None:
    sizes: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/model/cohere.embed-english-v3/invoke"
        texts = json.loads(request.content)["texts"]
        sizes.append(len(texts))
        vectors = [[float(text)] for text in texts]
        headers = {"X-Amzn-Bedrock-Input-Token-Count": str(len(texts))}
        return httpx.Response(200, json={"embeddings": {"float": vectors}}, headers=headers)

    texts = [str(number) for number in range(200)]
    answer = await provider(handler).embed({"model": "x", "input": texts}, "cohere.embed-english-v3")
    assert sizes == [96, 96, 8]
    assert [item["embedding"] for item in answer["data"]] == [[float(text)] for text in texts]
    assert answer["usage"]["prompt_tokens"] == 200


@pytest.mark.anyio
async def test_titan_keeps_input_order_across_concurrent_calls() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        text = json.loads(request.content)["inputText"]
        return httpx.Response(200, json={"embedding": [float(text)], "inputTextTokenCount": 2})

    texts = [str(number) for number in range(20)]
    answer = await provider(handler).embed({"model": "x", "input": texts}, "amazon.titan-embed-text-v2:0")
    assert [item["embedding"] for item in answer["data"]] == [[float(text)] for text in texts]
    assert answer["usage"] == {"prompt_tokens": 40, "total_tokens": 40}


@pytest.mark.anyio
async def test_one_failing_titan_call_fails_the_request_with_its_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["inputText"] == "7":
            return httpx.Response(
                429, json={"message": "slow down"}, headers={"x-amzn-ErrorType": "ThrottlingException"}
            )
        return httpx.Response(200, json={"embedding": [1.0], "inputTextTokenCount": 1})

    with pytest.raises(GatewayError) as caught:
        await provider(handler).embed(
            {"model": "x", "input": [str(n) for n in range(10)]}, "amazon.titan-embed-text-v2:0"
        )
    assert caught.value.status == 429 and "ThrottlingException" in caught.value.message


@pytest.mark.anyio
async def test_a_chat_model_is_refused_before_any_call() -> None:
    def handler(request: httpx.Request) -> httpx.Response:  # pragma: no cover - must not be called
        raise AssertionError("called")

    with pytest.raises(GatewayError) as caught:
        await provider(handler).embed({"model": "x", "input": ["a"]}, "amazon.nova-pro-v1:0")
    assert caught.value.code == "embeddings_not_supported"
