"""The Messages request contract (schemas/messages_request.schema.json) and `validate_messages_request`.

Each table row is a body and the exact 400 it gets (param, code, message), checked with the pure-Python
validator alone and with jsonschema-rs answering valid bodies; the two validators must agree on every body.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Iterator
from typing import Any

import anthropic
import jsonschema_rs
import pytest
import typing_extensions
from anthropic.types import message_create_params, thinking_config_enabled_param
from jsonschema import Draft202012Validator  # type: ignore[import-untyped, unused-ignore]

from asgi_llm_gateway import schemas
from asgi_llm_gateway.errors import GatewayError
from asgi_llm_gateway.schemas import load_messages_request_schema, parse_json_body, validate_messages_request
from tests.ingress.sdk import sdk_client, sdk_http
from tests.support.golden import golden

MODEL = "claude-sonnet-4-6"
BASE: dict[str, Any] = {"model": MODEL, "max_tokens": 1024, "messages": [{"role": "user", "content": "Hi"}]}
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
PNG = "iVBORw0KGgo="


@pytest.fixture(params=["jsonschema", "jsonschema-rs"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the pure-Python validator alone, and with jsonschema-rs answering valid bodies."""
    if request.param == "jsonschema":
        monkeypatch.setattr(schemas, "_fast_validator", lambda contract: None)
    else:
        assert schemas._fast_validator("messages") is not None
    return str(request.param)


def with_fields(**fields: Any) -> dict[str, Any]:
    return {**BASE, **fields}


def with_content(*blocks: Any, role: str = "user") -> dict[str, Any]:
    return with_fields(messages=[{"role": role, "content": list(blocks)}])


def tool_turns(*results: Any) -> dict[str, Any]:
    return with_fields(
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "get_weather", "input": {}}],
            },
            {"role": "user", "content": list(results)},
        ],
    )


GOOD = {
    "minimal": BASE,
    "unknown_top_level_fields": with_fields(
        context_management={"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        container=None,
        mcp_servers=[{"type": "url", "url": "https://mcp.example.com", "name": "x"}],
        service_tier="auto",
        cache_control={"type": "ephemeral"},
        x_future_field=[1, 2],
    ),
    "max_tokens_zero": with_fields(max_tokens=0),
    "system_string": with_fields(system="Be brief."),
    "system_blocks": with_fields(
        system=[{"type": "text", "text": "A", "cache_control": {"type": "ephemeral"}}]
    ),
    "system_message_in_messages": with_fields(
        messages=[
            {"role": "user", "content": "Hi"},
            {"role": "system", "content": [{"type": "text", "text": "S"}]},
        ]
    ),
    "empty_content_list": with_fields(messages=[{"role": "user", "content": []}]),
    "unknown_block_type": with_content({"type": "a_block_from_the_future", "anything": {"goes": 1}}),
    "server_tool_blocks": with_content(
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "x"}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
        role="assistant",
    ),
    "thinking_blocks": with_content(
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "text", "text": "Answer", "citations": None},
        role="assistant",
    ),
    "images": with_content(
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
        {"type": "image", "source": {"type": "file", "file_id": "file_1"}},
    ),
    "documents": with_content(
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}},
        {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "x"},
            "title": None,
        },
        {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "x"}]}},
        {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}},
        {"type": "document", "source": {"type": "file", "file_id": "file_1"}, "citations": {"enabled": True}},
    ),
    "search_result": with_content(
        {
            "type": "search_result",
            "source": "https://x",
            "title": "X",
            "content": [{"type": "text", "text": "x"}],
        }
    ),
    "tool_results": tool_turns(
        {"type": "tool_result", "tool_use_id": "t1"},
        {"type": "tool_result", "tool_use_id": "t1", "content": "ok", "is_error": False},
        {
            "type": "tool_result",
            "tool_use_id": "t1",
            "content": [
                {"type": "text", "text": "ok"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                {"type": "tool_reference", "tool_name": "get_weather"},
            ],
        },
    ),
    "custom_tools": with_fields(
        tools=[
            WEATHER,
            {"type": "custom", "name": "a", "input_schema": {"type": "object"}, "strict": True},
            {"type": None, "name": "b-" + "x" * 126, "input_schema": {}, "defer_loading": True},
        ]
    ),
    "server_tools": with_fields(
        tools=[
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
            {"type": "bash_20250124", "name": "bash"},
            {"type": "mcp_toolset", "mcp_server_name": "x"} | {"name": "x"},
        ]
    ),
    "tool_choice_each": with_fields(
        tools=[WEATHER], tool_choice={"type": "any", "disable_parallel_tool_use": True}
    ),
    "tool_choice_named": with_fields(tools=[WEATHER], tool_choice={"type": "tool", "name": "get_weather"}),
    "thinking_each": with_fields(thinking={"type": "enabled", "budget_tokens": 1024, "display": "omitted"}),
    "thinking_unknown_type": with_fields(thinking={"type": "a_future_type"}),
    "output_config": with_fields(
        output_config={"effort": "max", "format": {"type": "json_schema", "schema": {"type": "object"}}}
    ),
    "output_config_nulls": with_fields(output_config={"effort": None, "format": None}),
    "output_format_beta": with_fields(output_format={"type": "json_schema", "schema": {"type": "object"}}),
    "sampling": with_fields(temperature=1, top_p=0.5, top_k=0, stop_sequences=[], stream=False),
    "metadata": with_fields(metadata={"user_id": None}),
}

# (fields or a whole body, param, code, message)
BAD: list[tuple[dict[str, Any], str, str, str]] = [
    (
        {"model": MODEL, "messages": BASE["messages"]},
        "max_tokens",
        "missing_required_parameter",
        "a value is required",
    ),
    (with_fields(model=""), "model", "invalid_value", "must not be empty"),
    (with_fields(max_tokens=-1), "max_tokens", "invalid_value", "-1 is less than the minimum of 0"),
    (
        with_fields(max_tokens=1024.0),
        "max_tokens",
        "invalid_type",
        "expected an integer, got 1024.0 (write an integer without a decimal point or exponent)",
    ),
    (with_fields(messages=[]), "messages", "invalid_value", "expected at least 1 item, got 0"),
    (
        with_fields(messages=[{"role": "tool", "content": "x"}]),
        "messages[0].role",
        "invalid_value",
        "'tool' is not one of 'user', 'assistant', 'system'",
    ),
    (
        with_fields(messages=[{"role": "user"}]),
        "messages[0].content",
        "missing_required_parameter",
        "a value is required",
    ),
    (
        with_fields(messages=[{"role": "user", "content": None}]),
        "messages[0].content",
        "invalid_type",
        "expected a string or an array, got null",
    ),
    (
        with_fields(messages=[{"role": "system", "content": [{"type": "image", "source": {}}]}]),
        "messages[0].content[0].type",
        "invalid_value",
        "expected 'text', got 'image'",
    ),
    (
        with_content({"text": "no type"}),
        "messages[0].content[0].type",
        "missing_required_parameter",
        "a value is required",
    ),
    (with_content({"type": 3}), "messages[0].content[0].type", "invalid_type", "expected a string, got 3"),
    (
        with_content({"type": "text"}),
        "messages[0].content[0].text",
        "missing_required_parameter",
        "a value is required",
    ),
    (
        with_content({"type": "image", "source": {"type": "svg"}}),
        "messages[0].content[0].source.type",
        "invalid_value",
        "'svg' is not one of 'base64', 'url', 'file'",
    ),
    (
        with_content({"type": "image", "source": {"type": "base64", "media_type": "image/png"}}),
        "messages[0].content[0].source.data",
        "missing_required_parameter",
        "a value is required",
    ),
    (
        with_content({"type": "image", "source": {"type": "url"}}),
        "messages[0].content[0].source.url",
        "missing_required_parameter",
        "a value is required",
    ),
    (
        with_content({"type": "document", "source": {"type": "file"}}),
        "messages[0].content[0].source.file_id",
        "missing_required_parameter",
        "a value is required",
    ),
    (
        with_content({"type": "document", "source": {"type": "content", "content": [{"type": "text"}]}}),
        "messages[0].content[0].source.content[0].text",
        "missing_required_parameter",
        "a value is required",
    ),
    (
        with_content({"type": "tool_use", "id": "t", "name": "f", "input": "{}"}, role="assistant"),
        "messages[0].content[0].input",
        "invalid_type",
        "expected the call's arguments as an object, got '{}'",
    ),
    (
        with_content({"type": "tool_use", "name": "f", "input": {}}, role="assistant"),
        "messages[0].content[0].id",
        "missing_required_parameter",
        "a value is required",
    ),
    (
        tool_turns({"type": "tool_result", "content": "x"}),
        "messages[2].content[0].tool_use_id",
        "missing_required_parameter",
        "a value is required",
    ),
    (
        tool_turns({"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": 1}]}),
        "messages[2].content[0].content[0].text",
        "invalid_type",
        "expected a string, got 1",
    ),
    (
        tool_turns({"type": "tool_result", "tool_use_id": "t1", "is_error": "yes"}),
        "messages[2].content[0].is_error",
        "invalid_type",
        "expected a boolean, got 'yes'",
    ),
    (
        with_content({"type": "thinking", "thinking": "x"}, role="assistant"),
        "messages[0].content[0].signature",
        "missing_required_parameter",
        "a value is required",
    ),
    (with_fields(system=None), "system", "invalid_type", "expected a string or an array, got null"),
    (
        with_fields(system=[{"type": "text"}]),
        "system[0].text",
        "missing_required_parameter",
        "a value is required",
    ),
    (
        with_fields(tools=[{"input_schema": {}}]),
        "tools[0].name",
        "missing_required_parameter",
        "a value is required",
    ),
    (
        with_fields(tools=[{"name": "f"}]),
        "tools[0].input_schema",
        "missing_required_parameter",
        "a value is required",
    ),
    (
        with_fields(tools=[{"name": "my.tool", "input_schema": {}}]),
        "tools[0].name",
        "invalid_value",
        "'my.tool' is not a valid tool name: use 1 to 128 letters, digits, underscores or dashes",
    ),
    (
        with_fields(tools=[{"name": "x" * 129, "input_schema": {}}]),
        "tools[0].name",
        "invalid_value",
        f"'{'x' * 40}…' is not a valid tool name: use 1 to 128 letters, digits, underscores or dashes",
    ),
    (
        with_fields(tools=[{"name": "f\n", "input_schema": {}}]),
        "tools[0].name",
        "invalid_value",
        "'f\\n' is not a valid tool name: use 1 to 128 letters, digits, underscores or dashes",
    ),
    (
        with_fields(tools=[{"name": "f", "input_schema": []}]),
        "tools[0].input_schema",
        "invalid_type",
        "expected an object, got an array",
    ),
    (
        with_fields(tools=[WEATHER], tool_choice={"type": "required"}),
        "tool_choice.type",
        "invalid_value",
        "'required' is not one of 'auto', 'any', 'tool', 'none'",
    ),
    (
        with_fields(tools=[WEATHER], tool_choice="auto"),
        "tool_choice",
        "invalid_type",
        "expected an object, got 'auto'",
    ),
    (
        with_fields(tools=[WEATHER], tool_choice={"type": "tool"}),
        "tool_choice.name",
        "missing_required_parameter",
        "a value is required",
    ),
    (
        with_fields(tools=[WEATHER], tool_choice={"type": "tool", "name": "get_time"}),
        "tool_choice.name",
        "invalid_value",
        "'get_time' is not one of the tools in tools",
    ),
    (
        with_fields(thinking={"type": "enabled"}),
        "thinking.budget_tokens",
        "missing_required_parameter",
        "a value is required",
    ),
    (
        with_fields(thinking={"type": "enabled", "budget_tokens": 1000}),
        "thinking.budget_tokens",
        "invalid_value",
        "1000 is less than the minimum of 1024",
    ),
    (
        with_fields(thinking={"type": "enabled", "budget_tokens": 2048.0}),
        "thinking.budget_tokens",
        "invalid_type",
        "expected an integer, got 2048.0 (write an integer without a decimal point or exponent)",
    ),
    (
        with_fields(thinking={"budget_tokens": 2048}),
        "thinking.type",
        "missing_required_parameter",
        "a value is required",
    ),
    (
        with_fields(output_config={"effort": "extreme"}),
        "output_config.effort",
        "invalid_value",
        "'extreme' is not one of 'low', 'medium', 'high', 'xhigh', 'max'",
    ),
    (
        with_fields(output_config={"format": {"type": "json_object"}}),
        "output_config.format.type",
        "invalid_value",
        "expected 'json_schema', got 'json_object'",
    ),
    (
        with_fields(output_format={"type": "json_schema"}),
        "output_format.schema",
        "missing_required_parameter",
        "a value is required",
    ),
    (with_fields(temperature=1.5), "temperature", "invalid_value", "1.5 is greater than the maximum of 1"),
    (with_fields(top_k=-1), "top_k", "invalid_value", "-1 is less than the minimum of 0"),
    (
        with_fields(top_k=40.0),
        "top_k",
        "invalid_type",
        "expected an integer, got 40.0 (write an integer without a decimal point or exponent)",
    ),
    (with_fields(stop_sequences="END"), "stop_sequences", "invalid_type", "expected an array, got 'END'"),
    (with_fields(stream=None), "stream", "invalid_type", "expected a boolean, got null"),
    (
        with_fields(metadata={"user_id": 42}),
        "metadata.user_id",
        "invalid_type",
        "expected a string or null, got 42",
    ),
]


def bad_id(row: tuple[dict[str, Any], str, str, str]) -> str:
    return row[1] + ":" + row[3][:30]


@pytest.mark.parametrize("body", GOOD.values(), ids=GOOD.keys())
def test_good_bodies(engine: str, body: dict[str, Any]) -> None:
    validate_messages_request(body)


@pytest.mark.parametrize(("body", "param", "code", "message"), BAD, ids=[bad_id(row) for row in BAD])
def test_bad_bodies(engine: str, body: dict[str, Any], param: str, code: str, message: str) -> None:
    with pytest.raises(GatewayError) as caught:
        validate_messages_request(body)
    error = caught.value
    assert (error.status, error.type, error.param, error.code) == (400, "invalid_request_error", param, code)
    assert error.message == f"{param}: {message}"


def test_not_an_object(engine: str) -> None:
    with pytest.raises(GatewayError) as caught:
        validate_messages_request([BASE])
    assert (caught.value.param, caught.value.message) == (None, "the request body must be a JSON object")


# -- count_tokens --------------------------------------------------------------------------------------------


def test_count_tokens_needs_no_max_tokens(engine: str) -> None:
    body = {"model": MODEL, "messages": BASE["messages"], "tools": [WEATHER], "system": "S"}
    validate_messages_request(body, count_tokens=True)
    with pytest.raises(GatewayError) as caught:
        validate_messages_request(body)
    assert caught.value.param == "max_tokens"


def test_count_tokens_ignores_max_tokens_and_stream(engine: str) -> None:
    """Not part of a count_tokens request: unknown fields there, accepted whatever they hold."""
    validate_messages_request(with_fields(max_tokens="many", stream="yes"), count_tokens=True)


@pytest.mark.parametrize(("body", "param", "code", "message"), BAD, ids=[bad_id(row) for row in BAD])
def test_count_tokens_checks_the_rest(
    engine: str, body: dict[str, Any], param: str, code: str, message: str
) -> None:
    if param in ("max_tokens", "stream"):
        validate_messages_request(body, count_tokens=True)  # not count_tokens fields: unknown, accepted
        return
    with pytest.raises(GatewayError) as caught:
        validate_messages_request(body, count_tokens=True)
    assert (caught.value.param, caught.value.message) == (param, f"{param}: {message}")


# -- the two validators agree, and integers are where the fast check looks ---------------------------------


def all_bodies() -> Iterator[dict[str, Any]]:
    yield from GOOD.values()
    yield from (body for body, *_ in BAD)
    for kind in ("request", "rejected"):
        for param in golden("ingress_anthropic", kind):
            yield param.values[0]["anthropic"]
    yield with_fields(max_tokens=10.0, top_k=1)
    yield with_fields(top_k=2.0)
    yield with_fields(thinking={"type": "adaptive", "budget_tokens": 4096.0})
    yield with_fields(temperature=1, top_p=1)  # integers where numbers go


@pytest.mark.parametrize("count_tokens", [False, True])
def test_the_fast_check_agrees_with_the_reference_validator(count_tokens: bool) -> None:
    contract = "count_tokens" if count_tokens else "messages"
    fast = schemas._fast_validator(contract)
    assert fast is not None
    reference = schemas._reference_validator(contract)
    bodies = list(all_bodies())
    assert len(bodies) > 100
    assert [body for body in bodies if fast(body) != reference.is_valid(body)] == []


def test_jsonschema_rs_agrees_with_jsonschema_on_the_schema_itself() -> None:
    schema = load_messages_request_schema()
    Draft202012Validator.check_schema(schema)
    fast = jsonschema_rs.Draft202012Validator(schema)
    reference = Draft202012Validator(schema)
    bodies = [
        body for body in all_bodies() if body is not BAD[3][0]
    ]  # 1024.0: JSON Schema calls it an integer
    assert [body for body in bodies if fast.is_valid(body) != reference.is_valid(body)] == []


def test_integers_are_only_where_the_fast_check_looks() -> None:
    schema = load_messages_request_schema()
    scalars, maps = schemas._integer_fields(schema)
    nested = schemas._nested_integer_fields(schema)
    assert (scalars, maps, nested) == (("max_tokens", "top_k"), (), (("thinking", "budget_tokens"),))
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
        "/$defs/thinking/properties/budget_tokens",
        "/properties/max_tokens",
        "/properties/top_k",
    ]


def test_the_sdk_types_those_fields_as_int() -> None:
    hints = typing_extensions.get_type_hints(message_create_params.MessageCreateParamsBase)
    assert "int" in str(hints["max_tokens"])
    enabled = typing_extensions.get_type_hints(thinking_config_enabled_param.ThinkingConfigEnabledParam)
    assert "int" in str(enabled["budget_tokens"])


def test_the_validators_are_built_once() -> None:
    for contract in ("messages", "count_tokens"):
        assert schemas._reference_validator(contract) is schemas._reference_validator(contract)
        assert schemas._fast_validator(contract) is schemas._fast_validator(contract)


def test_the_count_tokens_schema_is_derived() -> None:
    messages = load_messages_request_schema()
    count = load_messages_request_schema(count_tokens=True)
    assert count["required"] == ["model", "messages"]
    assert count["properties"].keys() == messages["properties"].keys() - {"max_tokens", "stream"}
    assert count["$defs"] == messages["$defs"]
    assert load_messages_request_schema() == messages  # fresh copies: changing one changes nothing


def test_a_parsed_body_validates() -> None:
    """Through the same parser the endpoint uses: what arrives as JSON text is judged as above."""
    body = parse_json_body(json.dumps(GOOD["documents"]).encode())
    validate_messages_request(body)


# -- what the official SDK sends passes ----------------------------------------------------------------------


def sent_by_the_sdk(call: typing.Callable[[anthropic.Anthropic], object]) -> dict[str, Any]:
    """The JSON body the SDK sends for `call`."""
    http = sdk_http()
    bodies: list[dict[str, Any]] = []

    def handler(request: Any) -> Any:
        bodies.append(json.loads(request.content))
        return http.Response(400, json={"type": "error", "error": {"type": "x", "message": "x"}})

    with pytest.raises(anthropic.BadRequestError):
        call(sdk_client(handler))
    (body,) = bodies
    return body


FULL: dict[str, Any] = {
    "model": MODEL,
    "max_tokens": 4096,
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "t", "signature": "s"},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            ],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18"}]},
    ],
    "tools": [WEATHER],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "thinking": {"type": "enabled", "budget_tokens": 2048},
    "output_config": {"effort": "high"},
    "metadata": {"user_id": "u"},
    "stop_sequences": ["END"],
    "service_tier": "auto",
}


def test_what_the_sdk_sends_for_create_passes() -> None:
    body = sent_by_the_sdk(lambda client: client.messages.create(**FULL))
    assert body["thinking"] == FULL["thinking"]
    validate_messages_request(body)


def test_what_the_sdk_sends_for_count_tokens_passes() -> None:
    fields = {
        k: v for k, v in FULL.items() if k not in ("max_tokens", "metadata", "stop_sequences", "service_tier")
    }
    body = sent_by_the_sdk(lambda client: client.messages.count_tokens(**fields))
    assert "max_tokens" not in body
    validate_messages_request(body, count_tokens=True)


def test_what_the_beta_sdk_sends_passes() -> None:
    extra: dict[str, Any] = {
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "mcp_servers": [{"type": "url", "url": "https://mcp.example.com/sse", "name": "example"}],
        "betas": ["context-management-2025-06-27", "mcp-client-2025-04-04"],
    }
    body = sent_by_the_sdk(lambda client: client.beta.messages.create(**FULL, **extra))
    assert "context_management" in body
    validate_messages_request(body)
