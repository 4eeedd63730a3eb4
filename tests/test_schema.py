"""The chat-completions request schema: what it accepts, what it rejects, and how it says so."""

from __future__ import annotations

import copy
import json
import re
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import openai
import pydantic
import pytest
import typing_extensions
from jsonschema import Draft202012Validator
from openai.lib._parsing._completions import type_to_response_format_param
from openai.types.chat import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionContentPartImageParam,
    ChatCompletionContentPartInputAudioParam,
    ChatCompletionMessageParam,
    completion_create_params,
)
from openai.types.chat.chat_completion_audio_param import ChatCompletionAudioParam
from openai.types.chat.chat_completion_content_part_param import ChatCompletionContentPartParam

from asgi_llm_gateway import schemas
from asgi_llm_gateway.errors import GatewayError
from asgi_llm_gateway.schemas import load_chat_request_schema, parse_json_body, validate_chat_request

FIXTURES = Path(__file__).parent / "fixtures" / "schema"

USER = {"role": "user", "content": "What is the weather in Paris?"}
BASE: dict[str, Any] = {"model": "openai/gpt-4.1", "messages": [USER]}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
TOOL_CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
}


@pytest.fixture(params=["jsonschema", "jsonschema-rs"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the pure-Python validator alone, and with jsonschema-rs answering valid bodies."""
    if request.param == "jsonschema":
        monkeypatch.setattr(schemas, "_fast_check", lambda: None)
    else:
        assert schemas._fast_check() is not None
    return str(request.param)


def with_fields(**fields: Any) -> dict[str, Any]:
    return {**BASE, **fields}


def with_messages(*messages: Any) -> dict[str, Any]:
    return {**BASE, "messages": list(messages)}


def rejection(body: object) -> GatewayError:
    with pytest.raises(GatewayError) as info:
        validate_chat_request(body)
    return info.value


# ---------------------------------------------------------------------------------------------------------
# The schema file itself


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = load_chat_request_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def test_schema_lists_exactly_the_sdk_request_fields() -> None:
    hints = typing_extensions.get_type_hints(completion_create_params.CompletionCreateParamsStreaming)
    assert set(load_chat_request_schema()["properties"]) == set(hints)
    assert load_chat_request_schema()["required"] == ["model", "messages"]


def literal_strings(hint: Any) -> set[str]:
    """The strings a type hint's Literals allow, through Optional and Union."""
    if typing.get_origin(hint) is typing.Literal:
        return {v for v in typing.get_args(hint) if isinstance(v, str)}
    return set().union(*(literal_strings(arg) for arg in typing.get_args(hint)))


def sdk_literals(typed_dict: Any, key: str) -> set[str]:
    """The string values a TypedDict field allows, as the openai SDK declares them."""
    return literal_strings(typing_extensions.get_type_hints(typed_dict)[key])


def union_literals(union: Any, key: str) -> set[str]:
    return set().union(*(sdk_literals(member, key) for member in typing.get_args(union)))


def enum_at(pointer: str) -> set[str]:
    node: Any = load_chat_request_schema()
    for part in pointer.split("/"):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return {v for v in node["enum"] if v is not None}


@pytest.mark.parametrize(
    ("pointer", "sdk_values"),
    [
        ("$defs/message/properties/role", lambda: union_literals(ChatCompletionMessageParam, "role")),
        (
            "$defs/user_content_part/properties/type",
            lambda: union_literals(ChatCompletionContentPartParam, "type"),
        ),
        (
            "$defs/assistant_content_part/properties/type",
            lambda: (
                {"text", "refusal"}
                | union_literals(
                    typing.get_args(
                        typing_extensions.get_type_hints(ChatCompletionAssistantMessageParam)["content"]
                    )[1].__args__[0],
                    "type",
                )
            ),
        ),
        (
            "properties/reasoning_effort",
            lambda: sdk_literals(completion_create_params.CompletionCreateParamsBase, "reasoning_effort"),
        ),
        (
            "properties/service_tier",
            lambda: sdk_literals(completion_create_params.CompletionCreateParamsBase, "service_tier"),
        ),
        (
            "properties/verbosity",
            lambda: sdk_literals(completion_create_params.CompletionCreateParamsBase, "verbosity"),
        ),
        (
            "properties/prompt_cache_retention",
            lambda: sdk_literals(
                completion_create_params.CompletionCreateParamsBase, "prompt_cache_retention"
            ),
        ),
        ("properties/audio/properties/format", lambda: sdk_literals(ChatCompletionAudioParam, "format")),
        (
            "$defs/user_content_part/else/then/properties/image_url/properties/detail",
            lambda: sdk_literals(
                typing_extensions.get_type_hints(ChatCompletionContentPartImageParam)["image_url"], "detail"
            ),
        ),
        (
            "$defs/user_content_part/else/else/then/properties/input_audio/properties/format",
            lambda: sdk_literals(
                typing_extensions.get_type_hints(ChatCompletionContentPartInputAudioParam)["input_audio"],
                "format",
            ),
        ),
    ],
)
def test_enums_match_the_sdk(pointer: str, sdk_values: typing.Callable[[], set[str]]) -> None:
    assert enum_at(pointer) == sdk_values()


# ---------------------------------------------------------------------------------------------------------
# Good values of every field

GOOD_FIELDS: list[dict[str, Any]] = [
    {"model": "x"},
    {"model": "anthropic/claude-sonnet-4-5"},
    {"temperature": 0},
    {"temperature": 2},
    {"temperature": 0.7},
    {"top_p": 0},
    {"top_p": 1},
    {"top_p": 0.95},
    {"n": 1},
    {"n": 128},
    {"stop": "END"},
    {"stop": ["a", "b", "c", "d"]},
    {"stop": []},
    {"max_tokens": 1},
    {"max_tokens": 4096},
    {"max_completion_tokens": 1},
    {"max_completion_tokens": 100_000},
    {"seed": 0},
    {"seed": -(2**63)},
    {"seed": 2**63 - 1},
    {"presence_penalty": -2},
    {"presence_penalty": 2},
    {"frequency_penalty": -2},
    {"frequency_penalty": 0.5},
    {"logit_bias": {}},
    {"logit_bias": {"50256": -100, "1": 100, "42": 0}},
    {"logprobs": True},
    {"logprobs": False},
    {"logprobs": True, "top_logprobs": 0},
    {"logprobs": True, "top_logprobs": 20},
    {"user": "user-1234"},
    {"safety_identifier": "x" * 128},
    {"prompt_cache_key": "tenant-7"},
    {"prompt_cache_options": {}},
    {"prompt_cache_options": {"mode": "implicit"}},
    {"prompt_cache_options": {"mode": "explicit", "ttl": "30m"}},
    {"prompt_cache_retention": "in_memory"},
    {"prompt_cache_retention": "24h"},
    {"stream": True},
    {"stream": False},
    {"stream": True, "stream_options": {}},
    {"stream": True, "stream_options": {"include_usage": True, "include_obfuscation": False}},
    *({"reasoning_effort": v} for v in ["none", "minimal", "low", "medium", "high", "xhigh", "max"]),
    *({"verbosity": v} for v in ["low", "medium", "high"]),
    {"metadata": {}},
    {"metadata": {f"key{i}": "v" for i in range(16)}},
    {"metadata": {"k" * 64: "v" * 512}},
    {"store": True},
    *({"service_tier": v} for v in ["auto", "default", "flex", "scale", "priority", "fast"]),
    {"modalities": ["text"]},
    {"modalities": ["text", "audio"], "audio": {"format": "wav", "voice": "alloy"}},
    *({"audio": {"format": f, "voice": "marin"}} for f in ["wav", "aac", "mp3", "flac", "opus", "pcm16"]),
    {"audio": {"format": "mp3", "voice": {"id": "voice_custom_1"}}},
    {"prediction": {"type": "content", "content": "def f():\n    return 1\n"}},
    {"prediction": {"type": "content", "content": [{"type": "text", "text": "x = 1"}]}},
    {"web_search_options": {}},
    {"web_search_options": {"search_context_size": "low"}},
    {"web_search_options": {"user_location": None}},
    {
        "web_search_options": {
            "search_context_size": "high",
            "user_location": {
                "type": "approximate",
                "approximate": {
                    "city": "Paris",
                    "country": "FR",
                    "region": "IDF",
                    "timezone": "Europe/Paris",
                },
            },
        }
    },
    {"moderation": {"model": "omni-moderation-latest"}},
    {"moderation": {"model": "omni-moderation-latest", "policy": None}},
    {"moderation": {"model": "m", "policy": {"input": {"mode": "score"}, "output": {"mode": "block"}}}},
    {"moderation": {"model": "m", "policy": {"input": None, "output": None}}},
    {"tools": []},
    {"tools": [{"type": "function", "function": {"name": "ping"}}]},
    {"tools": [WEATHER_TOOL, {"type": "function", "function": {"name": "a-B_9" * 12 + "abcd"}}]},
    {"tools": [{"type": "function", "function": {"name": "f", "strict": None, "parameters": {}}}]},
    {"tools": [{"type": "custom", "custom": {"name": "code_exec"}}]},
    {"tools": [{"type": "custom", "custom": {"name": "c", "description": "d", "format": {"type": "text"}}}]},
    *(
        {
            "tools": [
                {
                    "type": "custom",
                    "custom": {
                        "name": "sql",
                        "format": {"type": "grammar", "grammar": {"definition": "start: /.+/", "syntax": s}},
                    },
                }
            ]
        }
        for s in ["lark", "regex"]
    ),
    *({"tool_choice": v} for v in ["none", "auto", "required"]),
    {"tools": [WEATHER_TOOL], "tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
    {"tool_choice": {"type": "custom", "custom": {"name": "code_exec"}}},
    {
        "tool_choice": {
            "type": "allowed_tools",
            "allowed_tools": {
                "mode": "auto",
                "tools": [
                    {"type": "function", "function": {"name": "get_weather"}},
                    {"type": "custom", "custom": {"name": "code_exec"}},
                ],
            },
        }
    },
    {"tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": []}}},
    {"parallel_tool_calls": True},
    {"parallel_tool_calls": False},
    {"response_format": {"type": "text"}},
    {"response_format": {"type": "json_object"}},
    {"response_format": {"type": "json_schema", "json_schema": {"name": "answer"}}},
    {
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "weather-report_2",
                "description": "A weather report.",
                "schema": {"type": "object", "properties": {"t": {"type": "number"}}},
                "strict": True,
            },
        }
    },
    {"functions": [{"name": "get_weather", "description": "d", "parameters": {"type": "object"}}]},
    {"functions": [{"name": "f"}], "function_call": "none"},
    {"functions": [{"name": "f"}], "function_call": "auto"},
    {"functions": [{"name": "f"}], "function_call": {"name": "f"}},
    # The policy: unknown top-level fields are accepted (OpenAI adds fields often).
    {"some_future_field": {"anything": [1, 2, 3]}},
    {"extra_body_field": None, "x-custom": "y"},
]


def field_id(fields: dict[str, Any]) -> str:
    return ",".join(f"{k}={json.dumps(v)[:30]}" for k, v in fields.items())


@pytest.mark.parametrize("fields", GOOD_FIELDS, ids=field_id)
def test_good_field_values_are_accepted(engine: str, fields: dict[str, Any]) -> None:
    body = with_fields(**fields)
    before = copy.deepcopy(body)
    validate_chat_request(body)
    assert body == before  # validation never changes the request


OPTIONAL_FIELDS = sorted(set(load_chat_request_schema()["properties"]) - {"model", "messages"})


def test_every_optional_field_may_be_null(engine: str) -> None:
    validate_chat_request(with_fields(**dict.fromkeys(OPTIONAL_FIELDS)))


GOOD_MESSAGES: list[list[dict[str, Any]]] = [
    [{"role": "developer", "content": "Be brief."}, USER],
    [{"role": "developer", "content": [{"type": "text", "text": "Be brief."}], "name": "ops"}, USER],
    [{"role": "system", "content": "Be brief.", "name": "sys"}, USER],
    [{"role": "system", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}, USER],
    [{"role": "user", "content": "hi", "name": "alice"}],
    [{"role": "user", "content": ""}],
    [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"},
                },
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "auto"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/b.png", "detail": "high"}},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://example.com/c.png", "detail": "original"},
                },
                {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                {"type": "input_audio", "input_audio": {"data": "SUQz", "format": "mp3"}},
                {"type": "file", "file": {"file_id": "file-abc"}},
                {
                    "type": "file",
                    "file": {"file_data": "data:application/pdf;base64,JVBERg==", "filename": "a.pdf"},
                },
            ],
        }
    ],
    [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "long context", "prompt_cache_breakpoint": {"mode": "explicit"}},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://example.com/x.png"},
                    "prompt_cache_breakpoint": {"mode": "explicit", "ttl": "12h"},
                },
            ],
        }
    ],
    [USER, {"role": "assistant", "content": "Sunny."}],
    [
        USER,
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "a"}, {"type": "refusal", "refusal": "no"}],
        },
    ],
    [USER, {"role": "assistant", "content": "ok", "name": "bot", "reasoning_content": "The user wants..."}],
    [USER, {"role": "assistant", "content": "ok", "reasoning_content": None}],
    [USER, {"role": "assistant", "tool_calls": [TOOL_CALL]}],
    [USER, {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]}],
    [
        USER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                TOOL_CALL,
                {"id": "call_2", "type": "custom", "custom": {"name": "sql", "input": "SELECT 1"}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "1"}]},
    ],
    [
        USER,
        {"role": "assistant", "content": None, "function_call": {"name": "get_weather", "arguments": "{}"}},
    ],
    [USER, {"role": "assistant", "content": None, "refusal": "I can't help with that."}],
    [USER, {"role": "assistant", "content": None, "audio": {"id": "audio_abc"}}],
    [USER, {"role": "function", "name": "get_weather", "content": "sunny"}],
    [USER, {"role": "function", "name": "get_weather", "content": None}],
    # An assistant message echoed back from a response, as the SDK serialises it, with its null fields.
    [
        USER,
        {
            "role": "assistant",
            "content": "Sunny.",
            "refusal": None,
            "annotations": [],
            "audio": None,
            "function_call": None,
            "tool_calls": None,
        },
    ],
    # The policy: unknown keys inside messages, parts, tools and tool calls are accepted.
    [
        {
            "role": "user",
            "content": [{"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}],
            "x": 1,
        }
    ],
    [USER, {"role": "assistant", "tool_calls": [{**TOOL_CALL, "index": 0}], "vendor_field": True}],
]


@pytest.mark.parametrize("messages", GOOD_MESSAGES, ids=lambda m: "+".join(x["role"] for x in m))
def test_good_messages_are_accepted(engine: str, messages: list[dict[str, Any]]) -> None:
    validate_chat_request(with_messages(*messages))


def test_unknown_keys_in_tools_are_accepted(engine: str) -> None:
    function = {**WEATHER_TOOL["function"], "x-vendor": 1}  # type: ignore[dict-item]
    validate_chat_request(
        with_fields(tools=[{"type": "function", "function": function, "cache_control": {}}])
    )


# ---------------------------------------------------------------------------------------------------------
# Bad values of every field: the `param` path and the code

MISSING = "missing_required_parameter"
TYPE = "invalid_type"
VALUE = "invalid_value"

BAD_FIELDS: list[tuple[dict[str, Any], str, str]] = [
    ({"model": ""}, "model", VALUE),
    ({"model": 5}, "model", TYPE),
    ({"model": None}, "model", TYPE),
    ({"messages": []}, "messages", VALUE),
    ({"messages": "hello"}, "messages", TYPE),
    ({"messages": None}, "messages", TYPE),
    ({"temperature": -0.1}, "temperature", VALUE),
    ({"temperature": 2.01}, "temperature", VALUE),
    ({"temperature": "hot"}, "temperature", TYPE),
    ({"temperature": True}, "temperature", TYPE),
    ({"top_p": 1.5}, "top_p", VALUE),
    ({"top_p": -1}, "top_p", VALUE),
    ({"n": 0}, "n", VALUE),
    ({"n": 129}, "n", VALUE),
    ({"n": 1.5}, "n", TYPE),
    ({"stop": 5}, "stop", TYPE),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop", VALUE),
    ({"stop": ["a", 1]}, "stop[1]", TYPE),
    ({"max_tokens": 0}, "max_tokens", VALUE),
    ({"max_tokens": -5}, "max_tokens", VALUE),
    ({"max_tokens": "100"}, "max_tokens", TYPE),
    ({"max_completion_tokens": 0}, "max_completion_tokens", VALUE),
    ({"max_completion_tokens": 10.5}, "max_completion_tokens", TYPE),
    ({"seed": 2**63}, "seed", VALUE),
    ({"seed": -(2**63) - 1}, "seed", VALUE),
    ({"seed": "42"}, "seed", TYPE),
    ({"presence_penalty": 2.5}, "presence_penalty", VALUE),
    ({"presence_penalty": -2.5}, "presence_penalty", VALUE),
    ({"frequency_penalty": 3}, "frequency_penalty", VALUE),
    ({"frequency_penalty": "low"}, "frequency_penalty", TYPE),
    ({"logit_bias": []}, "logit_bias", TYPE),
    ({"logit_bias": {"hello": 1}}, "logit_bias", VALUE),
    ({"logit_bias": {"50256": 101}}, "logit_bias.50256", VALUE),
    ({"logit_bias": {"50256": -101}}, "logit_bias.50256", VALUE),
    ({"logit_bias": {"50256": 1.5}}, "logit_bias.50256", TYPE),
    ({"logprobs": "yes"}, "logprobs", TYPE),
    ({"logprobs": True, "top_logprobs": 21}, "top_logprobs", VALUE),
    ({"logprobs": True, "top_logprobs": -1}, "top_logprobs", VALUE),
    ({"logprobs": True, "top_logprobs": 2.5}, "top_logprobs", TYPE),
    ({"top_logprobs": 5}, "logprobs", MISSING),
    ({"top_logprobs": 0, "logprobs": False}, "logprobs", VALUE),
    ({"top_logprobs": 5, "logprobs": None}, "logprobs", VALUE),
    ({"user": 5}, "user", TYPE),
    ({"safety_identifier": "x" * 129}, "safety_identifier", VALUE),
    ({"prompt_cache_key": ["k"]}, "prompt_cache_key", TYPE),
    ({"prompt_cache_options": "explicit"}, "prompt_cache_options", TYPE),
    ({"prompt_cache_options": {"mode": "sometimes"}}, "prompt_cache_options.mode", VALUE),
    ({"prompt_cache_options": {"ttl": "1h"}}, "prompt_cache_options.ttl", VALUE),
    ({"prompt_cache_retention": "1h"}, "prompt_cache_retention", VALUE),
    ({"stream": "true"}, "stream", TYPE),
    ({"stream_options": {"include_usage": True}}, "stream", MISSING),
    ({"stream": False, "stream_options": {"include_usage": True}}, "stream", VALUE),
    ({"stream": True, "stream_options": {"include_usage": "yes"}}, "stream_options.include_usage", TYPE),
    (
        {"stream": True, "stream_options": {"include_obfuscation": 1}},
        "stream_options.include_obfuscation",
        TYPE,
    ),
    ({"stream": True, "stream_options": True}, "stream_options", TYPE),
    ({"reasoning_effort": "extreme"}, "reasoning_effort", VALUE),
    ({"reasoning_effort": 3}, "reasoning_effort", TYPE),
    ({"verbosity": "loud"}, "verbosity", VALUE),
    ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata", VALUE),
    ({"metadata": {"k" * 65: "v"}}, "metadata", VALUE),
    ({"metadata": {"note": "v" * 513}}, "metadata.note", VALUE),
    ({"metadata": {"count": 5}}, "metadata.count", TYPE),
    ({"metadata": {"my key": 5}}, 'metadata["my key"]', TYPE),
    ({"metadata": "tag"}, "metadata", TYPE),
    ({"store": "no"}, "store", TYPE),
    ({"service_tier": "gold"}, "service_tier", VALUE),
    ({"modalities": ["text", "video"]}, "modalities[1]", VALUE),
    ({"modalities": "text"}, "modalities", TYPE),
    ({"audio": {"format": "wav"}}, "audio.voice", MISSING),
    ({"audio": {"voice": "alloy"}}, "audio.format", MISSING),
    ({"audio": {"format": "ogg", "voice": "alloy"}}, "audio.format", VALUE),
    ({"audio": {"format": "wav", "voice": {}}}, "audio.voice.id", MISSING),
    ({"audio": {"format": "wav", "voice": 7}}, "audio.voice", TYPE),
    ({"prediction": {"type": "content"}}, "prediction.content", MISSING),
    ({"prediction": {"content": "x"}}, "prediction.type", MISSING),
    ({"prediction": {"type": "diff", "content": "x"}}, "prediction.type", VALUE),
    ({"prediction": {"type": "content", "content": []}}, "prediction.content", VALUE),
    (
        {"prediction": {"type": "content", "content": [{"type": "image_url"}]}},
        "prediction.content[0].type",
        VALUE,
    ),
    (
        {"web_search_options": {"search_context_size": "huge"}},
        "web_search_options.search_context_size",
        VALUE,
    ),
    ({"web_search_options": {"user_location": {}}}, "web_search_options.user_location.type", MISSING),
    (
        {"web_search_options": {"user_location": {"type": "exact", "approximate": {}}}},
        "web_search_options.user_location.type",
        VALUE,
    ),
    (
        {"web_search_options": {"user_location": {"type": "approximate", "approximate": {"city": 75}}}},
        "web_search_options.user_location.approximate.city",
        TYPE,
    ),
    ({"moderation": {}}, "moderation.model", MISSING),
    ({"moderation": {"model": "m", "policy": {"input": {}}}}, "moderation.policy.input.mode", MISSING),
    (
        {"moderation": {"model": "m", "policy": {"output": {"mode": "warn"}}}},
        "moderation.policy.output.mode",
        VALUE,
    ),
    ({"tools": {}}, "tools", TYPE),
    ({"tools": [{"function": {"name": "f"}}]}, "tools[0].type", MISSING),
    ({"tools": [{"type": "retrieval"}]}, "tools[0].type", VALUE),
    ({"tools": [{"type": "function"}]}, "tools[0].function", MISSING),
    ({"tools": [{"type": "function", "function": {}}]}, "tools[0].function.name", MISSING),
    (
        {"tools": [WEATHER_TOOL, {"type": "function", "function": {"name": "get weather"}}]},
        "tools[1].function.name",
        VALUE,
    ),
    ({"tools": [{"type": "function", "function": {"name": "f" * 65}}]}, "tools[0].function.name", VALUE),
    ({"tools": [{"type": "function", "function": {"name": ""}}]}, "tools[0].function.name", VALUE),
    ({"tools": [{"type": "function", "function": {"name": "f\n"}}]}, "tools[0].function.name", VALUE),
    (
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": "{}"}}]},
        "tools[0].function.parameters",
        TYPE,
    ),
    (
        {"tools": [{"type": "function", "function": {"name": "f", "description": 1}}]},
        "tools[0].function.description",
        TYPE,
    ),
    (
        {"tools": [{"type": "function", "function": {"name": "f", "strict": "yes"}}]},
        "tools[0].function.strict",
        TYPE,
    ),
    ({"tools": [{"type": "custom"}]}, "tools[0].custom", MISSING),
    ({"tools": [{"type": "custom", "custom": {"name": "a.b"}}]}, "tools[0].custom.name", VALUE),
    (
        {"tools": [{"type": "custom", "custom": {"name": "c", "format": {"type": "json"}}}]},
        "tools[0].custom.format.type",
        VALUE,
    ),
    (
        {"tools": [{"type": "custom", "custom": {"name": "c", "format": {"type": "grammar"}}}]},
        "tools[0].custom.format.grammar",
        MISSING,
    ),
    (
        {
            "tools": [
                {
                    "type": "custom",
                    "custom": {
                        "name": "c",
                        "format": {"type": "grammar", "grammar": {"definition": "x", "syntax": "ebnf"}},
                    },
                }
            ]
        },
        "tools[0].custom.format.grammar.syntax",
        VALUE,
    ),
    ({"tool_choice": "any"}, "tool_choice", VALUE),
    ({"tool_choice": 1}, "tool_choice", TYPE),
    ({"tool_choice": {"type": "function"}}, "tool_choice.function", MISSING),
    ({"tool_choice": {"type": "function", "function": {}}}, "tool_choice.function.name", MISSING),
    ({"tool_choice": {"type": "function", "name": "get_weather"}}, "tool_choice.function", MISSING),
    ({"tool_choice": {"name": "get_weather"}}, "tool_choice.type", MISSING),
    ({"tool_choice": {"type": "tool", "name": "x"}}, "tool_choice.type", VALUE),
    ({"tool_choice": {"type": "custom", "custom": {}}}, "tool_choice.custom.name", MISSING),
    ({"tool_choice": {"type": "allowed_tools"}}, "tool_choice.allowed_tools", MISSING),
    (
        {"tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "any", "tools": []}}},
        "tool_choice.allowed_tools.mode",
        VALUE,
    ),
    (
        {"tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "auto"}}},
        "tool_choice.allowed_tools.tools",
        MISSING,
    ),
    (
        {
            "tool_choice": {
                "type": "allowed_tools",
                "allowed_tools": {"mode": "auto", "tools": [{"type": "file_search"}]},
            }
        },
        "tool_choice.allowed_tools.tools[0].type",
        VALUE,
    ),
    (
        {
            "tool_choice": {
                "type": "allowed_tools",
                "allowed_tools": {"mode": "auto", "tools": [{"type": "function"}]},
            }
        },
        "tool_choice.allowed_tools.tools[0].function",
        MISSING,
    ),
    ({"parallel_tool_calls": "yes"}, "parallel_tool_calls", TYPE),
    ({"response_format": "json"}, "response_format", TYPE),
    ({"response_format": {}}, "response_format.type", MISSING),
    ({"response_format": {"type": "xml"}}, "response_format.type", VALUE),
    ({"response_format": {"type": "json_schema"}}, "response_format.json_schema", MISSING),
    (
        {"response_format": {"type": "json_schema", "json_schema": {"schema": {}}}},
        "response_format.json_schema.name",
        MISSING,
    ),
    (
        {"response_format": {"type": "json_schema", "json_schema": {"name": "my schema"}}},
        "response_format.json_schema.name",
        VALUE,
    ),
    (
        {"response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": "{}"}}},
        "response_format.json_schema.schema",
        TYPE,
    ),
    (
        {"response_format": {"type": "json_schema", "json_schema": {"name": "s", "strict": "yes"}}},
        "response_format.json_schema.strict",
        TYPE,
    ),
    ({"functions": []}, "functions", VALUE),
    ({"functions": [{"name": "f"}] * 129}, "functions", VALUE),
    ({"functions": [{"description": "no name"}]}, "functions[0].name", MISSING),
    ({"functions": [{"name": "bad name"}]}, "functions[0].name", VALUE),
    ({"function_call": "required"}, "function_call", VALUE),
    ({"function_call": {"nam": "f"}}, "function_call.name", MISSING),
    ({"function_call": 3}, "function_call", TYPE),
]


@pytest.mark.parametrize(("fields", "param", "code"), BAD_FIELDS, ids=[field_id(f) for f, _, _ in BAD_FIELDS])
def test_bad_field_values_are_rejected(engine: str, fields: dict[str, Any], param: str, code: str) -> None:
    error = rejection(with_fields(**fields))
    assert (error.param, error.code) == (param, code), error.message
    assert error.status == 400
    assert error.type == "invalid_request_error"
    assert error.message.startswith(f"{param}: ")


def test_required_top_level_fields(engine: str) -> None:
    error = rejection({"messages": [USER]})
    assert (error.param, error.code, error.message) == ("model", MISSING, "model: a value is required")
    error = rejection({"model": "m"})
    assert (error.param, error.code, error.message) == ("messages", MISSING, "messages: a value is required")


BAD_MESSAGES: list[tuple[list[Any], str, str]] = [
    (["hi"], "messages[0]", TYPE),
    ([{"content": "hi"}], "messages[0].role", MISSING),
    ([{"role": "robot", "content": "hi"}], "messages[0].role", VALUE),
    ([{"role": "User", "content": "hi"}], "messages[0].role", VALUE),
    ([{"role": 1, "content": "hi"}], "messages[0].role", TYPE),
    # user
    ([{"role": "user"}], "messages[0].content", MISSING),
    ([{"role": "user", "content": None}], "messages[0].content", TYPE),
    ([{"role": "user", "content": 5}], "messages[0].content", TYPE),
    ([{"role": "user", "content": []}], "messages[0].content", VALUE),
    ([{"role": "user", "content": "x", "name": 5}], "messages[0].name", TYPE),
    ([{"role": "user", "content": ["hello"]}], "messages[0].content[0]", TYPE),
    ([{"role": "user", "content": [{"text": "x"}]}], "messages[0].content[0].type", MISSING),
    ([{"role": "user", "content": [{"type": "video", "video": {}}]}], "messages[0].content[0].type", VALUE),
    (
        [{"role": "user", "content": [{"type": "refusal", "refusal": "x"}]}],
        "messages[0].content[0].type",
        VALUE,
    ),
    ([{"role": "user", "content": [{"type": "text"}]}], "messages[0].content[0].text", MISSING),
    ([{"role": "user", "content": [{"type": "text", "text": 5}]}], "messages[0].content[0].text", TYPE),
    ([{"role": "user", "content": [{"type": "image_url"}]}], "messages[0].content[0].image_url", MISSING),
    (
        [{"role": "user", "content": [{"type": "image_url", "image_url": "https://x"}]}],
        "messages[0].content[0].image_url",
        TYPE,
    ),
    (
        [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],
        "messages[0].content[0].image_url.url",
        MISSING,
    ),
    (
        [
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "https://x", "detail": "medium"}}],
            }
        ],
        "messages[0].content[0].image_url.detail",
        VALUE,
    ),
    (
        [
            {
                "role": "user",
                "content": [{"type": "input_audio", "input_audio": {"data": "x", "format": "ogg"}}],
            }
        ],
        "messages[0].content[0].input_audio.format",
        VALUE,
    ),
    (
        [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"format": "wav"}}]}],
        "messages[0].content[0].input_audio.data",
        MISSING,
    ),
    ([{"role": "user", "content": [{"type": "input_audio"}]}], "messages[0].content[0].input_audio", MISSING),
    (
        [{"role": "user", "content": [{"type": "file", "file": {}}]}],
        "messages[0].content[0].file.file_data",
        MISSING,
    ),
    (
        [{"role": "user", "content": [{"type": "file", "file": "file-1"}]}],
        "messages[0].content[0].file",
        TYPE,
    ),
    ([{"role": "user", "content": [{"type": "file"}]}], "messages[0].content[0].file", MISSING),
    (
        [{"role": "user", "content": [{"type": "file", "file": {"file_id": 7}}]}],
        "messages[0].content[0].file.file_id",
        TYPE,
    ),
    (
        [
            {
                "role": "user",
                "content": [{"type": "text", "text": "x", "prompt_cache_breakpoint": {"mode": "auto"}}],
            }
        ],
        "messages[0].content[0].prompt_cache_breakpoint.mode",
        VALUE,
    ),
    (
        [
            {
                "role": "user",
                "content": [{"type": "text", "text": "x", "prompt_cache_breakpoint": {"ttl": "12h"}}],
            }
        ],
        "messages[0].content[0].prompt_cache_breakpoint.mode",
        MISSING,
    ),
    (
        [
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": "x",
                        "prompt_cache_breakpoint": {"mode": "explicit", "ttl": "1h"},
                    }
                ],
            }
        ],
        "messages[0].content[0].prompt_cache_breakpoint.ttl",
        VALUE,
    ),
    # system / developer
    ([{"role": "system"}, USER], "messages[0].content", MISSING),
    ([{"role": "developer", "content": None}, USER], "messages[0].content", TYPE),
    ([{"role": "system", "content": []}, USER], "messages[0].content", VALUE),
    (
        [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x"}}]}, USER],
        "messages[0].content[0].type",
        VALUE,
    ),
    ([{"role": "developer", "content": [{"type": "text"}]}, USER], "messages[0].content[0].text", MISSING),
    ([{"role": "developer", "content": "x", "name": ["a"]}, USER], "messages[0].name", TYPE),
    # assistant
    ([USER, {"role": "assistant"}], "messages[1].content", MISSING),
    ([USER, {"role": "assistant", "content": None}], "messages[1].content", TYPE),
    ([USER, {"role": "assistant", "content": None, "tool_calls": None}], "messages[1].content", TYPE),
    ([USER, {"role": "assistant", "content": 5, "tool_calls": [TOOL_CALL]}], "messages[1].content", TYPE),
    ([USER, {"role": "assistant", "content": []}], "messages[1].content", VALUE),
    ([USER, {"role": "assistant", "content": [{"type": "image_url"}]}], "messages[1].content[0].type", VALUE),
    (
        [USER, {"role": "assistant", "content": [{"type": "refusal"}]}],
        "messages[1].content[0].refusal",
        MISSING,
    ),
    ([USER, {"role": "assistant", "content": [{"type": "text"}]}], "messages[1].content[0].text", MISSING),
    ([USER, {"role": "assistant", "content": "x", "refusal": 1}], "messages[1].refusal", TYPE),
    (
        [USER, {"role": "assistant", "content": "x", "reasoning_content": 5}],
        "messages[1].reasoning_content",
        TYPE,
    ),
    ([USER, {"role": "assistant", "content": "x", "audio": {}}], "messages[1].audio.id", MISSING),
    ([USER, {"role": "assistant", "tool_calls": {}}], "messages[1].tool_calls", TYPE),
    ([USER, {"role": "assistant", "tool_calls": ["call_1"]}], "messages[1].tool_calls[0]", TYPE),
    (
        [
            USER,
            {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{}"}}]},
        ],
        "messages[1].tool_calls[0].type",
        MISSING,
    ),
    (
        [USER, {"role": "assistant", "tool_calls": [{**TOOL_CALL, "type": "retrieval"}]}],
        "messages[1].tool_calls[0].type",
        VALUE,
    ),
    (
        [
            USER,
            {"role": "assistant", "tool_calls": [{"type": "function", "function": TOOL_CALL["function"]}]},
        ],
        "messages[1].tool_calls[0].id",
        MISSING,
    ),
    (
        [USER, {"role": "assistant", "tool_calls": [{"id": "c", "type": "function"}]}],
        "messages[1].tool_calls[0].function",
        MISSING,
    ),
    (
        [
            USER,
            {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f"}}]},
        ],
        "messages[1].tool_calls[0].function.arguments",
        MISSING,
    ),
    (
        [
            USER,
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "c", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}
                ],
            },
        ],
        "messages[1].tool_calls[0].function.arguments",
        TYPE,
    ),
    (
        [
            USER,
            {"role": "assistant", "tool_calls": [{"id": "c", "type": "custom", "custom": {"name": "sql"}}]},
        ],
        "messages[1].tool_calls[0].custom.input",
        MISSING,
    ),
    (
        [USER, {"role": "assistant", "content": None, "function_call": {"name": "f"}}],
        "messages[1].function_call.arguments",
        MISSING,
    ),
    # tool
    ([USER, {"role": "tool", "content": "42"}], "messages[1].tool_call_id", MISSING),
    ([USER, {"role": "tool", "tool_call_id": "call_1"}], "messages[1].content", MISSING),
    ([USER, {"role": "tool", "tool_call_id": 1, "content": "42"}], "messages[1].tool_call_id", TYPE),
    ([USER, {"role": "tool", "tool_call_id": "c", "content": None}], "messages[1].content", TYPE),
    (
        [
            USER,
            {
                "role": "tool",
                "tool_call_id": "c",
                "content": [{"type": "image_url", "image_url": {"url": "x"}}],
            },
        ],
        "messages[1].content[0].type",
        VALUE,
    ),
    # function (legacy)
    ([USER, {"role": "function", "content": "x"}], "messages[1].name", MISSING),
    ([USER, {"role": "function", "name": "f"}], "messages[1].content", MISSING),
    ([USER, {"role": "function", "name": "f", "content": 5}], "messages[1].content", TYPE),
]


@pytest.mark.parametrize(("messages", "param", "code"), BAD_MESSAGES, ids=[p for _, p, _ in BAD_MESSAGES])
def test_bad_messages_are_rejected(engine: str, messages: list[Any], param: str, code: str) -> None:
    error = rejection(with_messages(*messages))
    assert (error.param, error.code) == (param, code), error.message
    assert error.message.startswith(f"{param}: ")


def test_the_first_violation_is_reported() -> None:
    bad = {"role": "robot", "content": "x"}
    error = rejection(with_messages(USER, bad, USER, {"role": "user"}))
    assert error.param == "messages[1].role"


# ---------------------------------------------------------------------------------------------------------
# The messages for the common mistakes

MESSAGES: list[tuple[dict[str, Any], str]] = [
    (
        with_messages(USER, {"role": "robot", "content": "beep"}),
        "messages[1].role: 'robot' is not one of"
        " 'developer', 'system', 'user', 'assistant', 'tool', 'function'",
    ),
    (with_fields(temperature=3), "temperature: 3 is greater than the maximum of 2"),
    (with_fields(top_p=-0.5), "top_p: -0.5 is less than the minimum of 0"),
    (with_fields(temperature="hot"), "temperature: expected a number or null, got 'hot'"),
    (with_fields(max_tokens=1.5), "max_tokens: expected an integer or null, got 1.5"),
    (with_fields(stream="yes"), "stream: expected a boolean or null, got 'yes'"),
    (with_fields(messages=[]), "messages: expected at least 1 item, got 0"),
    (with_fields(messages={"role": "user"}), "messages: expected an array, got an object"),
    (with_fields(model=""), "model: must not be empty"),
    (with_messages("hello"), "messages[0]: expected an object, got 'hello'"),
    (with_messages({"role": "user"}), "messages[0].content: a value is required"),
    (
        with_messages({"role": "user", "content": None}),
        "messages[0].content: expected a string or an array, got null",
    ),
    (
        with_messages(USER, {"role": "assistant"}),
        "messages[1].content: a value is required unless the assistant message has tool_calls",
    ),
    (
        with_messages(USER, {"role": "assistant", "content": None}),
        "messages[1].content: a string or an array of parts is required"
        " unless the assistant message has tool_calls",
    ),
    (with_messages(USER, {"role": "tool", "content": "42"}), "messages[1].tool_call_id: a value is required"),
    (
        with_messages({"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "video"}]}),
        "messages[0].content[1].type: 'video' is not one of 'text', 'image_url', 'input_audio', 'file'",
    ),
    (
        with_messages(
            {"role": "system", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}, USER
        ),
        "messages[0].content[0].type: expected 'text', got 'image_url'",
    ),
    (
        with_messages(
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "?"},
                    {"type": "image_url", "image_url": "https://x/c.png"},
                ],
            }
        ),
        "messages[0].content[1].image_url: expected an object, got 'https://x/c.png'",
    ),
    (
        with_messages({"role": "user", "content": [{"type": "file", "file": {"filename": "a.pdf"}}]}),
        "messages[0].content[0].file.file_data: either file_id or file_data is required",
    ),
    (
        with_messages(
            USER,
            {
                "role": "assistant",
                "tool_calls": [
                    {**TOOL_CALL, "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
                ],
            },
        ),
        "messages[1].tool_calls[0].function.arguments: expected a string holding JSON, such as"
        ' \'{"city": "Paris"}\', got an object',
    ),
    (
        with_fields(tools=[{"type": "function", "function": {"name": "get weather"}}]),
        "tools[0].function.name: 'get weather' is not a valid name:"
        " use 1 to 64 letters, digits, underscores or dashes",
    ),
    (
        with_fields(tools=[{"type": "function", "name": "get_weather", "parameters": {}}]),
        "tools[0].function: a value is required",
    ),
    (
        with_fields(response_format={"type": "json"}),
        "response_format.type: 'json' is not one of 'text', 'json_object', 'json_schema'",
    ),
    (with_fields(tool_choice="any"), "tool_choice: 'any' is not one of 'none', 'auto', 'required'"),
    (
        with_fields(reasoning_effort="extreme"),
        "reasoning_effort: 'extreme' is not one of"
        " 'none', 'minimal', 'low', 'medium', 'high', 'xhigh', 'max'",
    ),
    (with_fields(top_logprobs=5), "logprobs: must be true when top_logprobs is given"),
    (with_fields(top_logprobs=5, logprobs=False), "logprobs: must be true when top_logprobs is given"),
    (
        with_fields(stream_options={"include_usage": True}),
        "stream: must be true when stream_options is given",
    ),
    (
        with_fields(stream=False, stream_options={"include_usage": True}),
        "stream: must be true when stream_options is given",
    ),
    (with_fields(stop=["1", "2", "3", "4", "5"]), "stop: expected at most 4 items, got 5"),
    (
        with_fields(metadata={"k" * 100: "v"}),
        "metadata: key '" + "k" * 40 + "…' is longer than the maximum of 64 characters",
    ),
    (
        with_fields(metadata={"note": "v" * 513}),
        "metadata.note: too long: 513 characters, the maximum is 512",
    ),
    (with_fields(metadata={str(i): "v" for i in range(17)}), "metadata: expected at most 16 entries, got 17"),
    (
        with_fields(logit_bias={"hello": 5}),
        "logit_bias: key 'hello' is not a token id; keys are token ids written as strings of digits",
    ),
    (with_fields(logit_bias={"50256": 200}), "logit_bias.50256: 200 is greater than the maximum of 100"),
    (
        with_fields(prediction={"type": "content", "content": []}),
        "prediction.content: expected at least 1 item, got 0",
    ),
    (
        with_fields(audio={"format": "ogg", "voice": "alloy"}),
        "audio.format: 'ogg' is not one of 'wav', 'aac', 'mp3', 'flac', 'opus', 'pcm16'",
    ),
    (
        with_fields(web_search_options={"user_location": {"type": "exact", "approximate": {}}}),
        "web_search_options.user_location.type: expected 'approximate', got 'exact'",
    ),
    (
        with_fields(logprobs=None, parallel_tool_calls=1),
        "parallel_tool_calls: expected a boolean or null, got 1",
    ),
]


@pytest.mark.parametrize(("body", "message"), MESSAGES, ids=[m.split(":")[0] for _, m in MESSAGES])
def test_messages_say_what_is_wrong_and_what_is_allowed(body: dict[str, Any], message: str) -> None:
    assert rejection(body).message == message


@pytest.mark.parametrize("body", [[], "hello", 42, None, True])
def test_a_body_that_is_not_an_object_is_rejected(engine: str, body: object) -> None:
    error = rejection(body)
    assert (error.message, error.param, error.code, error.status) == (
        "the request body must be a JSON object",
        None,
        TYPE,
        400,
    )


def test_the_error_renders_as_openai_envelope() -> None:
    error = rejection(with_fields(temperature=3))
    assert error.to_dict() == {
        "error": {
            "message": "temperature: 3 is greater than the maximum of 2",
            "type": "invalid_request_error",
            "param": "temperature",
            "code": "invalid_value",
        }
    }


# ---------------------------------------------------------------------------------------------------------
# jsonschema-rs (the fast path) and jsonschema (the reference) judge every body the same way


def all_table_bodies() -> Iterator[object]:
    yield from (with_fields(**f) for f in GOOD_FIELDS)
    yield from (with_messages(*m) for m in GOOD_MESSAGES)
    yield from (with_fields(**f) for f, _, _ in BAD_FIELDS)
    yield from (with_messages(*m) for m, _, _ in BAD_MESSAGES)
    yield from (body for body, _ in MESSAGES)


def test_the_fast_path_agrees_with_the_reference_validator() -> None:
    schema = load_chat_request_schema()
    fast = jsonschema_rs.Draft202012Validator(schema)
    reference = Draft202012Validator(schema)
    bodies = list(all_table_bodies())
    assert len(bodies) > 300
    disagreements = [body for body in bodies if fast.is_valid(body) != reference.is_valid(body)]
    assert disagreements == []


def test_the_validators_are_built_once() -> None:
    assert schemas._validator() is schemas._validator()
    assert schemas._fast_check() is schemas._fast_check()


# ---------------------------------------------------------------------------------------------------------
# Real requests: the OpenAPI spec's examples and what the openai SDK sends


def openapi_examples() -> list[dict[str, Any]]:
    examples: list[dict[str, Any]] = json.loads((FIXTURES / "openapi_request_examples.json").read_text())[
        "examples"
    ]
    return examples


def test_the_openapi_examples_fixture_is_complete() -> None:
    titles = [e["title"] for e in openapi_examples()]
    assert titles == ["Default", "Image input", "Streaming", "Functions", "Logprobs"]


@pytest.mark.parametrize("example", openapi_examples(), ids=lambda e: e["title"])
def test_openapi_spec_examples_are_valid(engine: str, example: dict[str, Any]) -> None:
    validate_chat_request(example["body"])


COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": '{"city": "Paris", "temperature_c": 21.5}',
                "refusal": None,
            },
            "finish_reason": "stop",
            "logprobs": None,
        }
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


class Weather(pydantic.BaseModel):
    city: str
    temperature_c: float


class GetWeather(pydantic.BaseModel):
    """The current weather in a city."""

    city: str


@pytest.fixture
def sent() -> Iterator[tuple[openai.OpenAI, list[dict[str, Any]]]]:
    """An SDK client whose requests are recorded (and answered with a canned completion), not sent."""
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        bodies.append(body)
        if body.get("stream"):
            return httpx.Response(
                200, content=b"data: [DONE]\n\n", headers={"content-type": "text/event-stream"}
            )
        return httpx.Response(200, json=COMPLETION)

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        yield (
            openai.OpenAI(api_key="test", base_url="http://gateway.test/v1", http_client=http, max_retries=0),
            bodies,
        )


def test_sdk_create_with_every_parameter_is_valid(
    engine: str, sent: tuple[openai.OpenAI, list[dict[str, Any]]]
) -> None:
    client, bodies = sent
    params: dict[str, Any] = {
        "model": "openai/gpt-4.1",
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "hi"},
                    {"type": "image_url", "image_url": {"url": "https://x/a.png", "detail": "low"}},
                ],
            },
            {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ],
        "audio": {"format": "wav", "voice": "alloy"},
        "frequency_penalty": 0.1,
        "logit_bias": {"50256": -100},
        "logprobs": True,
        "max_completion_tokens": 100,
        "max_tokens": 100,
        "metadata": {"run": "1"},
        "modalities": ["text", "audio"],
        "moderation": {"model": "omni-moderation-latest", "policy": {"input": {"mode": "score"}}},
        "n": 2,
        "parallel_tool_calls": False,
        "prediction": {"type": "content", "content": "x"},
        "presence_penalty": 0.1,
        "prompt_cache_key": "k",
        "prompt_cache_options": {"mode": "explicit", "ttl": "30m"},
        "prompt_cache_retention": "24h",
        "reasoning_effort": "low",
        "response_format": {"type": "json_object"},
        "safety_identifier": "user-hash",
        "seed": 7,
        "service_tier": "flex",
        "stop": ["END"],
        "store": False,
        "temperature": 0.5,
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "tools": [WEATHER_TOOL],
        "top_logprobs": 3,
        "top_p": 0.9,
        "user": "u",
        "verbosity": "low",
        "web_search_options": {"search_context_size": "low"},
    }
    client.chat.completions.create(**params)
    (body,) = bodies
    assert body == json.loads(json.dumps(params))  # the SDK sent every parameter, as given
    validate_chat_request(body)


def test_sdk_streaming_request_is_valid(
    engine: str, sent: tuple[openai.OpenAI, list[dict[str, Any]]]
) -> None:
    client, bodies = sent
    stream = client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    assert list(stream) == []
    assert bodies[0]["stream_options"] == {"include_usage": True}
    validate_chat_request(bodies[0])


def test_sdk_parse_with_a_pydantic_model_is_valid(
    engine: str, sent: tuple[openai.OpenAI, list[dict[str, Any]]]
) -> None:
    client, bodies = sent
    completion = client.chat.completions.parse(
        model="m",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        response_format=Weather,
        tools=[openai.pydantic_function_tool(GetWeather)],
    )
    assert completion.choices[0].message.parsed == Weather(city="Paris", temperature_c=21.5)
    body = bodies[0]
    assert body["response_format"] == type_to_response_format_param(Weather)
    assert body["response_format"]["json_schema"]["strict"] is True
    assert body["tools"][0]["function"]["name"] == "GetWeather"
    validate_chat_request(body)


def test_sdk_echoing_a_response_message_back_is_valid(
    engine: str, sent: tuple[openai.OpenAI, list[dict[str, Any]]]
) -> None:
    """`messages.append(completion.choices[0].message)` sends the response's null fields back."""
    client, bodies = sent
    first = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    reply = first.choices[0].message
    client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "hi"}, reply, {"role": "user", "content": "and tomorrow?"}],
    )
    echoed = bodies[1]["messages"][1]
    assert echoed["role"] == "assistant" and echoed["refusal"] is None
    validate_chat_request(bodies[1])


def test_response_format_helper_output_is_valid(engine: str) -> None:
    validate_chat_request(with_fields(response_format=type_to_response_format_param(Weather)))


# ---------------------------------------------------------------------------------------------------------
# parse_json_body


def test_parse_json_body_returns_the_object() -> None:
    raw = json.dumps(with_fields(temperature=0.5)).encode()
    assert parse_json_body(raw) == with_fields(temperature=0.5)
    assert parse_json_body('{"model": "é"}'.encode()) == {"model": "é"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "the request body is empty; send a JSON object"),
        (b" \r\n\t", "the request body is empty; send a JSON object"),
        (b'{"model": "\xff"}', "the request body is not valid UTF-8"),
        (b"\xfe\xff\x00{", "the request body is not valid UTF-8"),
        (b"[1, 2]", "the request body must be a JSON object"),
        (b'"hello"', "the request body must be a JSON object"),
        (b"42", "the request body must be a JSON object"),
        (b"null", "the request body must be a JSON object"),
    ],
)
def test_parse_json_body_rejects(raw: bytes, message: str) -> None:
    with pytest.raises(GatewayError) as info:
        parse_json_body(raw)
    error = info.value
    assert (error.message, error.status, error.type, error.param) == (
        message,
        400,
        "invalid_request_error",
        None,
    )
    assert error.code == (
        "invalid_type" if "JSON object" in message and "empty" not in message else "invalid_json"
    )


@pytest.mark.parametrize(
    "raw", [b"{", b"{'model': 'm'}", b'{"model": "m",}', b"model=m&messages=x", b'{"a": 1} x']
)
def test_parse_json_body_says_why_json_is_invalid(raw: bytes) -> None:
    with pytest.raises(GatewayError) as info:
        parse_json_body(raw)
    error = info.value
    assert error.message.startswith("the request body is not valid JSON: ")
    assert len(error.message) > len("the request body is not valid JSON: ")
    assert (error.status, error.code, error.param) == (400, "invalid_json", None)


def test_tool_choice_must_name_a_declared_function() -> None:
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [tool]}
    validate_chat_request({**body, "tool_choice": {"type": "function", "function": {"name": "get_weather"}}})
    with pytest.raises(GatewayError) as caught:
        validate_chat_request({**body, "tool_choice": {"type": "function", "function": {"name": "get_time"}}})
    assert caught.value.param == "tool_choice.function.name"
    assert "'get_time' is not one of the functions in tools" in caught.value.message
    with pytest.raises(GatewayError):
        validate_chat_request(
            {**body, "tools": None, "tool_choice": {"type": "function", "function": {"name": "f"}}}
        )


def test_valid_requests_never_import_jsonschema_when_jsonschema_rs_is_installed() -> None:
    """jsonschema (with referencing, rpds, attrs) only explains rejections: a process that sees only valid
    requests keeps it out of memory (part of the idle-RSS budget)."""
    from tests.support.fresh import printed_by_fresh_python

    code = (
        "import sys\n"
        "from asgi_llm_gateway import Gateway\n"
        "from asgi_llm_gateway.schemas import validate_chat_request\n"
        "validate_chat_request({'model': 'm', 'messages': [{'role': 'user', 'content': 'hi'}]})\n"
        "print('jsonschema' in sys.modules)\n"
        "try:\n"
        "    validate_chat_request({'model': 'm', 'messages': [{'role': 'nobody', 'content': 'hi'}]})\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc.param, 'jsonschema' in sys.modules)\n"
    )
    assert printed_by_fresh_python(code) == ["False", "GatewayError messages[0].role True"]


# ---------------------------------------------------------------------------------------------------------
# Numbers out of range (issue 12, item 6): integers past 64 bits, floats in integer fields, NaN and Infinity


def wire_loads_without_orjson() -> Any:
    """The `loads` that wire.py falls back to when orjson is absent: its own copy of the module, loaded with
    orjson hidden, so the gateway's real modules stay as they are."""
    import importlib.util
    import sys

    from asgi_llm_gateway import wire

    assert wire.__file__ is not None
    spec = importlib.util.spec_from_file_location("_wire_without_orjson", wire.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    saved = sys.modules.get("orjson")
    sys.modules["orjson"] = None  # type: ignore[assignment]  # makes `import orjson` raise ImportError
    try:
        spec.loader.exec_module(module)
    finally:
        if saved is None:
            del sys.modules["orjson"]
        else:
            sys.modules["orjson"] = saved
    return module.loads


@pytest.fixture(params=["orjson", "json"])
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the JSON parser the gateway uses when orjson is installed (the `fast` extra), and with
    the stdlib fallback."""
    if request.param == "json":
        fallback = wire_loads_without_orjson()
        assert fallback.__module__ == "_wire_without_orjson"
        monkeypatch.setattr(schemas, "loads", fallback)
    else:
        from asgi_llm_gateway import wire

        assert vars(schemas)["loads"] is wire.loads
        import orjson

        assert wire.loads is orjson.loads  # the tests run with the `fast` extra
    return str(request.param)


def edge_error(raw: str) -> GatewayError:
    """What the edge answers to a raw body: parsed, then validated, as the gateway does."""
    with pytest.raises(GatewayError) as info:
        validate_chat_request(parse_json_body(raw.encode()))
    return info.value


def raw_body(**raw_fields: str) -> str:
    """BASE as JSON text, with fields whose values are given as raw JSON text."""
    return json.dumps(BASE)[:-1] + "".join(f", {json.dumps(k)}: {v}" for k, v in raw_fields.items()) + "}"


PAST_64_BITS = "100000000000000000000"  # 1e20: orjson reads it as a float, the stdlib as a big int

OUT_OF_RANGE_INTEGERS = [
    ({"max_tokens": PAST_64_BITS}, "max_tokens"),
    ({"max_completion_tokens": PAST_64_BITS}, "max_completion_tokens"),
    ({"max_tokens": "-" + PAST_64_BITS}, "max_tokens"),
    ({"max_tokens": "2147483648"}, "max_tokens"),
    ({"max_completion_tokens": "2147483648"}, "max_completion_tokens"),
    ({"n": PAST_64_BITS}, "n"),
    ({"seed": PAST_64_BITS}, "seed"),
    ({"seed": "9223372036854775808"}, "seed"),  # 2^63: still an int for orjson (it reads up to 2^64 - 1)
    ({"seed": "-9223372036854775809"}, "seed"),  # -2^63 - 1: a float for orjson, equal to the minimum
    ({"seed": "18446744073709551616"}, "seed"),  # 2^64
    ({"logprobs": "true", "top_logprobs": PAST_64_BITS}, "top_logprobs"),
    ({"logit_bias": '{"50256": ' + PAST_64_BITS + "}"}, "logit_bias.50256"),
    ({"max_tokens": "1" + "0" * 400}, "max_tokens"),  # past the float range too
]


@pytest.mark.parametrize(
    ("fields", "param"), OUT_OF_RANGE_INTEGERS, ids=[field_id(f) for f, _ in OUT_OF_RANGE_INTEGERS]
)
def test_integer_past_64_bits_is_rejected_naming_the_field(
    engine: str, parser: str, fields: dict[str, str], param: str
) -> None:
    """Was: `max_tokens: 100000000000000000000` answered 200 and forwarded as 1e+20."""
    error = edge_error(raw_body(**fields))
    assert (error.status, error.type, error.param) == (400, "invalid_request_error", param), error.message
    assert error.message.startswith(f"{param}: ")


def test_an_integer_past_64_bits_is_reported_as_out_of_range() -> None:
    assert edge_error(raw_body(max_tokens=PAST_64_BITS)).message == (
        "max_tokens: 1e+20 is greater than the maximum of 2147483647"
    )
    assert edge_error(raw_body(seed="-9223372036854775809")).message == (
        "seed: expected an integer or null, got -9.223372036854776e+18 "
        "(an integer past the 64-bit range, read as a float)"
    )


NOT_INTEGERS = [
    ({"max_tokens": "1.5"}, "max_tokens"),
    ({"max_tokens": "100.0"}, "max_tokens"),
    ({"max_completion_tokens": "1e3"}, "max_completion_tokens"),
    ({"n": "2.0"}, "n"),
    ({"seed": "1e18"}, "seed"),  # inside the range: only the type can reject it
    ({"seed": "-7.0"}, "seed"),
    ({"logprobs": "true", "top_logprobs": "2.0"}, "top_logprobs"),
    ({"logit_bias": '{"50256": -100, "1": 1.0}'}, "logit_bias.1"),
]


@pytest.mark.parametrize(("fields", "param"), NOT_INTEGERS, ids=[field_id(f) for f, _ in NOT_INTEGERS])
def test_a_float_in_an_integer_field_is_rejected_naming_the_field(
    engine: str, parser: str, fields: dict[str, str], param: str
) -> None:
    """JSON Schema counts 1.0 as an integer, and jsonschema-rs and jsonschema follow it; the gateway does not
    (a float such as 1e18 in `seed` was forwarded as a float)."""
    error = edge_error(raw_body(**fields))
    assert (error.status, error.type, error.param, error.code) == (400, "invalid_request_error", param, TYPE)
    assert error.message.startswith(f"{param}: expected an integer")


def test_a_float_in_an_integer_field_says_how_to_write_it() -> None:
    assert rejection(with_fields(max_tokens=100.0)).message == (
        "max_tokens: expected an integer or null, got 100.0 "
        "(write an integer without a decimal point or exponent)"
    )
    assert (
        rejection(with_fields(max_tokens=1.5)).message == "max_tokens: expected an integer or null, got 1.5"
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"max_tokens": 1, "max_completion_tokens": 1},
        {"max_tokens": 2**31 - 1, "max_completion_tokens": 2**31 - 1},
        {"n": 128},
        {"seed": -(2**63)},
        {"seed": 2**63 - 1},
        {"seed": 0},
        {"logprobs": True, "top_logprobs": 0},
        {"logprobs": True, "top_logprobs": 20},
        {"logit_bias": {"0": -100, "50256": 100}},
        {"logit_bias": {}},
    ],
    ids=field_id,
)
def test_integer_fields_accept_their_whole_range(engine: str, parser: str, fields: dict[str, Any]) -> None:
    body = parse_json_body(json.dumps(with_fields(**fields)).encode())
    assert body == with_fields(**fields)
    validate_chat_request(body)


def test_the_integer_fields_are_the_ones_the_sdk_types_as_int() -> None:
    hints = typing_extensions.get_type_hints(completion_create_params.CompletionCreateParamsBase)
    sdk_ints = {name for name, hint in hints.items() if re.search(r"\bint\b", str(hint))}
    scalars, maps = schemas._integer_fields(load_chat_request_schema())
    assert (
        set(scalars) | set(maps)
        == sdk_ints
        == {
            "max_tokens",
            "max_completion_tokens",
            "n",
            "seed",
            "top_logprobs",
            "logit_bias",
        }
    )
    assert maps == ("logit_bias",)


def test_integers_are_nowhere_else_in_the_schema() -> None:
    """The check after jsonschema-rs looks only at the fields `_integer_fields` lists: an integer field added
    deeper in the schema needs that check to grow, and this test to change."""
    schema = load_chat_request_schema()
    scalars, maps = schemas._integer_fields(schema)
    found: list[str] = []

    def walk(node: object, pointer: str) -> None:
        if isinstance(node, dict):
            kind = node.get("type")
            if kind == "integer" or (isinstance(kind, list) and "integer" in kind):
                found.append(pointer)
            for key, child in node.items():
                walk(child, f"{pointer}/{key}")
        elif isinstance(node, list):
            for index, child in enumerate(node):
                walk(child, f"{pointer}/{index}")

    walk(schema, "")
    expected = {f"/properties/{name}" for name in scalars}
    expected |= {f"/properties/{name}/additionalProperties" for name in maps}
    expected.add("/dependentSchemas/top_logprobs/if/properties/top_logprobs")  # a condition, not a field
    assert set(found) == expected


def float_bodies() -> Iterator[dict[str, Any]]:
    for fields, _ in NOT_INTEGERS:
        yield json.loads(raw_body(**fields))
    yield with_fields(max_tokens=2.0, temperature=1.0)
    yield with_fields(logit_bias={"1": 1, "2": 2.0})
    yield with_fields(logit_bias={"1": 1, "2": 2}, seed=3, n=2, max_tokens=10)
    yield with_fields(temperature=1, top_p=1, frequency_penalty=0, presence_penalty=0)  # ints in floats


def test_the_gateways_fast_check_agrees_with_its_reference_validator() -> None:
    """As the test above, for the two checks the gateway really runs (integers narrowed in both)."""
    fast = schemas._fast_check()
    assert fast is not None
    reference = schemas._validator()
    bodies = [*all_table_bodies(), *float_bodies()]
    disagreements = [body for body in bodies if fast(body) != reference.is_valid(body)]
    assert disagreements == []


NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"]
WHERE = [
    ("max_tokens", "max_tokens"),
    ("temperature", "temperature"),
    ("messages", "messages[0].content"),
    ("tools", "tools[0].function.parameters.properties.x.maximum"),
    ("unknown", 'x_unknown["a b"][1]'),
]


PLACES = {
    "messages": '{"model": "m", "messages": [{"role": "user", "content": VALUE}]}',
    "tools": raw_body(
        tools='[{"type": "function", "function": {"name": "f", "parameters": '
        '{"type": "object", "properties": {"x": {"type": "number", "maximum": VALUE}}}}}]'
    ),
    "unknown": raw_body(x_unknown='{"a b": [1, VALUE]}'),
}


def with_raw_value(where: str, value: str) -> str:
    """A request with `value` (raw JSON text) at the place `where` names: a top-level field, or a key of
    PLACES."""
    return PLACES[where].replace("VALUE", value) if where in PLACES else raw_body(**{where: value})


@pytest.mark.parametrize("value", NON_FINITE)
@pytest.mark.parametrize(("where", "param"), WHERE, ids=[w for w, _ in WHERE])
def test_nan_and_infinity_are_rejected_naming_the_field(
    engine: str, parser: str, where: str, param: str, value: str
) -> None:
    """Was: 400 "not valid JSON: unexpected character … (char 104)", with no field named."""
    error = edge_error(with_raw_value(where, value))
    assert (error.status, error.type, error.param) == (400, "invalid_request_error", param), error.message
    assert error.message.startswith(f"{param}: ")
    assert "char " not in error.message


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            raw_body(max_tokens="NaN"),
            "max_tokens: NaN is not valid JSON (JSON has no NaN or Infinity); send a number or null",
        ),
        (
            raw_body(temperature="-Infinity"),
            "temperature: -Infinity is not valid JSON (JSON has no NaN or Infinity); send a number or null",
        ),
        (
            raw_body(temperature="1e999"),
            "temperature: 1e999 is out of range: a number must fit in a 64-bit float",
        ),
        (
            raw_body(max_tokens="9" * 400),
            f"max_tokens: {'9' * 40}… is out of range: a number must fit in a 64-bit float",
        ),
        (
            "NaN",
            "the request body is not valid JSON: NaN is not valid JSON (JSON has no NaN or Infinity); "
            "send a number or null",
        ),
    ],
)
def test_non_finite_numbers_say_what_is_wrong(raw: str, message: str) -> None:
    with pytest.raises(GatewayError) as info:
        parse_json_body(raw.encode())
    assert info.value.message == message
    assert info.value.code == "invalid_json"


@pytest.mark.parametrize(
    "raw",
    [
        raw_body(max_tokens="NaN")[:-1] + ",}",  # broken twice: the parser's own message stands
        raw_body(x='"\\ud800"'),  # a lone surrogate: orjson says no, the stdlib finds no bad number
    ],
)
def test_a_body_broken_otherwise_keeps_the_parsers_message(raw: str) -> None:
    with pytest.raises(GatewayError) as info:
        parse_json_body(raw.encode())
    assert info.value.message.startswith("the request body is not valid JSON: ")
    assert (info.value.param, info.value.code) == (None, "invalid_json")


def test_a_body_nested_too_deeply_is_a_400_with_either_parser(parser: str) -> None:
    with pytest.raises(GatewayError) as info:
        parse_json_body(b'{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    assert (info.value.status, info.value.code, info.value.param) == (400, "invalid_json", None)


def test_out_of_range_numbers_are_answered_400_by_the_gateway() -> None:
    """The same through the ASGI app: 400 in the OpenAI envelope, `param` set."""
    import anyio

    from asgi_llm_gateway import Gateway

    async def post(raw: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=Gateway())
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
            return await http.post(
                "/v1/chat/completions", content=raw, headers={"content-type": "application/json"}
            )

    body = {"model": "echo/echo-1", "messages": [{"role": "user", "content": "hi"}]}
    for raw, param in [
        (json.dumps(body)[:-1] + f', "max_tokens": {PAST_64_BITS}}}', "max_tokens"),
        (json.dumps(body)[:-1] + ', "temperature": NaN}', "temperature"),
        (json.dumps(body)[:-1] + ', "n": 2.0}', "n"),
    ]:
        response = anyio.run(post, raw)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert (error["type"], error["param"]) == ("invalid_request_error", param)
    assert anyio.run(post, json.dumps({**body, "max_tokens": 5})).status_code == 200
