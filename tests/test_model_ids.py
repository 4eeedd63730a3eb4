"""The model-id rule and the one-segment encoding every provider uses to put an id into a URL."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from asgi_llm_gateway.errors import GatewayError
from asgi_llm_gateway.model_ids import MAX_MODEL_ID_LENGTH, check_model_id, path_segment

REAL_IDS = [
    "openai/gpt-4.1",
    "bedrock/anthropic.claude-3-haiku-20240307-v1:0",
    "bedrock/arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20241022-v2:0",
    "local/hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
    "gemini/models/gemini-2.5-flash",
    "vertex/claude-sonnet-4-5@20250929",
    "smart",
    "a/...",  # three dots are a name, not a dot segment
]


@pytest.mark.parametrize("model", REAL_IDS)
def test_real_model_ids_pass(model: str) -> None:
    check_model_id(model)


@pytest.mark.parametrize(
    "model",
    [
        "",
        "a b",
        "m\r\nx: 1",
        "m\x7f",
        "caf\u00e9",
        "x" * (MAX_MODEL_ID_LENGTH + 1),
        "a/..",
        "a/./b",
        "..",
        "./x",
    ],
    ids=repr,
)
def test_model_ids_that_could_break_headers_or_urls_are_a_400_naming_model(model: str) -> None:
    with pytest.raises(GatewayError) as caught:
        check_model_id(model)
    assert (caught.value.status, caught.value.param, caught.value.code) == (400, "model", "invalid_model_id")


def test_the_param_named_is_the_callers() -> None:
    with pytest.raises(GatewayError) as caught:
        check_model_id("a b", param="input.model")
    assert caught.value.param == "input.model"


@pytest.mark.parametrize(
    ("value", "segment"),
    [
        ("gpt-4.1", "gpt-4.1"),
        ("anthropic.claude-v2:1", "anthropic.claude-v2%3A1"),
        ("a/b?c#d%2F", "a%2Fb%3Fc%23d%252F"),
        ("...", "..."),
    ],
)
def test_path_segment_encodes_everything_that_could_end_a_segment(value: str, segment: str) -> None:
    assert path_segment(value) == segment


@pytest.mark.parametrize("value", ["", ".", ".."])
def test_path_segment_refuses_what_a_url_parser_would_resolve(value: str) -> None:
    with pytest.raises(GatewayError):
        path_segment(value)


@pytest.mark.parametrize(
    "value",
    [
        "gpt-4.1",
        "anthropic.claude-3-haiku-20240307-v1:0",
        "llama3.2:latest",
        "a~b_c",
        "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.x",
        "org/name",
        "a+b=c",
        "a:b%3A",
        "ü:1",
        "x\n:y",
        *(chr(c) + ":" for c in range(0x21, 0x7F)),
    ],
)
def test_path_segment_of_a_plain_id_is_what_quote_makes(value: str) -> None:
    """Ids of unreserved characters and `:` skip `quote`; every id must still come out as `quote` makes it."""
    assert path_segment(value) == quote(value, safe="")
