"""The Responses ingress (asgi_llm_gateway/ingress/responses/) against golden fixtures, OpenAI's spec and SDK.

Fixtures in tests/fixtures/ingress_responses/: `request/` a Responses body (and the conversation's earlier
items) → canonical chat request and the built-in tools dropped, `rejected/` bodies the translation answers
with a 400, `response/` chat.completion → response, `stream/` chunk batches → events. Every response and
event is also checked against OpenAI's published schemas (`spec/responses.openapi.json`, trimmed from
OpenAI's OpenAPI document 2.3.0) and Open Responses' (`spec/openresponses.openapi.json`, 2026-04-24), and
read by the official `openai` SDK: `responses.create` parses each response, `responses.stream` accumulates
each stream into the encoder's own final response.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable
from typing import Any

import jsonschema
import openai
import pytest
from openai import _base_client
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from asgi_llm_gateway.errors import GatewayError, upstream_error
from asgi_llm_gateway.ingress.responses import (
    ResponsesStreamEncoder,
    ToolName,
    failure_error,
    flat_name,
    input_items,
    output_items,
    skeleton,
    to_chat,
    to_response,
    tool_names,
)
from asgi_llm_gateway.schemas import validate_chat_request, validate_responses_request
from tests.support.golden import FIXTURES, fixture, golden

MODEL = "claude-sonnet-4-6"
RESPONSE_ID = "resp_68f1c0ffee0123456789abcdef"
CREATED = 1767225600
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": None,
}

# -- OpenAI's schemas ---------------------------------------------------------------------------------------

EVENT_COMPONENTS = {
    "response.created": "ResponseCreatedEvent",
    "response.in_progress": "ResponseInProgressEvent",
    "response.completed": "ResponseCompletedEvent",
    "response.incomplete": "ResponseIncompleteEvent",
    "response.failed": "ResponseFailedEvent",
    "response.output_item.added": "ResponseOutputItemAddedEvent",
    "response.output_item.done": "ResponseOutputItemDoneEvent",
    "response.content_part.added": "ResponseContentPartAddedEvent",
    "response.content_part.done": "ResponseContentPartDoneEvent",
    "response.output_text.delta": "ResponseTextDeltaEvent",
    "response.output_text.done": "ResponseTextDoneEvent",
    "response.refusal.delta": "ResponseRefusalDeltaEvent",
    "response.refusal.done": "ResponseRefusalDoneEvent",
    "response.reasoning_summary_part.added": "ResponseReasoningSummaryPartAddedEvent",
    "response.reasoning_summary_part.done": "ResponseReasoningSummaryPartDoneEvent",
    "response.reasoning_summary_text.delta": "ResponseReasoningSummaryTextDeltaEvent",
    "response.reasoning_summary_text.done": "ResponseReasoningSummaryTextDoneEvent",
    "response.function_call_arguments.delta": "ResponseFunctionCallArgumentsDeltaEvent",
    "response.function_call_arguments.done": "ResponseFunctionCallArgumentsDoneEvent",
    "response.custom_tool_call_input.delta": "ResponseCustomToolCallInputDeltaEvent",
    "response.custom_tool_call_input.done": "ResponseCustomToolCallInputDoneEvent",
}


@functools.cache
def spec_validator(component: str, document: str = "responses") -> jsonschema.protocols.Validator:
    """The schema of `component` in one of the vendored documents (`responses`: OpenAI's, `openresponses`:
    Open Responses')."""
    path = FIXTURES / "ingress_responses" / "spec" / f"{document}.openapi.json"
    resource = Resource.from_contents(json.loads(path.read_text()), default_specification=DRAFT202012)
    registry: Registry = Registry().with_resource("urn:spec", resource)
    schema = {"$ref": f"urn:spec#/components/schemas/{component}"}
    return jsonschema.Draft202012Validator(schema, registry=registry)


#: Error codes OpenAI sends in `response.failed` and Codex acts on, which the published enum lacks.
UNLISTED_ERROR_CODES = ("context_length_exceeded", "insufficient_quota")


def assert_spec_valid(component: str, instance: Any) -> None:
    """Valid under OpenAI's document, but for where OpenAI itself departs from it: `usage: null` (what
    OpenAI sends while a response is in progress, and Open Responses requires when there is none) and
    the error codes Codex acts on."""
    instance = copy.deepcopy(instance)
    response = instance.get("response", instance if instance.get("object") == "response" else {})
    if "usage" in response and response["usage"] is None:
        del response["usage"]
    if (response.get("error") or {}).get("code") in UNLISTED_ERROR_CODES:
        response["error"]["code"] = "server_error"
    _assert_valid(spec_validator(component), component, instance)


@functools.cache
def open_responses_components() -> dict[str, str]:
    """Event type → its Open Responses component, read from the document itself."""
    path = FIXTURES / "ingress_responses" / "spec" / "openresponses.openapi.json"
    components = json.loads(path.read_text())["components"]["schemas"]
    return {
        schema["properties"]["type"]["enum"][0]: name
        for name, schema in components.items()
        if name.endswith("StreamingEvent")
    }


#: What Open Responses lacks: freeform custom tools, their calls and their events (checked against OpenAI's
#: document alone).
CUSTOM_EVENTS = ("response.custom_tool_call_input.delta", "response.custom_tool_call_input.done")


def assert_open_responses_valid(event_type: str | None, instance: Any) -> None:
    """Valid under Open Responses (the response alone when `event_type` is None), but for the echo of
    request fields Open Responses cannot express: tools other than flat functions, and json_schema text
    formats (its document types their `schema` as null); and for custom tool calls, which it does not
    have."""
    if event_type in CUSTOM_EVENTS or (instance.get("item") or {}).get("type") == "custom_tool_call":
        return
    instance = copy.deepcopy(instance)
    response = instance.get("response", {}) if event_type else instance
    if "output" in response:
        response["output"] = [item for item in response["output"] if item["type"] != "custom_tool_call"]
    if "tools" in response:
        response["tools"] = [tool for tool in response["tools"] if tool["type"] == "function"]
    if (response.get("text") or {}).get("format", {}).get("type") == "json_schema":
        response["text"] = {"format": {"type": "text"}}
    component = open_responses_components()[event_type] if event_type else "ResponseResource"
    _assert_valid(spec_validator(component, "openresponses"), component, instance)


def _assert_valid(validator: jsonschema.protocols.Validator, component: str, instance: Any) -> None:
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        path = "/".join(str(p) for p in errors[0].absolute_path)
        raise AssertionError(f"not a valid {component} at /{path}: {errors[0].message}")


# -- helpers ------------------------------------------------------------------------------------------------


def sdk_client(handler: Callable[[Any], Any]) -> openai.OpenAI:
    """The official SDK on a mock transport: requests never leave the process."""
    http = sdk_http()
    return openai.OpenAI(
        api_key="sk-test",
        base_url="http://gateway.test/v1",
        max_retries=0,
        http_client=http.Client(transport=http.MockTransport(handler)),
    )


def sdk_http() -> Any:
    """The HTTP library the installed SDK is built on (httpx2 in recent SDKs, httpx before)."""
    return getattr(_base_client, "httpx2", None) or getattr(_base_client, "httpx")  # noqa: B009


def sdk_stream(raw: bytes) -> tuple[list[Any], Any]:
    """The events `responses.stream()` yields from the bytes, and its final response (None without a
    `response.completed`)."""
    http = sdk_http()
    answer = http.Response(200, content=raw, headers={"content-type": "text/event-stream"})
    client = sdk_client(lambda request: answer)
    with client.responses.stream(model=MODEL, input="hi") as stream:
        events = list(stream)
        try:
            final = stream.get_final_response()
        except RuntimeError:
            final = None
    return events, final


def in_substance(sdk_dict: dict[str, Any]) -> dict[str, Any]:
    """An SDK response as data: without the fields its parse helpers add (`parsed`, `parsed_arguments`),
    `created_at` as the integer it was sent as."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in ("parsed", "parsed_arguments")}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    result: dict[str, Any] = strip(sdk_dict)
    result["created_at"] = int(result["created_at"])
    return result


def events_of(raw: bytes) -> list[list[Any]]:
    """[event name, data] pairs; every event is exactly `event: <name>\\ndata: <json>\\n\\n`."""
    assert raw.endswith(b"\n\n")
    events = []
    for block in raw.decode().split("\n\n")[:-1]:
        name, data = block.split("\n")
        assert name.startswith("event: ") and data.startswith("data: "), block
        payload = json.loads(data.removeprefix("data: "))
        assert payload["type"] == name.removeprefix("event: ")
        events.append([name.removeprefix("event: "), payload])
    return events


def encoder_for(body: dict[str, Any]) -> ResponsesStreamEncoder:
    return ResponsesStreamEncoder(skeleton(body, response_id=RESPONSE_ID, created_at=CREATED, model=MODEL))


def fixture_failure(case: dict[str, Any]) -> GatewayError | None:
    failure = case["failure"]
    if failure is None:
        return None
    return GatewayError(
        failure["message"], status=failure["status"], code=failure["code"], headers=failure.get("headers")
    )


def encode(case: dict[str, Any]) -> tuple[bytes, ResponsesStreamEncoder]:
    encoder = encoder_for(case["body"])
    raw = b"".join(encoder.encode(batch) for batch in case["batches"]) + encoder.close(fixture_failure(case))
    return raw, encoder


def chunk(delta: dict[str, Any], finish: str | None = None, index: int = 0) -> dict[str, Any]:
    choice = {"index": index, "delta": delta, "finish_reason": finish, "logprobs": None}
    return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [choice]}


def call_delta(index: int, id: str | None, name: str | None, arguments: str) -> dict[str, Any]:
    delta: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if id is not None:
        delta["id"] = id
    if name is not None:
        delta["function"]["name"] = name
    return chunk({"tool_calls": [delta]})


def translate(case: dict[str, Any], strict_tools: bool = False) -> tuple[dict[str, Any], list[str]]:
    body = case["responses"]
    return to_chat(body, [*case.get("history", []), *input_items(body)], strict_tools=strict_tools)


# -- input items --------------------------------------------------------------------------------------------


def test_a_string_input_is_one_user_message() -> None:
    assert input_items({"model": MODEL, "input": "Hi"}) == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}
    ]


def test_no_input_is_no_items() -> None:
    assert input_items({"model": MODEL}) == []
    assert input_items({"model": MODEL, "input": None}) == []


def test_easy_messages_get_a_type_and_parts() -> None:
    body = {
        "model": MODEL,
        "input": [
            {"role": "developer", "content": "Be brief."},
            {"role": "assistant", "content": "Hello."},
            {"id": "msg_1", "role": "user", "content": [{"type": "input_text", "text": "Hi"}], "x": 1},
        ],
    }
    assert input_items(body) == [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Be brief."}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hello."}]},
        {
            "type": "message",
            "id": "msg_1",
            "role": "user",
            "content": [{"type": "input_text", "text": "Hi"}],
            "x": 1,
        },
    ]


def test_other_items_are_kept_as_they_are_and_copied() -> None:
    call = {"type": "function_call", "id": "fc_1", "call_id": "c", "name": "f", "arguments": "{}"}
    reasoning = {"type": "reasoning", "summary": [], "encrypted_content": "gAAAA"}
    body = {"model": MODEL, "input": [call, reasoning]}
    items = input_items(body)
    assert items == [call, reasoning]
    assert items[0] is not call
    items[0]["name"] = "g"
    assert call["name"] == "f"  # the client's body is never changed


# -- requests -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", golden("ingress_responses", "request"))
def test_request(case: dict[str, Any]) -> None:
    validate_responses_request(case["responses"])
    untouched = copy.deepcopy(case)
    chat, dropped = translate(case)
    assert chat == case["chat"]
    assert dropped == case["dropped"]
    assert case == untouched  # neither the body nor the history is changed
    validate_chat_request(chat)  # the canonical request passes the chat door's own contract


@pytest.mark.parametrize("case", golden("ingress_responses", "rejected"))
def test_rejected_request(case: dict[str, Any]) -> None:
    validate_responses_request(case["responses"])  # valid Responses: only the translation refuses it
    with pytest.raises(GatewayError) as caught:
        translate(case, strict_tools=case["strict_tools"])
    error = caught.value
    assert {"status": error.status, "param": error.param, "code": error.code, "message": error.message} == (
        case["error"]
    )


def test_the_codex_session_keeps_every_function_and_custom_tool_and_drops_only_built_ins() -> None:
    case = fixture("ingress_responses", "request", "codex_session")
    chat, dropped = translate(case)
    names = [tool["function"]["name"] for tool in chat["tools"]]
    assert names == ["shell_command", "update_plan", "list_mcp_resources", "mcp__files__read", "apply_patch"]
    assert dropped == ["web_search"]
    assert "gAAAA" not in json.dumps(chat)  # encrypted reasoning never crosses
    assert "Inspecting" not in json.dumps(chat)  # nor its summary
    roles = [message["role"] for message in chat["messages"]]
    assert roles == ["system", "system", "user", "user", "assistant", "tool", "assistant", "tool"]
    body = case["responses"]
    for field in ("client_metadata", "prompt_cache_key", "include", "store"):
        assert field in body and field not in chat


def test_strict_tools_names_the_first_built_in_tool() -> None:
    body = {"model": MODEL, "input": "Hi", "tools": [WEATHER, {"type": "web_search"}, {"type": "mcp"}]}
    with pytest.raises(GatewayError) as caught:
        to_chat(body, input_items(body), strict_tools=True)
    assert (caught.value.status, caught.value.param) == (400, "tools[1].type")
    chat, dropped = to_chat(body, input_items(body))
    assert dropped == ["web_search", "mcp"] and len(chat["tools"]) == 1


def test_a_tool_choice_with_the_namespace_names_the_flat_function() -> None:
    namespace = {
        "type": "namespace",
        "name": "a",
        "description": "A",
        "tools": [{"type": "function", "name": "f"}],
    }
    other = {
        "type": "namespace",
        "name": "b",
        "description": "B",
        "tools": [{"type": "function", "name": "f"}],
    }
    body = {
        "model": MODEL,
        "input": "Hi",
        "tools": [namespace, other],
        "tool_choice": {"type": "function", "name": "f", "namespace": "b"},
    }
    chat, _ = to_chat(body, input_items(body))
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "b__f"}}


@pytest.mark.parametrize(
    ("namespace", "name", "flat"),
    [
        (None, "read", "read"),
        ("crm", "lookup", "crm__lookup"),
        ("mcp__files__", "read", "mcp__files__read"),
        ("mcp__codex_apps__calendar", "create_event", "mcp__codex_apps__calendar__create_event"),
    ],
)
def test_flat_names(namespace: str | None, name: str, flat: str) -> None:
    assert flat_name(namespace, name) == flat


def test_a_flat_name_past_64_characters_is_cut_and_stays_unique() -> None:
    namespace = "mcp__" + "a_very_long_server_name_" * 3
    first, second = flat_name(namespace, "read_the_file"), flat_name(namespace, "read_the_files")
    assert len(first) == len(second) == 64
    assert first != second and first[:55] == second[:55]
    validate_chat_request(
        {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "tools": [_chat_function(first)]}
    )
    tools = [
        {
            "type": "namespace",
            "name": namespace,
            "description": "d",
            "tools": [{"type": "function", "name": "read_the_file"}],
        }
    ]
    assert tool_names(tools) == {first: ToolName(namespace, "read_the_file", False)}


def _chat_function(name: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": name, "parameters": {"type": "object", "properties": {}}},
    }


# -- responses ----------------------------------------------------------------------------------------------


def response_of(case: dict[str, Any]) -> dict[str, Any]:
    return to_response(
        case["completion"], response_id=RESPONSE_ID, created_at=CREATED, model=MODEL, body=case["body"]
    )


@pytest.mark.parametrize("case", golden("ingress_responses", "response"))
def test_response(case: dict[str, Any]) -> None:
    untouched = copy.deepcopy(case)
    response = response_of(case)
    assert response == case["response"]
    assert case == untouched
    assert_spec_valid("Response", response)
    assert_open_responses_valid(None, response)


@pytest.mark.parametrize("case", golden("ingress_responses", "response"))
def test_the_sdk_reads_the_response(case: dict[str, Any]) -> None:
    """`responses.create()` parses the response into its typed `Response`, field for field."""
    response = response_of(case)
    http = sdk_http()
    client = sdk_client(lambda request: http.Response(200, json=response))
    parsed = client.responses.create(model=MODEL, input="hi")
    assert isinstance(parsed, openai.types.responses.Response)
    assert in_substance(parsed.to_dict()) == response
    text = "".join(
        part["text"]
        for item in response["output"]
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "output_text"
    )
    assert parsed.output_text == text


def test_item_ids_are_stable_and_unique() -> None:
    case = fixture("ingress_responses", "response", "text_and_tool_call")
    first, again = response_of(case), response_of(case)
    assert first["output"] == again["output"]
    ids = [item["id"] for item in first["output"]]
    assert len(set(ids)) == len(ids) == 2
    assert ids[0].startswith("msg_") and ids[1].startswith("fc_")
    other = to_response(
        case["completion"], response_id="resp_other", created_at=1, model=MODEL, body=case["body"]
    )
    assert {item["id"] for item in other["output"]}.isdisjoint(ids)


def test_tool_calls_round_trip_through_the_conversation() -> None:
    """The output items, stored as history and answered with function_call_output items, give the upstream
    the same calls again, namespaced ones under the same flat name."""
    case = fixture("ingress_responses", "response", "namespaced_call")
    response = response_of(case)
    history = [*input_items(case["body"]), *output_items(response)]
    outputs = [
        {"type": "function_call_output", "call_id": item["call_id"], "output": "ok"}
        for item in response["output"]
        if item["type"] == "function_call"
    ]
    body = {
        "model": MODEL,
        "tools": case["body"]["tools"],
        "input": outputs,
        "previous_response_id": RESPONSE_ID,
    }
    validate_responses_request(body)
    chat, _ = to_chat(body, [*history, *input_items(body)])
    sent = case["completion"]["choices"][0]["message"]["tool_calls"]
    assert chat["messages"][1]["tool_calls"] == [
        {"id": call["id"], "type": "function", "function": call["function"]} for call in sent
    ]
    assert [m["tool_call_id"] for m in chat["messages"][2:]] == [call["id"] for call in sent]
    validate_chat_request(chat)


def test_output_items_are_copies() -> None:
    response = response_of(fixture("ingress_responses", "response", "text"))
    items = output_items(response)
    assert items == response["output"]
    items[0]["content"][0]["text"] = "changed"
    assert response["output"][0]["content"][0]["text"] == "Hello! How can I help?"


def test_the_skeleton_is_what_to_response_fills_in() -> None:
    body = {"model": MODEL, "input": "Hi", "instructions": "Be brief.", "metadata": {"a": "b"}}
    empty = to_response(
        {"choices": [], "usage": None}, response_id=RESPONSE_ID, created_at=CREATED, model=MODEL, body=body
    )
    started = skeleton(body, response_id=RESPONSE_ID, created_at=CREATED, model=MODEL)
    assert {**empty, "status": "in_progress"} == started
    assert_spec_valid("Response", started)
    assert_open_responses_valid(None, started)


# -- streams ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", golden("ingress_responses", "stream"))
def test_stream(case: dict[str, Any]) -> None:
    untouched = copy.deepcopy(case["batches"])
    raw, encoder = encode(case)
    events = events_of(raw)
    assert events == case["events"]
    assert case["batches"] == untouched
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    for name, data in events:
        assert_spec_valid(EVENT_COMPONENTS[name], data)
        assert_open_responses_valid(name, data)
    assert encoder.response == events[-1][1]["response"]


@pytest.mark.parametrize("case", golden("ingress_responses", "stream"))
def test_the_sdk_accumulates_the_stream(case: dict[str, Any]) -> None:
    """The official SDK's `responses.stream()` helper, fed the events, builds the encoder's own final
    response (or, for an incomplete or failed stream, hands over that response in its last event)."""
    raw, encoder = encode(case)
    events, final = sdk_stream(raw)
    assert encoder.response is not None
    assert events[0].type == "response.created" and events[-1].type == events_of(raw)[-1][0]
    if events[-1].type == "response.completed":
        assert final is not None
        assert in_substance(final.to_dict()) == encoder.response
    else:
        assert final is None
        assert in_substance(events[-1].response.to_dict()) == encoder.response
    for event in events:
        if event.type == "response.output_text.done":  # the SDK's own text snapshot agrees
            item = encoder.response["output"][event.output_index]
            assert event.text == item["content"][event.content_index]["text"]


def test_every_lifecycle_keeps_one_response_id() -> None:
    for param in golden("ingress_responses", "stream"):
        (case,) = param.values
        ids = {data["response"]["id"] for _, data in case["events"] if "response" in data}
        assert ids == {RESPONSE_ID}
        names = [name for name, _ in case["events"]]
        assert names[:2] == ["response.created", "response.in_progress"]
        assert names[-1] in ("response.completed", "response.incomplete", "response.failed")
        assert names[-1] == "response.failed" if case["failure"] else names[-1] != "response.failed"


def test_every_item_added_is_done_in_a_finished_stream() -> None:
    for param in golden("ingress_responses", "stream"):
        (case,) = param.values
        if case["failure"] is not None:
            continue
        added = [data["item"]["id"] for name, data in case["events"] if name == "response.output_item.added"]
        done = [data["item"]["id"] for name, data in case["events"] if name == "response.output_item.done"]
        assert sorted(added) == sorted(done)
        final = case["events"][-1][1]["response"]["output"]
        assert [item["id"] for item in final] == added


#: Streams whose chunks, accumulated into one chat.completion, give `to_response` the same response.
SAME_AS_COMPLETION = [
    "text",
    "reasoning_then_text",
    "tool_call_streamed",
    "tool_call_arguments_in_one_final_delta",
    "parallel_tool_calls",
    "text_then_tool_calls",
    "namespaced_call",
    "length_is_incomplete",
    "content_filter_is_incomplete",
    "refusal",
    "text_then_refusal",
    "no_usage",
    "usage_on_the_last_choice_chunk",
    "empty_answer",
    "custom_call_streamed",
    "custom_call_in_one_chunk",
    "custom_call_other_shape",
    "text_then_custom_and_function_calls",
    "custom_call_cut_by_length",
]


@pytest.mark.parametrize("name", SAME_AS_COMPLETION)
def test_a_stream_and_its_completion_give_the_same_response(name: str) -> None:
    case = fixture("ingress_responses", "stream", name)
    _, encoder = encode(case)
    completion = accumulate([chunk for batch in case["batches"] for chunk in batch])
    expected = to_response(
        completion, response_id=RESPONSE_ID, created_at=CREATED, model=MODEL, body=case["body"]
    )
    assert encoder.response == expected


def accumulate(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """The chat.completion a client would assemble from the chunks (first choice only)."""
    message: dict[str, Any] = {"role": "assistant", "content": None}
    calls: dict[int, dict[str, Any]] = {}
    finish, usage = None, None
    for item in chunks:
        usage = item.get("usage") or usage
        for choice in item.get("choices") or ():
            if choice["index"] != 0:
                continue
            delta = choice["delta"]
            for key in ("content", "reasoning_content", "refusal"):
                if delta.get(key):
                    message[key] = (message.get(key) or "") + delta[key]
            for fragment in delta.get("tool_calls") or ():
                call = calls.setdefault(
                    fragment["index"],
                    {"id": None, "type": "function", "function": {"name": "", "arguments": ""}},
                )
                call["id"] = call["id"] or fragment.get("id")
                call["function"]["name"] += fragment["function"].get("name") or ""
                call["function"]["arguments"] += fragment["function"].get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    if calls:
        message["tool_calls"] = [calls[index] for index in sorted(calls)]
    return {"choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage}


def test_close_without_chunks_is_an_empty_completed_response() -> None:
    encoder = encoder_for({"model": MODEL, "input": "Hi"})
    events = events_of(encoder.close(None))
    assert [name for name, _ in events] == ["response.created", "response.in_progress", "response.completed"]
    assert events[-1][1]["response"]["output"] == [] and encoder.response is not None


def test_later_batches_send_only_their_events() -> None:
    encoder = encoder_for({"model": MODEL, "input": "Hi"})
    first = events_of(encoder.encode([chunk({"role": "assistant", "content": ""})]))
    assert [name for name, _ in first] == ["response.created", "response.in_progress"]
    assert encoder.encode([{"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}]) == b""
    assert encoder.encode([chunk({"content": "x"})]).startswith(b"event: response.output_item.added\n")


def test_the_response_is_there_only_after_close() -> None:
    encoder = encoder_for({"model": MODEL, "input": "Hi"})
    encoder.encode([chunk({"content": "Hi"}), chunk({}, "stop")])
    assert encoder.response is None
    encoder.close(None)
    assert encoder.response is not None and encoder.response["status"] == "completed"


def test_text_is_escaped_as_json() -> None:
    text = 'quote " backslash \\ newline \n tab \t unicode é 🙂 </script>'
    encoder = encoder_for({"model": MODEL, "input": "Hi"})
    raw = encoder.encode([chunk({"content": text}), chunk({}, "stop")]) + encoder.close(None)
    _, final = sdk_stream(raw)
    assert final.output_text == text


def test_arguments_in_one_final_fragment_reach_the_sdk() -> None:
    """The bug peers have: arguments that arrive whole in the last fragment, with no deltas before."""
    body = {"model": MODEL, "input": "Weather?", "tools": [WEATHER]}
    encoder = encoder_for(body)
    raw = encoder.encode([call_delta(0, "call_w", "get_weather", "")])
    raw += encoder.encode([call_delta(0, None, None, '{"city":"Paris"}'), chunk({}, "tool_calls")])
    raw += encoder.close(None)
    done = [data for name, data in events_of(raw) if name == "response.function_call_arguments.done"]
    assert [d["arguments"] for d in done] == ['{"city":"Paris"}']
    _, final = sdk_stream(raw)
    (call,) = final.output
    assert (call.type, call.call_id, call.arguments) == ("function_call", "call_w", '{"city":"Paris"}')


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (
            upstream_error("anthropic", 429, "slow down", retry_after="3"),
            "rate_limit_exceeded",
            "try again in 3s",
        ),
        (GatewayError("quota", status=429, code="insufficient_quota"), "insufficient_quota", "quota"),
        (
            GatewayError("too long", status=400, code="context_length_exceeded"),
            "context_length_exceeded",
            "too long",
        ),
        (GatewayError("broke", status=502, code="upstream_error"), "server_error", "broke"),
        (GatewayError("slow", status=504, code="upstream_timeout"), "server_error", "slow"),
    ],
)
def test_a_failure_becomes_response_failed(error: GatewayError, code: str, message: str) -> None:
    assert failure_error(error)["code"] == code and message in failure_error(error)["message"]
    encoder = encoder_for({"model": MODEL, "input": "Hi"})
    raw = encoder.encode([chunk({"content": "Par"})]) + encoder.close(error)
    events, final = sdk_stream(raw)
    assert final is None
    failed = events[-1]
    assert failed.type == "response.failed" and failed.response.status == "failed"
    assert failed.response.error.code == code and message in failed.response.error.message
    assert encoder.response is not None and encoder.response["status"] == "failed"


# -- freeform custom tools ----------------------------------------------------------------------------------

NOTE = {"type": "custom", "name": "note", "description": "Write a note.", "format": {"type": "text"}}
#: An input with every escape JSON has, a two-byte, a three-byte and an astral character.
TRICKY = 'a "q" \\ / \b\f\n\r\t é € 🙂 \x01 end'


def custom_call_events(arguments: list[str]) -> list[list[Any]]:
    """The events for one call of the custom tool `note` whose arguments arrive in these fragments."""
    encoder = encoder_for({"model": MODEL, "input": "Note.", "tools": [NOTE]})
    batches = [
        [call_delta(0, "call_n", "note", arguments[0])],
        *[[call_delta(0, None, None, a)] for a in arguments[1:]],
    ]
    raw = b"".join(encoder.encode(batch) for batch in batches) + encoder.close(None)
    return events_of(raw)


def test_a_custom_call_split_anywhere_streams_only_whole_text_that_adds_up_to_its_input() -> None:
    """Every way to cut the arguments in three: no delta holds half an escape or half a surrogate pair (each
    is exactly some of the input's characters, in order), and together they are the input."""
    arguments = json.dumps({"input": TRICKY})  # ensure_ascii: \\u escapes, surrogate pairs for 🙂
    for i in range(len(arguments) + 1):
        for j in range(i, len(arguments) + 1):
            events = custom_call_events([arguments[:i], arguments[i:j], arguments[j:]])
            deltas = [
                data["delta"] for name, data in events if name == "response.custom_tool_call_input.delta"
            ]
            (done,) = [
                data["input"] for name, data in events if name == "response.custom_tool_call_input.done"
            ]
            assert "".join(deltas) == done == TRICKY, (i, j, deltas)
            assert all(delta and not any(0xD800 <= ord(c) < 0xE000 for c in delta) for delta in deltas)


def test_a_custom_call_streams_its_input_as_it_comes() -> None:
    """Not buffered: the decoded text of each fragment is a delta of its own."""
    events = custom_call_events(['{"input": "one ', "two ", 'three"}'])
    deltas = [data["delta"] for name, data in events if name == "response.custom_tool_call_input.delta"]
    assert deltas == ["one ", "two ", "three"]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"input": "x\\ny"}', "x\ny"),
        ('{"other": 1, "input": "late"}', "late"),
        ('{"text": "only string"}', "only string"),
        ('"bare"', "bare"),
        ("raw text, no JSON", "raw text, no JSON"),
        ('{"a": "1", "b": "2"}', '{"a": "1", "b": "2"}'),
        ('{"input": "cut sh', "cut sh"),
        ("", ""),
    ],
)
def test_a_custom_calls_input_is_read_leniently(arguments: str, expected: str) -> None:
    completion = {
        "choices": [
            {
                "message": {
                    "tool_calls": [{"id": "call_n", "function": {"name": "note", "arguments": arguments}}]
                },
                "finish_reason": "tool_calls",
            }
        ]
    }
    body = {"model": MODEL, "input": "Note.", "tools": [NOTE]}
    response = to_response(completion, response_id=RESPONSE_ID, created_at=CREATED, model=MODEL, body=body)
    assert [(item["type"], item["input"]) for item in response["output"]] == [("custom_tool_call", expected)]
    events = custom_call_events([arguments])
    assert events[-1][1]["response"]["output"] == response["output"]


def test_a_long_grammar_is_cut_in_the_description() -> None:
    definition = "start: " + " | ".join(f'"word{i}"' for i in range(2000))
    tool = {
        "type": "custom",
        "name": "g",
        "format": {"type": "grammar", "syntax": "lark", "definition": definition},
    }
    body = {"model": MODEL, "input": "Hi", "tools": [tool]}
    chat, _ = to_chat(body, input_items(body))
    description = chat["tools"][0]["function"]["description"]
    assert len(definition) > 10_000 and len(description) < 4_300
    assert "cut short" in description and definition[:4000] in description
    validate_chat_request(chat)


def test_custom_calls_round_trip_through_the_conversation() -> None:
    """A response's custom_tool_call items, stored as history and answered with custom_tool_call_output
    items, give the upstream the same calls again: the same function names and arguments that decode to the
    same input."""
    case = fixture("ingress_responses", "response", "custom_call_from_additional_tools")
    response = response_of(case)
    history = [*input_items(case["body"]), *output_items(response)]
    (call,) = response["output"]
    assert (call["type"], call["namespace"], call["name"]) == ("custom_tool_call", "functions", "exec")
    body = {
        "model": MODEL,
        "input": [{"type": "custom_tool_call_output", "call_id": call["call_id"], "output": "PELICAN-42"}],
        "previous_response_id": RESPONSE_ID,
    }
    validate_responses_request(body)
    chat, dropped = to_chat(body, [*history, *input_items(body)])
    (sent,) = case["completion"]["choices"][0]["message"]["tool_calls"]
    assert chat["messages"][-2]["tool_calls"][0]["function"]["name"] == sent["function"]["name"]
    assert json.loads(chat["messages"][-2]["tool_calls"][0]["function"]["arguments"]) == json.loads(
        sent["function"]["arguments"]
    )
    assert chat["messages"][-1] == {"role": "tool", "tool_call_id": sent["id"], "content": "PELICAN-42"}
    assert "functions__exec" in {tool["function"]["name"] for tool in chat["tools"]}  # from the history
    assert dropped == ["web_search"]
    validate_chat_request(chat)


def test_a_continuation_whose_tools_came_in_the_history_still_answers_custom_calls() -> None:
    """`items` (the whole conversation, as to_chat took it) tells `to_response` and the skeleton about the
    tools of the history's additional_tools items, which the request body alone does not hold."""
    case = fixture("ingress_responses", "response", "custom_call_from_additional_tools")
    items = input_items(case["body"])
    body = {"model": MODEL, "input": "Again.", "previous_response_id": "resp_before"}
    for response in (
        to_response(
            case["completion"],
            response_id=RESPONSE_ID,
            created_at=CREATED,
            model=MODEL,
            body=body,
            items=items,
        ),
        events_of(
            ResponsesStreamEncoder(
                skeleton(body, response_id=RESPONSE_ID, created_at=CREATED, model=MODEL, items=items)
            ).close(None)
        )[-1][1]["response"],
    ):
        assert response["tools"] == response_of(case)["tools"]
    whole = to_response(
        case["completion"], response_id=RESPONSE_ID, created_at=CREATED, model=MODEL, body=body, items=items
    )
    assert whole["output"] == response_of(case)["output"]
    assert_spec_valid("Response", whole)


def test_custom_tools_are_not_dropped_and_the_header_names_only_what_is() -> None:
    """Regression: custom tools were dropped and named in x-llm-gateway-dropped-tools like built-ins."""
    body = {"model": MODEL, "input": "Hi", "tools": [NOTE, {"type": "web_search"}]}
    chat, dropped = to_chat(body, input_items(body), strict_tools=False)
    assert dropped == ["web_search"] and [tool["function"]["name"] for tool in chat["tools"]] == ["note"]
    chat, dropped = to_chat({**body, "tools": [NOTE]}, input_items(body), strict_tools=True)
    assert dropped == [] and chat["tools"][0]["function"]["parameters"]["required"] == ["input"]


def test_a_tool_choice_namespace_that_is_not_a_string_names_none() -> None:
    """Regression: a tool_choice `namespace` the schema does not check (a number) made a 500; now it is no
    namespace."""
    body = {
        "model": MODEL,
        "input": "Hi",
        "tools": [NOTE],
        "tool_choice": {"type": "custom", "name": "note", "namespace": 7},
    }
    chat, _ = to_chat(body, input_items(body))
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "note"}}


def test_a_rate_limit_message_that_says_when_to_retry_is_not_told_twice() -> None:
    """Regression: a 429 whose message already says "Please try again in 20ms." (OpenAI's wording, and the
    gateway's own limits') got the sentence again from its Retry-After."""
    error = GatewayError(
        "Rate limit reached for requests. Please try again in 20ms.",
        status=429,
        code="rate_limit_exceeded",
        headers={"retry-after": "1"},
    )
    assert failure_error(error)["message"] == "Rate limit reached for requests. Please try again in 20ms."
