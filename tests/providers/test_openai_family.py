"""Golden fixtures for the OpenAI-compatible family's per-provider quirks (pure translation, no network)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from asgi_llm_gateway.errors import GatewayError
from asgi_llm_gateway.providers import openai as family
from tests.support.golden import golden
from tests.support.openai_spec import assert_valid

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
    body = family.to_native(
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
        family.to_native(request, "m", QUIRKS[provider], provider=provider, stream=False)
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
    out = family.to_completion(native, "groq")
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
    message = family.to_completion(native, "mistral")["choices"][0]["message"]
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


def test_the_stream_translator_reads_up_to_done_and_splits_usage() -> None:
    translator = family.StreamTranslator("groq")
    assert translator.feed(b"  ") == []
    text = json.dumps({"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}]}).encode()
    [chunk] = translator.feed(text)
    assert chunk["object"] == "chat.completion.chunk" and chunk["choices"][0]["delta"] == {"content": "hi"}
    last = {
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        "x_groq": {"usage": {"prompt_tokens": 3}},
    }
    content, usage = translator.feed(json.dumps(last).encode())
    assert content["usage"] is None and content["choices"][0]["finish_reason"] == "stop"
    assert usage["choices"] == [] and usage["usage"] == {"prompt_tokens": 3}
    assert not translator.done
    assert translator.feed(b"[DONE]") == []
    assert translator.done
    assert translator.feed(text) == [], "nothing is read after [DONE]"
    assert translator.end() == []


def test_the_stream_translator_refuses_events_that_are_not_json() -> None:
    with pytest.raises(GatewayError) as caught:
        family.StreamTranslator("openai").feed(b"{not json")
    assert caught.value.status == 502
    assert caught.value.code == "upstream_bad_response"


# -- tool calls in OpenAI's exact shape (issue 12) -------------------------------------------------------


def _completion(*calls: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "refusal": None, "tool_calls": list(calls)},
                "finish_reason": "tool_calls",
            }
        ],
    }


def _chunk(delta: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "x",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
    }


def test_mistral_tool_calls_come_back_with_type_function() -> None:
    """Mistral's answer: no `type`, and an `index` although this is not a stream."""
    native = _completion(
        {"id": "D681PevKs", "function": {"name": "lookup", "arguments": '{"q": "cats"}'}, "index": 0},
        {"id": "aB3dE6gH9", "function": {"name": "other", "arguments": "{}"}, "index": 1},
    )
    out = family.to_completion(native, "mistral")
    assert out["choices"][0]["message"]["tool_calls"] == [
        {"id": "D681PevKs", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "cats"}'}},
        {"id": "aB3dE6gH9", "type": "function", "function": {"name": "other", "arguments": "{}"}},
    ]
    assert_valid("CreateChatCompletionResponse", out)


def test_mistral_streamed_tool_calls_come_back_with_type_function() -> None:
    """Mistral streams each call whole, with its `index` and without `type`: `type` is added where the
    `id` is, `index` stays (chunks require it)."""
    mistral = {"id": "D681PevKs", "function": {"name": "f", "arguments": "{}"}, "index": 0}
    chunk = family.normalize_chunk(_chunk({"tool_calls": [mistral]}), "mistral")
    assert chunk is not None
    assert chunk["choices"][0]["delta"]["tool_calls"] == [
        {"id": "D681PevKs", "type": "function", "function": {"name": "f", "arguments": "{}"}, "index": 0}
    ]
    assert_valid("CreateChatCompletionStreamResponse", chunk)


def test_continuation_fragments_and_chunks_without_tool_calls_are_left_as_they_are() -> None:
    continuation = {"index": 0, "function": {"arguments": '"}'}}
    chunk = family.normalize_chunk(_chunk({"tool_calls": [dict(continuation)]}), "openai")
    assert chunk is not None and chunk["choices"][0]["delta"]["tool_calls"] == [continuation]
    text = family.normalize_chunk(_chunk({"content": "hi"}), "openai")
    assert text is not None and text["choices"][0]["delta"] == {"content": "hi"}


def test_tool_calls_already_in_openais_shape_are_unchanged() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    out = family.to_completion(_completion(copy.deepcopy(call)), "openai")
    assert out["choices"][0]["message"]["tool_calls"] == [call]
    opening = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}
    chunk = family.normalize_chunk(_chunk({"tool_calls": [dict(opening)]}), "openai")
    assert chunk is not None and chunk["choices"][0]["delta"]["tool_calls"] == [opening]


def test_tool_calls_missing_an_id_or_with_object_arguments_are_completed() -> None:
    out = family.to_completion(
        _completion(
            {"type": None, "function": {"name": "f", "arguments": {"q": "x"}}},
            {"id": "", "function": {"name": "g"}},
        ),
        "openai-compatible",
    )
    first, second = out["choices"][0]["message"]["tool_calls"]
    assert first["id"].startswith("call_") and second["id"].startswith("call_")
    assert first["id"] != second["id"]
    assert first["type"] == second["type"] == "function"
    assert json.loads(first["function"]["arguments"]) == {"q": "x"}
    assert second["function"]["arguments"] == "{}"
    assert_valid("CreateChatCompletionResponse", out)


def test_openais_custom_tool_calls_pass_through() -> None:
    call = {"id": "call_1", "type": "custom", "custom": {"name": "grammar", "input": "x"}}
    out = family.to_completion(_completion(copy.deepcopy(call)), "openai")
    assert out["choices"][0]["message"]["tool_calls"] == [call]


@pytest.mark.parametrize(
    "tool_calls",
    [{"id": "a"}, ["not an object"], [{"id": "a", "function": {"arguments": "{}"}}]],
    ids=["not-a-list", "not-an-object", "no-name"],
)
def test_malformed_tool_calls_are_a_502(tool_calls: Any) -> None:
    native = _completion()
    native["choices"][0]["message"]["tool_calls"] = tool_calls
    with pytest.raises(GatewayError) as caught:
        family.to_completion(native, "mistral")
    assert caught.value.status == 502
