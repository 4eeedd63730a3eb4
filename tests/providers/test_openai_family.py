"""Golden fixtures for the OpenAI-compatible family's per-provider quirks (pure translation, no network)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from asgi_llm_gateway.errors import GatewayError
from asgi_llm_gateway.providers import openai as family
from tests.support.golden import golden

QUIRKS = {
    "openai": family.OPENAI,
    "mistral": family.MISTRAL,
    "groq": family.GROQ,
    "deepseek": family.DEEPSEEK,
    "xai": family.XAI,
    "compatible": family.COMPATIBLE,
}


@pytest.mark.parametrize("fixture", golden("openai_family", "request"))
def test_request_golden(fixture: dict[str, Any]) -> None:
    request = fixture["request"]
    untouched = copy.deepcopy(request)
    body = family.build_request(
        request,
        fixture["model"],
        QUIRKS[fixture["provider"]],
        provider=fixture["provider"],
        stream=fixture["stream"],
    )
    expected = json.loads(
        json.dumps(fixture["expected"]).replace("SHORT", family.short_tool_id("call_abc123XYZ"))
    )
    assert body == expected
    assert request == untouched, "translation must not modify the client's request"


def test_short_tool_ids_are_9_alphanumerics_deterministic_and_keep_valid_ids() -> None:
    first = family.short_tool_id("call_0123456789abcdef")
    assert len(first) == 9 and first.isalnum()
    assert family.short_tool_id("call_0123456789abcdef") == first
    assert family.short_tool_id("call_0123456789abcdeg") != first
    assert family.short_tool_id("aB3dE6gH9") == "aB3dE6gH9"


@pytest.mark.parametrize(
    ("provider", "request_patch", "param"),
    [
        ("groq", {"n": 2}, "n"),
        ("groq", {"logprobs": True}, "logprobs"),
        ("mistral", {"logprobs": True}, "logprobs"),
        ("deepseek", {"modalities": ["text", "audio"]}, "modalities"),
        (
            "deepseek",
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}],
                    }
                ]
            },
            "messages[0].content[0].type",
        ),
    ],
)
def test_semantic_fields_an_upstream_lacks_are_400(
    provider: str, request_patch: dict[str, Any], param: str
) -> None:
    request = {"model": "x", "messages": [{"role": "user", "content": "hi"}], **request_patch}
    with pytest.raises(GatewayError) as caught:
        family.build_request(request, "m", QUIRKS[provider], provider=provider, stream=False)
    assert caught.value.status == 400
    assert caught.value.param == param
    assert caught.value.code == "unsupported_parameter"


def test_completion_normalisation_reasoning_finish_and_cache_usage() -> None:
    native = {
        "id": "x",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "hi", "reasoning": "think"},
                "finish_reason": "model_length",
            },
            {
                "index": 1,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                    ],
                },
                "finish_reason": "stop",
            },
        ],
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": 2,
            "total_tokens": 12,
            "prompt_cache_hit_tokens": 4,
        },
        "x_groq": {"id": "req"},
    }
    out = family.normalize_completion(native, "groq")
    assert out["choices"][0]["message"] == {
        "role": "assistant",
        "content": "hi",
        "reasoning_content": "think",
    }
    assert out["choices"][0]["finish_reason"] == "length"
    assert out["choices"][1]["finish_reason"] == "tool_calls"
    assert out["usage"]["prompt_tokens_details"] == {"cached_tokens": 4}
    assert "x_groq" not in out


def test_mistral_thinking_chunks_flatten_into_content_and_reasoning() -> None:
    native = {
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": [{"type": "text", "text": "let me see"}]},
                        {"type": "text", "text": "42"},
                    ],
                },
                "finish_reason": "stop",
            }
        ]
    }
    message = family.normalize_completion(native, "mistral")["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "42", "reasoning_content": "let me see"}


def test_chunk_normalisation() -> None:
    assert family.normalize_chunk({"choices": [], "prompt_filter_results": []}, "azure") is None
    usage_only = family.normalize_chunk({"choices": [], "usage": {"prompt_tokens": 1}}, "openai")
    assert usage_only == {"choices": [], "usage": {"prompt_tokens": 1}}
    chunk = family.normalize_chunk(
        {"choices": [{"index": 0, "delta": {"reasoning": "r"}, "finish_reason": None}]}, "groq"
    )
    assert chunk is not None and chunk["choices"][0]["delta"] == {"reasoning_content": "r"}
    with pytest.raises(GatewayError) as caught:
        family.normalize_chunk({"choices": [], "x_groq": {"error": "boom"}}, "groq")
    assert caught.value.status == 502
    with pytest.raises(GatewayError):
        family.normalize_chunk({"choices": [{"index": 0, "delta": {}, "finish_reason": "error"}]}, "mistral")
    with pytest.raises(GatewayError):
        family.normalize_chunk(["not", "an", "object"], "openai")


def test_usage_on_the_finishing_chunk_is_split_into_openais_usage_chunk() -> None:
    chunk = {
        "id": "c",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3},
    }
    content, usage = family.split_usage(chunk)
    assert content["usage"] is None and content["choices"] == chunk["choices"]
    assert usage["choices"] == [] and usage["usage"] == {"prompt_tokens": 3}
