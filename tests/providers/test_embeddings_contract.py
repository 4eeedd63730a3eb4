"""What every embedding provider shares (providers/embeddings.py), the request contract
(schemas/embeddings.py), the door's normalisation of `input`, and the echo provider's embeddings."""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from asgi_llm_gateway.endpoints.embeddings import embedding_request
from asgi_llm_gateway.errors import GatewayError
from asgi_llm_gateway.providers import EchoProvider
from asgi_llm_gateway.providers import embeddings as module
from asgi_llm_gateway.providers.echo import ECHO_DIMENSIONS, echo_embedding
from asgi_llm_gateway.providers.embeddings import (
    decode_base64,
    encode_base64,
    gather_limited,
    input_texts,
    task_type_of,
)
from asgi_llm_gateway.schemas.embeddings import load_embeddings_request_schema, validate_embeddings_request
from tests.providers.embeddings_support import seed_tiktoken_cache

# -- base64 ----------------------------------------------------------------------------------------------


def test_base64_is_little_endian_float32() -> None:
    assert encode_base64([1.0]) == base64.b64encode(b"\x00\x00\x80\x3f").decode()
    vector = [0.1, -2.5, 3.0e-8, 1234.5]
    raw = base64.b64decode(encode_base64(vector))
    assert struct.unpack("<4f", raw) == pytest.approx(vector, rel=1e-7)


def test_base64_round_trip_is_exact_for_float32_values() -> None:
    vector = list(struct.unpack("<3f", struct.pack("<3f", 0.1, 0.2, -0.3)))
    assert decode_base64(encode_base64(vector)) == vector


# -- the request contract ----------------------------------------------------------------------------------

VALID: list[Any] = [
    {"model": "m", "input": "text"},
    {"model": "m", "input": ["a", "b"]},
    {"model": "m", "input": [1, 2, 3]},
    {"model": "m", "input": [[1, 2], [3]]},
    {"model": "m", "input": "x", "encoding_format": "base64", "dimensions": 256, "user": "u"},
    {"model": "m", "input": "x", "encoding_format": None, "dimensions": None, "user": None},
    {"model": "m", "input": "x", "input_type": "search_query", "task_type": "CLUSTERING"},
    {"model": "m", "input": "x", "some_new_openai_field": {"any": "thing"}},
    {"model": "m", "input": ["x"] * 2048},
]


@pytest.mark.parametrize("body", VALID)
def test_valid_requests(body: Any) -> None:
    validate_embeddings_request(body)


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"input": "x"}, "model", "missing_required_parameter"),
        ({"model": "m"}, "input", "missing_required_parameter"),
        ({"model": "m", "input": ""}, "input", "invalid_value"),
        ({"model": "m", "input": []}, "input", "invalid_value"),
        ({"model": "m", "input": [""]}, "input[0]", "invalid_value"),
        ({"model": "m", "input": ["a", ""]}, "input[1]", "invalid_value"),
        ({"model": "m", "input": [[]]}, "input[0]", "invalid_value"),
        ({"model": "m", "input": 5}, "input", "invalid_type"),
        ({"model": "m", "input": None}, "input", "invalid_type"),
        ({"model": "m", "input": ["a", 1]}, "input[1]", "invalid_type"),
        ({"model": "m", "input": [[1], 2]}, "input[1]", "invalid_type"),
        ({"model": "m", "input": [1, [2]]}, "input[1]", "invalid_type"),
        ({"model": "m", "input": [[1, 2.0]]}, "input[0][1]", "invalid_type"),
        ({"model": "m", "input": [1.0]}, "input[0]", "invalid_type"),
        ({"model": "m", "input": [-1]}, "input[0]", "invalid_value"),
        ({"model": "m", "input": [[True]]}, "input[0][0]", "invalid_type"),
        ({"model": "m", "input": ["x"] * 2049}, "input", "invalid_value"),
        ({"model": "m", "input": "x", "dimensions": 0}, "dimensions", "invalid_value"),
        ({"model": "m", "input": "x", "dimensions": 256.0}, "dimensions", "invalid_type"),
        ({"model": "m", "input": "x", "dimensions": "256"}, "dimensions", "invalid_type"),
        ({"model": "m", "input": "x", "encoding_format": "int8"}, "encoding_format", "invalid_value"),
        ({"model": "m", "input": "x", "input_type": "query"}, "input_type", "invalid_value"),
        ({"model": "m", "input": "x", "task_type": "retrieval_query"}, "task_type", "invalid_value"),
        ({"model": 7, "input": "x"}, "model", "invalid_type"),
    ],
)
def test_invalid_requests_name_the_field(body: Any, param: str, code: str) -> None:
    with pytest.raises(GatewayError) as caught:
        validate_embeddings_request(body)
    assert (caught.value.status, caught.value.param, caught.value.code) == (400, param, code)
    assert caught.value.message.startswith(param)


def test_regression_float_token_ids_are_refused_when_jsonschema_rs_says_valid() -> None:
    """jsonschema-rs counts 1.0 as an integer, so `[1.0, 2.0]` passed the fast check as one token array and
    went upstream; a token id must be a JSON integer."""
    with pytest.raises(GatewayError) as caught:
        validate_embeddings_request({"model": "m", "input": [1.0, 2.0]})
    assert caught.value.param == "input[0]"


def test_the_schema_is_a_fresh_copy() -> None:
    schema = load_embeddings_request_schema()
    schema["required"].append("x")
    assert load_embeddings_request_schema()["required"] == ["model", "input"]


@pytest.mark.parametrize(
    ("given", "sent"),
    [("a", ["a"]), (["a", "b"], ["a", "b"]), ([1, 2], [[1, 2]]), ([[1], [2]], [[1], [2]])],
)
def test_the_door_always_hands_providers_a_list(given: Any, sent: Any) -> None:
    body = {"model": "m", "input": given}
    assert embedding_request(body)["input"] == sent
    assert body["input"] == given


@pytest.mark.parametrize(
    ("request_", "task"),
    [
        ({"input_type": "search_document"}, "RETRIEVAL_DOCUMENT"),
        ({"input_type": "search_query"}, "RETRIEVAL_QUERY"),
        ({"input_type": "clustering", "task_type": "FACT_VERIFICATION"}, "FACT_VERIFICATION"),
        ({}, None),
    ],
)
def test_task_type(request_: dict[str, Any], task: str | None) -> None:
    assert task_type_of(request_) == task


# -- token arrays for text-only upstreams -----------------------------------------------------------------


@pytest.fixture
def cl100k(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(seed_tiktoken_cache(tmp_path)))
    module._token_encoding.cache_clear()
    yield
    module._token_encoding.cache_clear()


@pytest.mark.anyio
async def test_texts_pass_as_they_are() -> None:
    assert await input_texts({"input": ["a", "b"]}, "gemini") == ["a", "b"]


@pytest.mark.anyio
async def test_token_arrays_are_decoded_with_cl100k(cl100k: None) -> None:
    # "hello world" and "The food was delicious" in cl100k_base
    assert await input_texts({"input": [[15339, 1917], [791, 3691, 574, 18406]]}, "gemini") == [
        "hello world",
        "The food was delicious",
    ]


@pytest.mark.anyio
async def test_a_token_id_out_of_range_is_a_400_naming_its_input(cl100k: None) -> None:
    with pytest.raises(GatewayError) as caught:
        await input_texts({"input": [[15339], [999999999]]}, "gemini")
    assert (caught.value.status, caught.value.param) == (400, "input[1]")


@pytest.mark.anyio
async def test_without_the_encoding_token_arrays_are_a_400(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "_token_encoding", lambda: None)
    with pytest.raises(GatewayError) as caught:
        await input_texts({"input": [[15339]]}, "bedrock")
    assert (caught.value.status, caught.value.param) == (400, "input")
    assert "bedrock takes text" in caught.value.message


def test_a_failed_load_is_remembered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: a host without network must not retry a download on every request."""
    tiktoken = pytest.importorskip("tiktoken")
    calls: list[str] = []

    def fail(name: str) -> Any:
        calls.append(name)
        raise OSError("no network")

    monkeypatch.setattr(tiktoken, "get_encoding", fail)
    module._token_encoding.cache_clear()
    try:
        assert module._token_encoding() is None and module._token_encoding() is None
    finally:
        module._token_encoding.cache_clear()
    assert calls == ["cl100k_base"]


# -- running calls side by side ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_gather_limited_keeps_order_and_the_limit() -> None:
    running = 0
    most = 0

    async def call(value: int) -> int:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await anyio.sleep(0.001 * (10 - value))
        running -= 1
        return value

    calls = [lambda value=value: call(value) for value in range(10)]
    assert await gather_limited(calls, 3) == list(range(10))
    assert most == 3


@pytest.mark.anyio
async def test_gather_limited_raises_the_gateway_error_and_cancels_the_rest() -> None:
    finished: list[int] = []

    async def call(value: int) -> int:
        if value == 1:
            raise GatewayError("upstream said no", status=429)
        await anyio.sleep(1)
        finished.append(value)
        return value

    with pytest.raises(GatewayError) as caught:
        await gather_limited([lambda value=value: call(value) for value in range(4)], 4)
    assert caught.value.status == 429 and finished == []


# -- echo --------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_echo_embeddings_are_deterministic_unit_vectors() -> None:
    echo = EchoProvider()
    request = {"model": "echo/x", "input": ["the cat sat", "the cat sat", "stock markets fell", "   "]}
    answer = await echo.embed(request, "x")
    vectors = [item["embedding"] for item in answer["data"]]
    assert all(len(vector) == ECHO_DIMENSIONS for vector in vectors)
    assert all(math.isclose(sum(v * v for v in vector), 1.0) for vector in vectors)
    assert vectors[0] == vectors[1] == echo_embedding("the cat sat", ECHO_DIMENSIONS)
    assert answer["usage"] == {"prompt_tokens": 9, "total_tokens": 9}
    assert answer["model"] == "x"


@pytest.mark.anyio
async def test_echo_texts_that_share_words_are_closer() -> None:
    answer = await EchoProvider().embed(
        {
            "model": "m",
            "input": ["the cat sat on the mat", "a cat sat on a mat", "stock markets fell"],
            "dimensions": 512,
        },
        "m",
    )
    a, b, c = (item["embedding"] for item in answer["data"])
    assert len(a) == 512
    cosine = lambda x, y: sum(p * q for p, q in zip(x, y, strict=True))  # noqa: E731
    assert cosine(a, b) > cosine(a, c)
