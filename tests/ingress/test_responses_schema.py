"""The Responses request contract (schemas/responses_request.schema.json) and `validate_responses_request`.

Each table row is a body and the exact 400 it gets (param, code, message), checked with the pure-Python
validator alone and with jsonschema-rs answering valid bodies; the two validators must agree on every body.
What the official `openai` SDK sends, and what Codex sends (the `codex_session` fixture), passes.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Iterator
from typing import Any

import jsonschema_rs
import openai
import pydantic
import pytest
import typing_extensions
from jsonschema import Draft202012Validator  # type: ignore[import-untyped, unused-ignore]
from openai import _base_client
from openai.types.responses import response_create_params

from asgi_llm_gateway import schemas
from asgi_llm_gateway.errors import GatewayError
from asgi_llm_gateway.schemas import (
    load_responses_request_schema,
    parse_json_body,
    validate_responses_request,
)
from tests.support.golden import fixture, golden

MODEL = "claude-sonnet-4-6"
BASE: dict[str, Any] = {"model": MODEL, "input": "Hi"}
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": False,
}
FUNCTION = {"type": "function", "name": "f"}


@pytest.fixture(params=["jsonschema", "jsonschema-rs"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the pure-Python validator alone, and with jsonschema-rs answering valid bodies."""
    if request.param == "jsonschema":
        monkeypatch.setattr(schemas, "_fast_validator", lambda contract: None)
    else:
        assert schemas._fast_validator("responses") is not None
    return str(request.param)


def with_fields(**fields: Any) -> dict[str, Any]:
    return {**BASE, **fields}


def with_items(*items: Any) -> dict[str, Any]:
    return with_fields(input=list(items))


def user_parts(*parts: Any) -> dict[str, Any]:
    return with_items({"role": "user", "content": list(parts)})


GOOD = {
    "minimal": {"model": MODEL},
    "string_input": BASE,
    "easy_messages": with_items(
        {"role": "developer", "content": "Be brief."},
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "assistant", "content": [{"type": "output_text", "text": "Hello"}]},
    ),
    "typed_items_with_ids_and_status": with_items(
        {
            "id": "msg_1",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_text", "text": "Hi"}],
        },
        {
            "id": "msg_2",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "phase": "final_answer",
            "content": [{"type": "output_text", "text": "Hello", "annotations": [], "logprobs": []}],
        },
    ),
    "every_part_type": user_parts(
        {"type": "input_text", "text": "Look"},
        {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "high"},
        {"type": "input_image", "file_id": "file-1"},
        {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": None},
        {"type": "input_file", "file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
        {"type": "input_file", "file_url": "https://example.com/a.pdf"},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "mp3"}},
        {"type": "output_text", "text": "quoted"},
        {"type": "refusal", "refusal": "no"},
    ),
    "tool_round_trip": with_items(
        {
            "type": "function_call",
            "id": "fc_1",
            "status": "completed",
            "call_id": "c1",
            "name": "f",
            "arguments": "{}",
        },
        {
            "type": "function_call",
            "call_id": "c2",
            "name": "read",
            "namespace": "mcp__files__",
            "arguments": "{}",
        },
        {"type": "function_call_output", "call_id": "c1", "output": "ok"},
        {
            "type": "function_call_output",
            "call_id": "c2",
            "output": [
                {"type": "input_text", "text": "ok"},
                {"type": "input_image", "image_url": "https://example.com/a.png"},
            ],
        },
    ),
    "reasoning_without_id": with_items(
        {"type": "reasoning", "summary": [], "content": None, "encrypted_content": "gAAAA"},
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [{"type": "summary_text", "text": "t"}],
            "encrypted_content": None,
        },
    ),
    "item_reference": with_items({"type": "item_reference", "id": "msg_1"}),
    "unknown_item_types": with_items(
        {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search"}},
        {"type": "custom_tool_call", "call_id": "c", "name": "apply_patch", "input": "x"},
        {
            "type": "local_shell_call",
            "call_id": "c",
            "status": "completed",
            "action": {"type": "exec", "command": ["ls"]},
        },
        {"type": "a_future_item", "anything": [1, 2]},
    ),
    "function_tools": with_fields(
        tools=[
            WEATHER,
            {"type": "function", "name": "ping"},
            {
                "type": "function",
                "name": "noop",
                "parameters": None,
                "strict": None,
                "description": None,
                "defer_loading": True,
            },
        ]
    ),
    "namespace_tools": with_fields(
        tools=[
            {
                "type": "namespace",
                "name": "mcp__files__",
                "description": "Files.",
                "tools": [{**WEATHER, "defer_loading": True}, {"type": "custom", "name": "patch"}],
            }
        ],
        tool_choice={"type": "function", "name": "get_weather"},
    ),
    "built_in_tools": with_fields(
        tools=[
            {"type": "web_search", "external_web_access": False},
            {"type": "web_search_preview"},
            {"type": "file_search", "vector_store_ids": ["vs_1"]},
            {"type": "local_shell"},
            {
                "type": "custom",
                "name": "apply_patch",
                "format": {"type": "grammar", "syntax": "lark", "definition": "x"},
            },
            {"type": "mcp", "server_label": "x", "server_url": "https://mcp.example.com"},
            {"type": "a_future_tool", "x": 1},
        ]
    ),
    "tool_choice_strings": with_fields(tools=[FUNCTION], tool_choice="required"),
    "tool_choice_function": with_fields(tools=[FUNCTION], tool_choice={"type": "function", "name": "f"}),
    "tool_choice_allowed_tools": with_fields(
        tools=[FUNCTION],
        tool_choice={"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "f"}]},
    ),
    "tool_choice_built_in": with_fields(tools=[{"type": "file_search"}], tool_choice={"type": "file_search"}),
    "tool_choice_mcp": with_fields(tool_choice={"type": "mcp", "server_label": "x"}),
    "text_json_schema": with_fields(
        text={
            "format": {
                "type": "json_schema",
                "name": "w",
                "schema": {"type": "object"},
                "strict": True,
                "description": "d",
            },
            "verbosity": "high",
        }
    ),
    "text_json_object": with_fields(text={"format": {"type": "json_object"}}),
    "text_plain": with_fields(text={"format": {"type": "text"}, "verbosity": None}),
    "reasoning_levels": with_fields(reasoning={"effort": "xhigh", "summary": "detailed"}),
    "reasoning_max": with_fields(reasoning={"effort": "max", "summary": None, "generate_summary": "auto"}),
    "limits_and_sampling": with_fields(
        max_output_tokens=16, max_tool_calls=0, top_logprobs=20, temperature=2, top_p=0, metadata={"k": "v"}
    ),
    "identity": with_fields(user="u", safety_identifier="s" * 64, prompt_cache_key="k"),
    "state_and_streaming": with_fields(
        stream=True,
        stream_options={"include_obfuscation": False},
        store=False,
        background=False,
        previous_response_id="resp_1",
        conversation="conv_1",
        include=["reasoning.encrypted_content"],
        service_tier="priority",
        truncation="auto",
        prompt={"id": "pmpt_1", "version": "2"},
    ),
    "unknown_top_level_fields": with_fields(
        client_metadata={"x-codex-installation-id": "1"}, prompt_cache_retention="24h", x_future_field=[1, 2]
    ),
    "integers_where_numbers_go": with_fields(temperature=1, top_p=1),
}

MISSING, TYPE, VALUE = "missing_required_parameter", "invalid_type", "invalid_value"

BAD: list[tuple[dict[str, Any], str, str, str]] = [
    ({"input": "Hi"}, "model", MISSING, "a value is required"),
    (with_fields(model=""), "model", VALUE, "must not be empty"),
    (with_fields(input=42), "input", TYPE, "expected a string, an array or null, got 42"),
    (with_items(42), "input[0]", TYPE, "expected an object, got 42"),
    (
        with_items({"role": "robot", "content": "x"}),
        "input[0].role",
        VALUE,
        "'robot' is not one of 'user', 'assistant', 'system', 'developer'",
    ),
    (with_items({"role": "user"}), "input[0].content", MISSING, "a value is required"),
    (with_items({"type": "message", "content": "x"}), "input[0].role", MISSING, "a value is required"),
    (
        user_parts({"type": "input_video"}),
        "input[0].content[0].type",
        VALUE,
        "'input_video' is not one of 'input_text', 'output_text', 'input_image', 'input_file', "
        "'input_audio', 'refusal'",
    ),
    (user_parts({"type": "input_text"}), "input[0].content[0].text", MISSING, "a value is required"),
    (
        user_parts({"type": "input_text", "text": 42}),
        "input[0].content[0].text",
        TYPE,
        "expected a string, got 42",
    ),
    (
        user_parts({"type": "input_audio", "input_audio": {"data": "x", "format": "ogg"}}),
        "input[0].content[0].input_audio.format",
        VALUE,
        "'ogg' is not one of 'wav', 'mp3'",
    ),
    (
        user_parts({"type": "input_image", "image_url": 42}),
        "input[0].content[0].image_url",
        TYPE,
        "expected a string or null, got 42",
    ),
    (user_parts({"type": "refusal"}), "input[0].content[0].refusal", MISSING, "a value is required"),
    (user_parts("hi"), "input[0].content[0]", TYPE, "expected an object, got 'hi'"),
    (
        with_items({"type": "function_call", "name": "f", "arguments": "{}"}),
        "input[0].call_id",
        MISSING,
        "a value is required",
    ),
    (
        with_items({"type": "function_call", "call_id": "c", "name": "f", "arguments": {"a": 1}}),
        "input[0].arguments",
        TYPE,
        'expected a string holding JSON, such as \'{"city": "Paris"}\', got an object',
    ),
    (
        with_items({"type": "function_call_output", "call_id": "c"}),
        "input[0].output",
        MISSING,
        "a value is required",
    ),
    (
        with_items({"type": "function_call_output", "call_id": "", "output": "x"}),
        "input[0].call_id",
        VALUE,
        "must not be empty",
    ),
    (
        with_items({"type": "function_call_output", "call_id": "c", "output": [{"type": "input_text"}]}),
        "input[0].output[0].text",
        MISSING,
        "a value is required",
    ),
    (with_items({"type": "item_reference"}), "input[0].id", MISSING, "a value is required"),
    (
        with_items({"type": "reasoning", "summary": "x"}),
        "input[0].summary",
        TYPE,
        "expected an array, got 'x'",
    ),
    (with_fields(tools={}), "tools", TYPE, "expected an array or null, got an object"),
    (with_fields(tools=[{}]), "tools[0].type", MISSING, "a value is required"),
    (with_fields(tools=[{"type": "function"}]), "tools[0].name", MISSING, "a value is required"),
    (
        with_fields(tools=[{"type": "function", "name": "f", "parameters": "x"}]),
        "tools[0].parameters",
        TYPE,
        "expected an object or null, got 'x'",
    ),
    (
        with_fields(tools=[{"type": "function", "name": "f", "strict": "yes"}]),
        "tools[0].strict",
        TYPE,
        "expected a boolean or null, got 'yes'",
    ),
    (
        with_fields(tools=[{"type": "namespace", "name": "n"}]),
        "tools[0].tools",
        MISSING,
        "a value is required",
    ),
    (
        with_fields(tools=[{"type": "namespace", "name": "n", "tools": [{"type": "function"}]}]),
        "tools[0].tools[0].name",
        MISSING,
        "a value is required",
    ),
    (
        with_fields(tools=[FUNCTION], tool_choice="any"),
        "tool_choice",
        VALUE,
        "'any' is not one of 'none', 'auto', 'required'",
    ),
    (with_fields(tools=[FUNCTION], tool_choice={}), "tool_choice.type", MISSING, "a value is required"),
    (
        with_fields(tools=[FUNCTION], tool_choice={"type": "function"}),
        "tool_choice.name",
        MISSING,
        "a value is required",
    ),
    (
        with_fields(tools=[FUNCTION], tool_choice={"type": "allowed_tools", "mode": "x", "tools": []}),
        "tool_choice.mode",
        VALUE,
        "'x' is not one of 'auto', 'required'",
    ),
    (
        with_fields(tools=[FUNCTION], tool_choice={"type": "function", "name": "g"}),
        "tool_choice.name",
        VALUE,
        "'g' is not one of the functions in tools",
    ),
    (
        with_fields(text={"format": {"type": "xml"}}),
        "text.format.type",
        VALUE,
        "'xml' is not one of 'text', 'json_schema', 'json_object'",
    ),
    (
        with_fields(text={"format": {"type": "json_schema", "schema": {}}}),
        "text.format.name",
        MISSING,
        "a value is required",
    ),
    (
        with_fields(text={"format": {"type": "json_schema", "name": "my schema", "schema": {}}}),
        "text.format.name",
        VALUE,
        "'my schema' is not a valid name: use 1 to 64 letters, digits, underscores or dashes",
    ),
    (
        with_fields(text={"format": {"type": "json_schema", "name": "s", "schema": "{}"}}),
        "text.format.schema",
        TYPE,
        "expected an object, got '{}'",
    ),
    (
        with_fields(text={"verbosity": "loud"}),
        "text.verbosity",
        VALUE,
        "'loud' is not one of 'low', 'medium', 'high'",
    ),
    (
        with_fields(reasoning={"effort": "extreme"}),
        "reasoning.effort",
        VALUE,
        "'extreme' is not one of 'none', 'minimal', 'low', 'medium', 'high', 'xhigh', 'max'",
    ),
    (with_fields(max_output_tokens=15), "max_output_tokens", VALUE, "15 is less than the minimum of 16"),
    (
        with_fields(max_output_tokens=16.0),
        "max_output_tokens",
        TYPE,
        "expected an integer or null, got 16.0 (write an integer without a decimal point or exponent)",
    ),
    (
        with_fields(max_output_tokens=2**31),
        "max_output_tokens",
        VALUE,
        "2147483648 is greater than the maximum of 2147483647",
    ),
    (with_fields(temperature=3), "temperature", VALUE, "3 is greater than the maximum of 2"),
    (with_fields(top_p=-0.1), "top_p", VALUE, "-0.1 is less than the minimum of 0"),
    (with_fields(top_logprobs=21), "top_logprobs", VALUE, "21 is greater than the maximum of 20"),
    (
        with_fields(metadata={f"k{i}": "v" for i in range(17)}),
        "metadata",
        VALUE,
        "expected at most 16 entries, got 17",
    ),
    (with_fields(metadata={"k": 1}), "metadata.k", TYPE, "expected a string, got 1"),
    (
        with_fields(metadata={"k" * 65: "v"}),
        "metadata",
        VALUE,
        "key 'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk…' is longer than the maximum of 64 characters",
    ),
    (
        with_fields(safety_identifier="x" * 65),
        "safety_identifier",
        VALUE,
        "too long: 65 characters, the maximum is 64",
    ),
    (with_fields(stream="yes"), "stream", TYPE, "expected a boolean or null, got 'yes'"),
    (with_fields(truncation="middle"), "truncation", VALUE, "'middle' is not one of 'auto', 'disabled'"),
    (with_fields(prompt={}), "prompt.id", MISSING, "a value is required"),
    (
        with_fields(parallel_tool_calls="yes"),
        "parallel_tool_calls",
        TYPE,
        "expected a boolean or null, got 'yes'",
    ),
    (with_fields(include="x"), "include", TYPE, "expected an array or null, got 'x'"),
    (with_fields(instructions=42), "instructions", TYPE, "expected a string or null, got 42"),
    (with_fields(previous_response_id=1), "previous_response_id", TYPE, "expected a string or null, got 1"),
    (with_fields(store="no"), "store", TYPE, "expected a boolean or null, got 'no'"),
]


def bad_id(row: tuple[dict[str, Any], str, str, str]) -> str:
    return row[1] + ":" + row[3][:30]


@pytest.mark.parametrize("body", GOOD.values(), ids=GOOD.keys())
def test_good_bodies(engine: str, body: dict[str, Any]) -> None:
    validate_responses_request(body)


@pytest.mark.parametrize(("body", "param", "code", "message"), BAD, ids=[bad_id(row) for row in BAD])
def test_bad_bodies(engine: str, body: dict[str, Any], param: str, code: str, message: str) -> None:
    with pytest.raises(GatewayError) as caught:
        validate_responses_request(body)
    error = caught.value
    assert (error.status, error.type, error.param, error.code) == (400, "invalid_request_error", param, code)
    assert error.message == f"{param}: {message}"


def test_not_an_object(engine: str) -> None:
    with pytest.raises(GatewayError) as caught:
        validate_responses_request([BASE])
    assert (caught.value.param, caught.value.message) == (None, "the request body must be a JSON object")


OPTIONAL_FIELDS = sorted(set(load_responses_request_schema()["properties"]) - {"model"})


@pytest.mark.parametrize("field", OPTIONAL_FIELDS)
def test_every_optional_field_may_be_null(engine: str, field: str) -> None:
    validate_responses_request(with_fields(**{field: None}))


def test_the_codex_session_passes(engine: str) -> None:
    body = fixture("ingress_responses", "request", "codex_session")["responses"]
    assert {"client_metadata", "include", "prompt_cache_key"} <= body.keys()
    validate_responses_request(body)


def test_a_parsed_body_validates() -> None:
    """Through the same parser the endpoint uses: what arrives as JSON text is judged as above."""
    body = parse_json_body(json.dumps(GOOD["tool_round_trip"]).encode())
    validate_responses_request(body)


# -- the schema file, and the two validators agree ----------------------------------------------------------


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = load_responses_request_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "OpenAPI spec 2.3.0" in schema["description"]
    Draft202012Validator.check_schema(schema)


def test_the_schema_lists_only_fields_the_sdk_knows() -> None:
    hints = typing_extensions.get_type_hints(response_create_params.ResponseCreateParamsBase)
    assert set(load_responses_request_schema()["properties"]) <= set(hints) | {"stream"}


def all_bodies() -> Iterator[dict[str, Any]]:
    yield from GOOD.values()
    yield from (body for body, *_ in BAD)
    for kind in ("request", "rejected"):
        for param in golden("ingress_responses", kind):
            yield param.values[0]["responses"]
    yield with_fields(max_output_tokens=16.0, top_logprobs=1)
    yield with_fields(top_logprobs=2.0)
    yield with_fields(max_tool_calls=1e3)


def test_the_fast_check_agrees_with_the_reference_validator() -> None:
    fast = schemas._fast_validator("responses")
    assert fast is not None
    reference = schemas._reference_validator("responses")
    bodies = list(all_bodies())
    assert len(bodies) > 100
    assert [body for body in bodies if fast(body) != reference.is_valid(body)] == []


def test_jsonschema_rs_agrees_with_jsonschema_on_the_schema_itself() -> None:
    schema = load_responses_request_schema()
    fast = jsonschema_rs.Draft202012Validator(schema)
    reference = Draft202012Validator(schema)
    # 16.0 and the like: JSON Schema calls them integers, the gateway's own check after jsonschema-rs not.
    bodies = [
        body
        for body in all_bodies()
        if not any(type(value) is float and value.is_integer() for value in body.values())
    ]
    assert [body for body in bodies if fast.is_valid(body) != reference.is_valid(body)] == []


def test_integers_are_only_where_the_fast_check_looks() -> None:
    schema = load_responses_request_schema()
    scalars, maps = schemas._integer_fields(schema)
    nested = schemas._nested_integer_fields(schema)
    assert (scalars, maps, nested) == (("max_tool_calls", "max_output_tokens", "top_logprobs"), (), ())
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
    assert sorted(found) == [
        "/properties/max_output_tokens",
        "/properties/max_tool_calls",
        "/properties/top_logprobs",
    ]


def test_the_sdk_types_those_fields_as_int() -> None:
    hints = typing_extensions.get_type_hints(response_create_params.ResponseCreateParamsBase)
    for name in ("max_output_tokens", "max_tool_calls", "top_logprobs"):
        assert "int" in str(hints[name])


def test_the_validators_are_built_once() -> None:
    assert schemas._reference_validator("responses") is schemas._reference_validator("responses")
    assert schemas._fast_validator("responses") is schemas._fast_validator("responses")
    assert load_responses_request_schema() == load_responses_request_schema()  # fresh copies


# -- what the official SDK sends passes ----------------------------------------------------------------------


def sent_by_the_sdk(call: typing.Callable[[openai.OpenAI], object]) -> dict[str, Any]:
    """The JSON body the SDK sends for `call`."""
    http = getattr(_base_client, "httpx2", None) or getattr(_base_client, "httpx")  # noqa: B009
    bodies: list[dict[str, Any]] = []

    def handler(request: Any) -> Any:
        bodies.append(json.loads(request.content))
        error = {"error": {"message": "x", "type": "invalid_request_error", "param": None, "code": None}}
        return http.Response(400, json=error)

    client = openai.OpenAI(
        api_key="sk-test",
        base_url="http://gateway.test/v1",
        max_retries=0,
        http_client=http.Client(transport=http.MockTransport(handler)),
    )
    with pytest.raises(openai.BadRequestError):
        call(client)
    (body,) = bodies
    return body


FULL: dict[str, Any] = {
    "model": MODEL,
    "instructions": "Be brief.",
    "input": [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Weather?"},
                {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "auto"},
            ],
        },
        {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"type": "function_call_output", "call_id": "c1", "output": "18C"},
    ],
    "tools": [WEATHER, {"type": "web_search"}],
    "tool_choice": {"type": "function", "name": "get_weather"},
    "parallel_tool_calls": False,
    "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": True}},
    "reasoning": {"effort": "low", "summary": "auto"},
    "max_output_tokens": 1024,
    "temperature": 0.5,
    "top_p": 0.9,
    "metadata": {"k": "v"},
    "safety_identifier": "s",
    "prompt_cache_key": "k",
    "store": False,
    "include": ["reasoning.encrypted_content"],
    "previous_response_id": "resp_1",
    "truncation": "auto",
}


def test_what_the_sdk_sends_for_create_passes() -> None:
    body = sent_by_the_sdk(lambda client: client.responses.create(**FULL))
    assert body["tool_choice"] == FULL["tool_choice"]
    validate_responses_request(body)


def test_what_the_sdk_sends_for_stream_passes() -> None:
    def stream(client: openai.OpenAI) -> None:
        with client.responses.stream(model=MODEL, input="Hi", tools=[WEATHER]) as events:
            list(events)

    body = sent_by_the_sdk(stream)
    assert body["stream"] is True
    validate_responses_request(body)


class Weather(pydantic.BaseModel):
    city: str
    celsius: float


def test_what_the_sdk_sends_for_parse_passes() -> None:
    body = sent_by_the_sdk(
        lambda client: client.responses.parse(model=MODEL, input="Weather?", text_format=Weather)
    )
    assert body["text"]["format"]["type"] == "json_schema"
    validate_responses_request(body)


def test_tool_choice_may_name_a_function_of_an_additional_tools_item(engine: str) -> None:
    """Regression: the named-tool check read only `tools`, so forcing a function that Codex offers in an
    `additional_tools` input item was a 400 although the translation serves it."""
    offered = {"type": "additional_tools", "tools": [{**FUNCTION, "name": "g"}]}
    body = {
        "model": "m",
        "input": [offered, {"role": "user", "content": "hi"}],
        "tool_choice": {"type": "function", "name": "g"},
    }
    validate_responses_request(body)
    with pytest.raises(GatewayError) as caught:
        validate_responses_request({**body, "tool_choice": {"type": "function", "name": "h"}})
    assert caught.value.param == "tool_choice.name"
    # With history, the conversation's tools decide (checked by the translation, which has them).
    validate_responses_request({**body, "input": "hi", "previous_response_id": "resp_1"})
