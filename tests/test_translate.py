"""Unit tests for `asgi_llm_gateway/translate.py`: the request helpers every translating provider shares."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from asgi_llm_gateway import translate
from asgi_llm_gateway.errors import GatewayError
from asgi_llm_gateway.translate import (
    DataURL,
    answer_text,
    json_schema_of,
    max_tokens_of,
    parse_arguments,
    parse_data_url,
    stop_of,
    text_of,
    unsupported,
)


def test_every_exported_helper_is_tested_here() -> None:
    assert sorted(translate.__all__) == [
        "DataURL",
        "answer_text",
        "json_schema_of",
        "max_tokens_of",
        "parse_arguments",
        "parse_data_url",
        "stop_of",
        "text_of",
        "unsupported",
    ]


# -- unsupported ------------------------------------------------------------------------------------------


def test_unsupported_is_a_400_naming_the_field_and_the_provider() -> None:
    error = unsupported("groq", "logprobs")
    assert isinstance(error, GatewayError)
    assert (error.status, error.type, error.param, error.code) == (
        400,
        "invalid_request_error",
        "logprobs",
        "unsupported_parameter",
    )
    assert error.message == "'logprobs' is not supported by the groq provider"
    assert error.to_dict()["error"]["param"] == "logprobs"


def test_unsupported_adds_the_detail_after_a_colon() -> None:
    error = unsupported("groq", "n", "at most 1 choice(s)")
    assert error.message == "'n' is not supported by the groq provider: at most 1 choice(s)"
    assert error.param == "n"


# -- text_of ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "text"),
    [
        (None, ""),
        ("", ""),
        ("plain", "plain"),
        ([], ""),
        ([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], "ab"),
        ([{"type": "text", "text": "a"}, {"type": "refusal", "refusal": "no"}], "ano"),
        ([{"type": "text"}, {"type": "refusal"}], ""),
    ],
    ids=["null", "empty", "string", "no-parts", "text-parts", "refusal-part", "parts-without-text"],
)
def test_text_of_joins_text_and_refusal_parts(content: Any, text: str) -> None:
    assert text_of(content) == text


def test_text_of_refuses_other_parts_naming_the_part_type() -> None:
    content = [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]
    with pytest.raises(GatewayError) as caught:
        text_of(content, "messages[0].content")
    assert caught.value.status == 400
    assert caught.value.param == "messages[0].content[1].type"
    assert caught.value.code == "invalid_value"
    assert "'image_url'" in caught.value.message


def test_text_of_names_content_when_no_param_is_given() -> None:
    with pytest.raises(GatewayError) as caught:
        text_of([{"type": "input_audio"}])
    assert caught.value.param == "content[0].type"


# -- parse_data_url --------------------------------------------------------------------------------------

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(40))).decode()


def test_a_url_that_is_not_a_data_url_is_none() -> None:
    assert parse_data_url("https://example.com/cat.png") is None
    assert parse_data_url("") is None


def test_a_data_url_gives_its_media_type_and_the_base64_text_as_received() -> None:
    parsed = parse_data_url(f"data:image/png;base64,{PNG}")
    assert isinstance(parsed, DataURL)
    assert parsed.media_type == "image/png"
    assert parsed.data == PNG
    assert base64.b64decode(parsed.data).startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("url", "media_type"),
    [
        ("data:IMAGE/JPEG;base64,aGk=", "image/jpeg"),
        ("data:text/plain;charset=utf-8;base64,aGk=", "text/plain"),
        ("data:;base64,aGk=", "application/octet-stream"),
    ],
    ids=["lower-cased", "parameters-dropped", "no-type"],
)
def test_the_media_type_is_normalised(url: str, media_type: str) -> None:
    parsed = parse_data_url(url)
    assert parsed is not None and parsed.media_type == media_type


def test_unpadded_base64_is_accepted_and_kept_unpadded() -> None:
    parsed = parse_data_url("data:text/plain;base64,aGk")
    assert parsed is not None and parsed.data == "aGk"


@pytest.mark.parametrize(
    "url",
    ["data:image/png,rawbytes", "data:image/png;base64", "data:image/png;charset=utf-8,aGk="],
    ids=["not-base64", "no-comma", "parameters-without-base64"],
)
def test_a_data_url_that_is_not_base64_is_a_400_on_the_param(url: str) -> None:
    with pytest.raises(GatewayError) as caught:
        parse_data_url(url, "messages[0].content[1].image_url.url")
    assert caught.value.status == 400
    assert caught.value.param == "messages[0].content[1].image_url.url"
    assert "base64" in caught.value.message


@pytest.mark.parametrize("data", ["not base64!", "a", "aGk=aGk=" + "%%"], ids=["symbols", "one-char", "junk"])
def test_a_data_url_with_invalid_base64_is_a_400_on_the_param(data: str) -> None:
    with pytest.raises(GatewayError) as caught:
        parse_data_url(f"data:image/png;base64,{data}", "file.file_data")
    assert caught.value.status == 400
    assert caught.value.param == "file.file_data"
    assert caught.value.message == "the data URL does not hold valid base64"


def test_parse_data_url_names_image_url_url_by_default() -> None:
    with pytest.raises(GatewayError) as caught:
        parse_data_url("data:image/png,x")
    assert caught.value.param == "image_url.url"


# -- parse_arguments -------------------------------------------------------------------------------------


def test_arguments_already_an_object_are_returned_as_they_are() -> None:
    arguments = {"q": "cats"}
    assert parse_arguments(arguments, "p") is arguments


@pytest.mark.parametrize(
    ("arguments", "parsed"),
    [(None, {}), ("", {}), ("{}", {}), ('{"q": "cats", "n": [1, 2]}', {"q": "cats", "n": [1, 2]})],
    ids=["null", "empty", "empty-object", "object"],
)
def test_arguments_json_text_becomes_an_object(arguments: Any, parsed: dict[str, Any]) -> None:
    assert parse_arguments(arguments, "p") == parsed


def test_arguments_that_are_not_json_are_a_400_on_the_param() -> None:
    with pytest.raises(GatewayError) as caught:
        parse_arguments('{"q": ', "messages[2].tool_calls[0].function.arguments")
    assert caught.value.status == 400
    assert caught.value.param == "messages[2].tool_calls[0].function.arguments"
    assert caught.value.message == "tool call arguments must be a JSON object string"


@pytest.mark.parametrize("arguments", ["[1, 2]", '"text"', "42", "null"])
def test_arguments_that_are_json_but_not_an_object_are_a_400_on_the_param(arguments: str) -> None:
    with pytest.raises(GatewayError) as caught:
        parse_arguments(arguments, "messages[1].tool_calls[0].function.arguments")
    assert caught.value.status == 400
    assert caught.value.param == "messages[1].tool_calls[0].function.arguments"
    assert caught.value.message == "tool call arguments must be a JSON object"


# -- max_tokens_of, stop_of, json_schema_of --------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_fields", "cap"),
    [
        ({}, None),
        ({"max_tokens": 100}, 100),
        ({"max_completion_tokens": 50}, 50),
        ({"max_completion_tokens": 50, "max_tokens": 100}, 50),
        ({"max_completion_tokens": None, "max_tokens": 100}, 100),
        ({"max_completion_tokens": 0, "max_tokens": 100}, 0),
    ],
    ids=["none", "deprecated", "current", "current-wins", "null-current", "zero-is-a-value"],
)
def test_max_tokens_of_prefers_max_completion_tokens(request_fields: dict[str, Any], cap: int | None) -> None:
    assert max_tokens_of(request_fields) == cap


def test_stop_of_is_always_a_list() -> None:
    assert stop_of({}) is None
    assert stop_of({"stop": None}) is None
    assert stop_of({"stop": "END"}) == ["END"]
    stops = ("a", "b")
    assert stop_of({"stop": stops}) == ["a", "b"]
    listed = ["x"]
    result = stop_of({"stop": listed})
    assert result == ["x"] and result is not listed, "a copy: callers may change it"


@pytest.mark.parametrize(
    ("response_format", "expected"),
    [
        (None, None),
        ({}, None),
        ({"type": "text"}, None),
        ({"type": "json_object"}, ("json_object", None)),
        (
            {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "array"}}},
            ("json_schema", {"type": "array"}),
        ),
        ({"type": "json_schema", "json_schema": {"name": "x"}}, ("json_schema", {"type": "object"})),
        ({"type": "json_schema"}, ("json_schema", {"type": "object"})),
    ],
    ids=["absent", "empty", "text", "json-object", "schema", "no-schema", "no-json-schema"],
)
def test_json_schema_of(response_format: Any, expected: Any) -> None:
    request = {} if response_format is None else {"response_format": response_format}
    assert json_schema_of(request) == expected


@pytest.mark.parametrize(
    ("content", "text"),
    [
        ("plain", "plain"),
        ([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], "ab"),
        ([{"type": "text"}, "not a part", {"type": "image_url"}], ""),
        (None, ""),
        (42, ""),
    ],
)
def test_answer_text_reads_strings_and_parts_leniently(content: Any, text: str) -> None:
    assert answer_text(content) == text
