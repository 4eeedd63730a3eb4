"""The Gemini translation (golden fixtures, compared exactly) and the provider's I/O (httpx.MockTransport)."""

from __future__ import annotations

import enum
import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

import httpx
import pytest
from openai.lib._pydantic import to_strict_json_schema
from pydantic import BaseModel, Field

from asgi_llm_gateway.errors import GatewayError
from asgi_llm_gateway.providers.gemini import (
    DUMMY_THOUGHT_SIGNATURE,
    GeminiProvider,
    StreamDecoder,
    StreamTranslator,
    decode_tool_call_id,
    encode_tool_call_id,
    sanitize_json_schema,
    to_completion,
    to_native,
    to_openapi_schema,
)
from asgi_llm_gateway.providers.reasoning import scope_for
from asgi_llm_gateway.providers.sealing import scope_tag
from tests.support.golden import fixture, golden

KEY = "AIzaSyTEST-provider-key-000000000000"
CREATED = 1700000000
#: The provider scope the golden fixtures were made for (their signed ids carry its tag with the model's).
GOLDEN_SCOPE = "gemini-golden"
#: The seal scope of the unit tests' model "m".
SCOPE = scope_for(GOLDEN_SCOPE, "m")


# -- golden fixtures -------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", golden("gemini", "request"))
def test_request_translation(case: dict[str, Any]) -> None:
    frozen = json.dumps(case["openai"])
    scope = scope_for(GOLDEN_SCOPE, case["model"])
    assert (
        to_native(case["openai"], case["model"], scope=scope, json_schema=case["json_schema"])
        == case["gemini"]
    )
    assert json.dumps(case["openai"]) == frozen  # the request is read-only


@pytest.mark.parametrize("case", golden("gemini", "response"))
def test_response_translation(case: dict[str, Any]) -> None:
    scope = scope_for(GOLDEN_SCOPE, case["model"])
    assert to_completion(case["gemini"], case["model"], scope=scope, created=CREATED) == case["openai"]


@pytest.mark.parametrize("case", golden("gemini", "stream"))
def test_stream_translation(case: dict[str, Any]) -> None:
    translator = StreamTranslator(
        case["model"], scope=scope_for(GOLDEN_SCOPE, case["model"]), created=CREATED
    )
    chunks = [chunk for event in case["events"] for chunk in translator.feed(event)]
    assert chunks + translator.end() == case["chunks"]


class Color(str, enum.Enum):
    red = "red"
    green = "green"


class Address(BaseModel):
    street: str
    zip: str | None = None


class Person(BaseModel):
    """A person."""

    name: str = Field(description="Full name")
    age: int = Field(ge=0, le=150)
    color: Color
    kind: Literal["human"] = "human"
    home: Address = Field(description="Where they live")
    work: Address | None = None
    tags: list[str] = []
    scores: dict[str, float] = {}


@pytest.mark.parametrize(
    ("name", "generated"),
    [
        ("pydantic_person", Person.model_json_schema),
        ("pydantic_person_strict", lambda: to_strict_json_schema(Person)),  # what openai's `parse` sends
    ],
)
def test_schema_conversion_of_pydantic_models(name: str, generated: Callable[[], Any]) -> None:
    case = fixture("gemini", "schema", name)
    assert generated() == case["input"]  # the fixture really is what Pydantic (and openai) produce
    assert sanitize_json_schema(case["input"], "p") == case["parametersJsonSchema"]
    assert to_openapi_schema(case["input"], "p") == case["parameters"]


def test_sanitized_schema_keeps_only_documented_keywords() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "n": {"type": "integer", "exclusiveMinimum": 0, "multipleOf": 2, "default": 2},
            "s": {"type": "string", "minLength": 1, "pattern": "^a", "examples": ["a"]},
            "c": {"const": 3},
            "one": {"allOf": [{"$ref": "#/$defs/X"}], "description": "d"},
            "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"not": {"type": "null"}}]},
        },
        "$defs": {"X": {"type": "object", "if": {}, "then": {}, "properties": {}}},
    }
    assert sanitize_json_schema(schema, "p") == {
        "type": "object",
        "properties": {
            "n": {"type": "integer"},
            "s": {"type": "string"},
            "c": {"enum": [3]},
            "one": {"anyOf": [{"$ref": "#/$defs/X"}], "description": "d"},
            "pair": {"type": "array", "prefixItems": [{"type": "string"}, {}]},
        },
        "$defs": {"X": {"type": "object", "properties": {}}},
    }


@pytest.mark.parametrize(
    "schema",
    [
        {"allOf": [{"type": "object"}, {"type": "object"}]},
        {"type": ["string", "integer"], "anyOf": [{"minimum": 1}]},
    ],
)
def test_schemas_that_cannot_be_expressed_are_a_400(schema: dict[str, Any]) -> None:
    with pytest.raises(GatewayError) as caught:
        sanitize_json_schema(schema, "tools[0].function.parameters")
    assert caught.value.status == 400 and caught.value.param == "tools[0].function.parameters"


def test_openapi_conversion_refuses_recursion_and_dangling_refs() -> None:
    tree = {
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/Node"}}},
            }
        }
    }
    with pytest.raises(GatewayError, match="recursive schemas"):
        to_openapi_schema({**tree, "$ref": "#/$defs/Node"}, "p")
    with pytest.raises(GatewayError, match="is not defined"):
        to_openapi_schema({"type": "object", "properties": {"a": {"$ref": "#/$defs/Missing"}}}, "p")
    # Recursion is fine where refs survive: the JSON Schema field.
    assert sanitize_json_schema({**tree, "$ref": "#/$defs/Node"}, "p")["$ref"] == "#/$defs/Node"


def test_openapi_conversion_of_unions_and_formats() -> None:
    schema = {
        "type": "object",
        "properties": {
            "when": {"type": "string", "format": "date-time"},
            "mail": {"type": "string", "format": "email"},
            "either": {"oneOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]},
            "level": {"type": "integer", "enum": [1, 2]},
        },
    }
    assert to_openapi_schema(schema, "p") == {
        "type": "OBJECT",
        "properties": {
            "when": {"type": "STRING", "format": "date-time"},
            "mail": {"type": "STRING"},
            "either": {"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}], "nullable": True},
            "level": {"type": "INTEGER"},
        },
    }


# -- tool-call ids ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("upstream_id", "signature"),
    [
        (None, None),
        (None, "CiIBVKhc7oKnlCJ0xQ+/ab=="),
        ("fc-1", None),
        ("fc_1/ü", "AbCd"),
        (None, "a" * 4000),
    ],
)
def test_tool_call_ids_round_trip(upstream_id: str | None, signature: str | None) -> None:
    tool_call_id = encode_tool_call_id("0123456789abcdef01234567", upstream_id, signature, SCOPE)
    assert decode_tool_call_id(tool_call_id, SCOPE) == (upstream_id, signature)
    if signature is not None or upstream_id is None:
        assert tool_call_id.startswith("call_")
        assert re.fullmatch(r"[A-Za-z0-9_-]+", tool_call_id)  # Anthropic's tool_use id pattern


def test_foreign_ids_go_back_verbatim() -> None:
    assert decode_tool_call_id("call_AbC123", SCOPE) == ("call_AbC123", None)
    assert decode_tool_call_id("toolu_01XYZ", SCOPE) == ("toolu_01XYZ", None)


@pytest.mark.parametrize("upstream_id", [None, "fc-1"])
@pytest.mark.parametrize(
    "reader",
    [scope_for(GOLDEN_SCOPE, "gemini-3-pro"), scope_for("gemini-other-key", "m"), "m", GOLDEN_SCOPE],
    ids=["another_model", "another_provider_scope", "the_model_alone", "the_provider_alone"],
)
def test_a_signature_goes_back_only_to_the_scope_and_model_that_made_it(
    upstream_id: str | None, reader: str
) -> None:
    tool_call_id = encode_tool_call_id("0123456789abcdef01234567", upstream_id, "CiIBVKhc7o+/ab==", SCOPE)
    assert decode_tool_call_id(tool_call_id, reader) == (upstream_id, None)  # the upstream id still goes back
    assert decode_tool_call_id(tool_call_id, SCOPE) == (upstream_id, "CiIBVKhc7o+/ab==")


def test_the_id_carries_a_short_tag_of_scope_and_model_not_the_scope() -> None:
    tool_call_id = encode_tool_call_id("0123456789abcdef01234567", None, "AbCd", SCOPE)
    assert tool_call_id == f"call_0123456789abcdef01234567-{scope_tag(SCOPE)}_AbCd"
    assert GOLDEN_SCOPE not in tool_call_id and len(scope_tag(SCOPE)) == 12
    assert scope_tag(SCOPE) != scope_tag(scope_for(GOLDEN_SCOPE, "m2"))


@pytest.mark.parametrize("upstream_id", [None, "fc-1"])
def test_ids_issued_before_binding_keep_their_upstream_id_and_lose_their_signature(
    upstream_id: str | None,
) -> None:
    """`call_<head>_<signature>` (no tag) was issued before signatures were bound: whose it is cannot be
    known, so it is treated as another model's (Gemini 3 gets the placeholder, `test_request_translation`)."""
    head = "i" + upstream_id.encode().hex() if upstream_id else "0123456789abcdef01234567"
    assert decode_tool_call_id(f"call_{head}_CiIBVKhc7oKnlCJ0xQ-_ab", SCOPE) == (upstream_id, None)


def test_an_altered_tag_drops_the_signature() -> None:
    tool_call_id = encode_tool_call_id("0123456789abcdef01234567", None, "AbCd", SCOPE)
    tag = scope_tag(SCOPE)
    forged = tool_call_id.replace(tag, ("0" if tag[0] != "0" else "1") + tag[1:])
    assert decode_tool_call_id(forged, SCOPE) == (None, None)


def test_synthetic_ids_are_stable_per_response() -> None:
    response = {
        "candidates": [{"content": {"parts": [{"functionCall": {"name": "f"}}]}, "finishReason": "STOP"}],
        "responseId": "same",
    }
    first = to_completion(response, "m", scope=SCOPE)["choices"][0]["message"]["tool_calls"][0]["id"]
    assert first == to_completion(response, "m", scope=SCOPE)["choices"][0]["message"]["tool_calls"][0]["id"]
    assert (
        first
        != to_completion({**response, "responseId": "other"}, "m", scope=SCOPE)["choices"][0]["message"][
            "tool_calls"
        ][0]["id"]
    )
    without_id = {"candidates": response["candidates"]}
    assert (
        to_completion(without_id, "m", scope=SCOPE)["id"] != to_completion(without_id, "m", scope=SCOPE)["id"]
    )


# -- request errors --------------------------------------------------------------------------------------


def _user(*parts: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": "m",
        "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": list(parts)}],
    }


@pytest.mark.parametrize(
    ("request_", "param"),
    [
        (_user({"type": "video_url", "video_url": {}}), "messages[1].content[0].type"),
        (
            _user({"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}),
            "messages[1].content[0].image_url.url",
        ),
        (
            _user({"type": "image_url", "image_url": {"url": "data:image/png,raw"}}),
            "messages[1].content[0].image_url.url",
        ),
        (
            _user({"type": "input_audio", "input_audio": {"data": "AA==", "format": "flac"}}),
            "messages[1].content[0].input_audio.format",
        ),
        (_user({"type": "file", "file": {"file_id": "file-1"}}), "messages[1].content[0].file.file_id"),
        (
            _user({"type": "file", "file": {"file_data": "AA==", "filename": "x.unknownext"}}),
            "messages[1].content[0].file.file_data",
        ),
        (
            {"model": "m", "messages": [{"role": "system", "content": [{"type": "image_url"}]}]},
            "messages[0].content[0].type",
        ),
        ({"model": "m", "messages": [{"role": "system", "content": "only instructions"}]}, "messages"),
        ({"model": "m", "messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0].role"),
        (
            {
                "model": "m",
                "messages": [
                    {"role": "user", "content": "x"},
                    {"role": "tool", "tool_call_id": "nope", "content": "r"},
                ],
            },
            "messages[1].tool_call_id",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": "c", "type": "custom", "custom": {"name": "g", "input": "x"}}],
                    }
                ],
            },
            "messages[0].tool_calls[0].type",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}
                        ],
                    }
                ],
            },
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            {**_user({"type": "text", "text": "x"}), "tools": [{"type": "custom", "custom": {"name": "g"}}]},
            "tools[0].type",
        ),
        (
            {
                **_user({"type": "text", "text": "x"}),
                "tools": [{"type": "function", "function": {"name": "f"}}],
                "tool_choice": {"type": "custom", "custom": {"name": "g"}},
            },
            "tool_choice",
        ),
        ({**_user({"type": "text", "text": "x"}), "audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ({**_user({"type": "text", "text": "x"}), "modalities": ["text", "audio"]}, "modalities"),
        (
            {**_user({"type": "text", "text": "x"}), "prediction": {"type": "content", "content": "x"}},
            "prediction",
        ),
        ({**_user({"type": "text", "text": "x"}), "web_search_options": {}}, "web_search_options"),
        ({**_user({"type": "text", "text": "x"}), "functions": [{"name": "f"}]}, "functions"),
    ],
)
def test_what_gemini_cannot_take_is_a_400_with_its_param(request_: dict[str, Any], param: str) -> None:
    with pytest.raises(GatewayError) as caught:
        to_native(request_, "gemini-3-flash", scope=SCOPE)
    assert caught.value.status == 400 and caught.value.param == param


# -- response and stream errors --------------------------------------------------------------------------


BLOCKED = {
    "promptFeedback": {"blockReason": "PROHIBITED_CONTENT", "blockReasonMessage": "nope"},
    "responseId": "b",
}


def test_a_blocked_prompt_is_a_content_filter_400() -> None:
    for run in (
        lambda: to_completion(BLOCKED, "m", scope=SCOPE),
        lambda: StreamTranslator("m", scope=SCOPE).feed(BLOCKED),
    ):
        with pytest.raises(GatewayError) as caught:
            run()
        assert (caught.value.status, caught.value.code) == (400, "content_filter")
        assert "PROHIBITED_CONTENT: nope" in caught.value.message


@pytest.mark.parametrize(
    ("reason", "status"),
    [("MALFORMED_FUNCTION_CALL", 502), ("TOO_MANY_TOOL_CALLS", 502), ("MISSING_THOUGHT_SIGNATURE", 400)],
)
def test_failed_answers_are_errors_not_empty_successes(reason: str, status: int) -> None:
    response = {"candidates": [{"finishReason": reason, "finishMessage": "bad call"}]}
    with pytest.raises(GatewayError) as caught:
        to_completion(response, "m", scope=SCOPE)
    assert caught.value.status == status
    translator = StreamTranslator("m", scope=SCOPE)
    with pytest.raises(GatewayError):
        translator.feed(response)


def test_a_response_without_candidates_is_a_502() -> None:
    with pytest.raises(GatewayError) as caught:
        to_completion({"usageMetadata": {}}, "m", scope=SCOPE)
    assert (caught.value.status, caught.value.code) == (502, "upstream_bad_response")


@pytest.mark.parametrize(
    "events",
    [
        [],
        [{"usageMetadata": {"promptTokenCount": 1}}],
        [{"candidates": [{"content": {"parts": [{"text": "cut"}]}}]}],
        [
            {"candidates": [{"index": 0, "content": {"parts": [{"text": "a"}]}, "finishReason": "STOP"}]},
            {"candidates": [{"index": 1, "content": {"parts": [{"text": "b"}]}}]},
        ],
    ],
)
def test_a_stream_without_a_finish_reason_is_a_502(events: list[dict[str, Any]]) -> None:
    translator = StreamTranslator("m", scope=SCOPE)
    for event in events:
        translator.feed(event)
    with pytest.raises(GatewayError) as caught:
        translator.end()
    assert (caught.value.status, caught.value.code) == (502, "upstream_stream_incomplete")


# -- stream framing --------------------------------------------------------------------------------------


def test_decoder_reads_events_split_anywhere() -> None:
    body = b'data: {"a": 1}\r\n\r\n: keep-alive\r\n\r\ndata: {"b":\r\ndata: 2}\r\n\r\n'
    for size in (1, 2, 7, len(body)):
        decoder = StreamDecoder()
        payloads = [p for i in range(0, len(body), size) for p in decoder.feed(body[i : i + size])]
        assert payloads + decoder.flush() == [{"a": 1}, {"b": 2}]


@pytest.mark.parametrize("last_line_end", [b"\n", b""])
def test_decoder_finds_a_bare_json_error_after_the_events(last_line_end: bytes) -> None:
    error = {"error": {"code": 503, "message": "The model is overloaded. {braces}", "status": "UNAVAILABLE"}}
    body = b'data: {"a": 1}\n\n' + json.dumps(error, indent=2).encode() + last_line_end
    for size in (3, len(body)):
        decoder = StreamDecoder()
        payloads = [p for i in range(0, len(body), size) for p in decoder.feed(body[i : i + size])]
        assert payloads + decoder.flush() == [{"a": 1}, error]


@pytest.mark.parametrize(
    "body", [b"data: {not json}\n\n", b'data: {"a": 1}\n\n<html>oops</html>\n', b'{"error": {']
)
def test_decoder_rejects_garbage(body: bytes) -> None:
    decoder = StreamDecoder()
    with pytest.raises(GatewayError) as caught:
        decoder.feed(body)
        decoder.flush()
    assert caught.value.status == 502


# -- the provider over HTTP ------------------------------------------------------------------------------

Handler = Callable[[httpx.Request], httpx.Response]
ANSWER = {
    "candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}]}, "finishReason": "STOP"}],
    "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2},
    "responseId": "r",
}
REQUEST = {"model": "g/gemini-3-flash", "messages": [{"role": "user", "content": "hi"}]}


def provider(handler: Handler, **kwargs: Any) -> GeminiProvider:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return GeminiProvider(api_key=KEY, base_url="https://gemini.test/", client=client, **kwargs)


def sse(*events: Any, tail: bytes = b"") -> httpx.Response:
    body = b"".join(b"data: " + json.dumps(e).encode() + b"\r\n\r\n" for e in events) + tail
    return httpx.Response(200, stream=httpx.ByteStream(body), headers={"content-type": "text/event-stream"})


async def collect(stream: AsyncIterator[dict[str, Any]]) -> list[dict[str, Any]]:
    return [chunk async for chunk in stream]


@pytest.mark.anyio
async def test_complete_sends_the_key_in_a_header_to_the_v1beta_url() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=ANSWER)

    result = await provider(handler).complete(REQUEST, "gemini-3-flash")
    assert result["choices"][0]["message"]["content"] == "hi"
    (request,) = seen
    assert str(request.url) == "https://gemini.test/v1beta/models/gemini-3-flash:generateContent"
    assert request.headers["x-goog-api-key"] == KEY and "authorization" not in request.headers
    assert json.loads(request.content) == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


@pytest.mark.anyio
async def test_stream_uses_alt_sse_and_yields_role_deltas_finish_usage() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        first = {"candidates": [{"content": {"parts": [{"text": "Hel"}]}}], "responseId": "r"}
        last = {**ANSWER, "candidates": [{"content": {"parts": [{"text": "lo"}]}, "finishReason": "STOP"}]}
        return sse(first, last)

    chunks = await collect(provider(handler).stream({**REQUEST, "stream": True}, "gemini-3-flash"))
    assert (
        str(seen[0].url) == "https://gemini.test/v1beta/models/gemini-3-flash:streamGenerateContent?alt=sse"
    )
    assert [c["choices"][0]["delta"] if c["choices"] else "usage" for c in chunks] == [
        {"role": "assistant", "content": ""},
        {"content": "Hel"},
        {"content": "lo"},
        {},
        "usage",
    ]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.anyio
async def test_api_version_v1_converts_schemas() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/models/gemini-2.5-flash:generateContent"
        seen.append(json.loads(request.content))
        return httpx.Response(200, json=ANSWER)

    tool = {
        "type": "function",
        "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}},
    }
    await provider(handler, api_version="v1").complete({**REQUEST, "tools": [tool]}, "gemini-2.5-flash")
    assert seen[0]["tools"] == [
        {
            "functionDeclarations": [
                {"name": "f", "parameters": {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}}}
            ]
        }
    ]


def test_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.setenv("GOOGLE_API_KEY", "google-key")
    assert GeminiProvider().api_key == "google-key"
    monkeypatch.setenv("GEMINI_API_KEY", "gemini-key")
    provider = GeminiProvider()
    assert provider.api_key == "gemini-key" and provider.auth_headers() == {"x-goog-api-key": "gemini-key"}
    assert provider.base_url == "https://generativelanguage.googleapis.com"
    assert "gemini-key" not in repr(provider)


def google_error(status: int, google_status: str, message: str, **extra: Any) -> httpx.Response:
    return httpx.Response(
        status, json={"error": {"code": status, "message": message, "status": google_status, **extra}}
    )


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("upstream", "status", "code"),
    [
        (google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received."), 400, "invalid_argument"),
        (
            google_error(400, "FAILED_PRECONDITION", "User location is not supported."),
            400,
            "failed_precondition",
        ),
        (
            google_error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers."),
            502,
            "upstream_authentication_error",
        ),
        (
            # Google answers a bad key with a 400; it is the gateway's credential, not the client's request.
            google_error(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
                details=[{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}],
            ),
            502,
            "upstream_authentication_error",
        ),
        (
            google_error(404, "NOT_FOUND", "models/x is not found for API version v1beta"),
            404,
            "model_not_found",
        ),
        (google_error(500, "INTERNAL", "An internal error has occurred."), 502, "upstream_error"),
        (google_error(503, "UNAVAILABLE", "The model is overloaded."), 503, "upstream_overloaded"),
        (google_error(504, "DEADLINE_EXCEEDED", "Deadline expired."), 504, "upstream_timeout"),
        (httpx.Response(502, text="<html>Bad Gateway</html>"), 502, "upstream_error"),
    ],
)
async def test_google_errors_map_to_openai_statuses(upstream: httpx.Response, status: int, code: str) -> None:
    for call in ("complete", "stream"):
        gemini = provider(lambda request: upstream)
        with pytest.raises(GatewayError) as caught:
            if call == "complete":
                await gemini.complete(REQUEST, "gemini-3-flash")
            else:
                await collect(gemini.stream(REQUEST, "gemini-3-flash"))
        assert (caught.value.status, caught.value.code) == (status, code)
        assert caught.value.message.startswith("gemini: ")
        body = upstream.json() if upstream.headers.get("content-type") == "application/json" else None
        if body:
            assert body["error"]["message"] in caught.value.message


@pytest.mark.anyio
async def test_quota_errors_carry_the_retry_delay() -> None:
    details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "16.2s"}]
    upstream = google_error(429, "RESOURCE_EXHAUSTED", f"Quota exceeded for key {KEY}", details=details)
    with pytest.raises(GatewayError) as caught:
        await provider(lambda request: upstream).complete(REQUEST, "gemini-3-flash")
    assert (caught.value.status, caught.value.headers) == (429, {"retry-after": "17"})
    assert KEY not in caught.value.message


@pytest.mark.anyio
async def test_an_error_inside_the_stream_is_raised_after_the_deltas() -> None:
    error = {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
    partial = {"candidates": [{"content": {"parts": [{"text": "Hel"}]}}], "responseId": "r"}
    for tail in (
        json.dumps(error, indent=2).encode() + b"\n",
        b"data: " + json.dumps(error).encode() + b"\n\n",
    ):
        gemini = provider(lambda request, tail=tail: sse(partial, tail=tail))
        received: list[dict[str, Any]] = []
        with pytest.raises(GatewayError) as caught:
            async for chunk in gemini.stream(REQUEST, "gemini-3-flash"):
                received.append(chunk)
        assert [c["choices"][0]["delta"] for c in received] == [
            {"role": "assistant", "content": ""},
            {"content": "Hel"},
        ]
        assert caught.value.status == 503 and "overloaded" in caught.value.message


@pytest.mark.anyio
async def test_a_json_error_answering_a_stream_request_is_not_swallowed() -> None:
    body = [{"error": {"code": 400, "message": "Bad schema", "status": "INVALID_ARGUMENT"}}]
    gemini = provider(lambda request: httpx.Response(200, json=body))
    with pytest.raises(GatewayError) as caught:
        await collect(gemini.stream(REQUEST, "gemini-3-flash"))
    assert caught.value.status == 502 and "Bad schema" in caught.value.message


@pytest.mark.anyio
async def test_a_stream_that_stops_early_is_a_502() -> None:
    partial = {"candidates": [{"content": {"parts": [{"text": "Hel"}]}}], "responseId": "r"}
    with pytest.raises(GatewayError) as caught:
        await collect(provider(lambda request: sse(partial)).stream(REQUEST, "gemini-3-flash"))
    assert (caught.value.status, caught.value.code) == (502, "upstream_stream_incomplete")

    class Broken(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield b"data: " + json.dumps(partial).encode() + b"\n\n"
            raise httpx.RemoteProtocolError("peer closed connection")

    broken = httpx.Response(200, stream=Broken(), headers={"content-type": "text/event-stream"})
    with pytest.raises(GatewayError) as cut:
        await collect(provider(lambda request: broken).stream(REQUEST, "gemini-3-flash"))
    assert (cut.value.status, cut.value.code) == (502, "upstream_stream_error")


@pytest.mark.anyio
async def test_gemini_3_history_without_signatures_gets_googles_placeholder() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json=ANSWER)

    call = {"id": "call_from_elsewhere", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    request = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_from_elsewhere", "content": "done"},
        ],
    }
    gemini = provider(handler)
    await gemini.complete(request, "gemini-3-flash")
    await gemini.complete(request, "gemini-2.5-flash")
    assert seen[0]["contents"][1]["parts"][0]["thoughtSignature"] == DUMMY_THOUGHT_SIGNATURE
    assert "thoughtSignature" not in seen[1]["contents"][1]["parts"][0]


@pytest.mark.anyio
async def test_list_models_keeps_generate_content_models() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.method == "GET" and request.url.path == "/v1beta/models"
        assert request.headers["x-goog-api-key"] == KEY
        models = [
            {
                "name": "models/gemini-3-flash",
                "supportedGenerationMethods": ["generateContent", "countTokens"],
            },
            {"name": "models/text-embedding-004", "supportedGenerationMethods": ["embedContent"]},
        ]
        return httpx.Response(200, json={"models": models})

    assert await provider(handler).list_models() == ["gemini-3-flash"]
    assert await provider(handler, models=["gemini-x"]).list_models() == ["gemini-x"]


# -- count_tokens -------------------------------------------------------------------------------------------

COUNTED = {
    "model": "m",
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}],
}
COUNTED_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


@pytest.mark.anyio
async def test_count_tokens_through_the_fake_includes_system_and_tools() -> None:
    from tests.fakes.gemini import KEY as FAKE_KEY
    from tests.fakes.gemini import FakeGemini, Fault
    from tests.support.server import serve

    fake = FakeGemini()
    with serve(fake.app()) as url:
        gemini = GeminiProvider(api_key=FAKE_KEY, base_url=url)
        try:
            bare = await gemini.count_tokens(COUNTED, "gemini-3-flash")
            with_tools = await gemini.count_tokens({**COUNTED, "tools": COUNTED_TOOLS}, "gemini-3-flash")
            sent = fake.requests[-1]
            fake.faults.append(Fault(status=429))
            with pytest.raises(GatewayError) as caught:
                await gemini.count_tokens(COUNTED, "gemini-3-flash")
        finally:
            await gemini.aclose()
    assert sent["path"] == "/v1beta/models/gemini-3-flash:countTokens"
    native = to_native({**COUNTED, "tools": COUNTED_TOOLS}, "gemini-3-flash", scope=SCOPE)
    assert sent["body"] == {
        "generateContentRequest": {
            "model": "models/gemini-3-flash",
            "contents": native["contents"],
            "systemInstruction": native["systemInstruction"],
            "tools": native["tools"],
        }
    }
    assert bare == 4 and with_tools is not None and with_tools > bare
    assert caught.value.status == 429 and caught.value.headers["retry-after"] == "7"


@pytest.mark.anyio
async def test_count_tokens_names_a_tuned_model_and_refuses_an_answer_without_a_count() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200, json={"totalTokens": 12} if len(seen) == 1 else {"cachedContentTokenCount": 1}
        )

    gemini = provider(handler)
    assert await gemini.count_tokens(REQUEST, "tunedModels/my-model") == 12
    assert str(seen[0].url) == "https://gemini.test/v1beta/tunedModels/my-model:countTokens"
    assert json.loads(seen[0].content)["generateContentRequest"]["model"] == "tunedModels/my-model"
    with pytest.raises(GatewayError) as caught:
        await gemini.count_tokens(REQUEST, "gemini-3-flash")
    assert (caught.value.status, caught.value.code) == (502, "upstream_bad_response")
