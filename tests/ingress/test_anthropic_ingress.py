"""The Anthropic Messages ingress (asgi_llm_gateway/ingress/anthropic/) against golden fixtures and the SDK.

Fixtures in tests/fixtures/ingress_anthropic/: `request/` Messages body → canonical chat request,
`rejected/` bodies answered with a 400, `response/` chat.completion → message, `stream/` chunk batches →
events, with what the official `anthropic` SDK accumulates from those events (or the error it raises).
"""

from __future__ import annotations

import contextlib
import copy
import json
from typing import Any

import anthropic
import pytest

from asgi_llm_gateway.errors import GatewayError, upstream_error
from asgi_llm_gateway.ingress import anthropic as ingress
from asgi_llm_gateway.ingress.anthropic import (
    DROPPED_FIELDS,
    MessagesStreamEncoder,
    error_envelope,
    error_event,
    from_completion,
    reasoning_effort,
    to_chat,
)
from asgi_llm_gateway.providers.claude import thinking_for
from asgi_llm_gateway.schemas import validate_chat_request, validate_messages_request
from tests.ingress.sdk import sdk_client, sdk_http
from tests.support.golden import fixture, golden

MODEL = "claude-sonnet-4-6"


# -- helpers ------------------------------------------------------------------------------------------------


def sse_response(raw: bytes) -> Any:
    http = sdk_http()
    return lambda request: http.Response(200, content=raw, headers={"content-type": "text/event-stream"})


def sdk_stream(raw: bytes) -> anthropic.types.Message:
    """What the SDK's `messages.stream()` helper accumulates from the event bytes."""
    client = sdk_client(sse_response(raw))
    with client.messages.stream(
        model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    ) as s:
        return s.get_final_message()


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


def encode(batches: list[list[dict[str, Any]]], failure: GatewayError | None = None) -> bytes:
    encoder = MessagesStreamEncoder(MODEL)
    return b"".join(encoder.encode(batch) for batch in batches) + encoder.close(failure)


def chunk(delta: dict[str, Any], finish: str | None = None, index: int = 0) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-5-mini",
        "choices": [{"index": index, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }


def call_delta(index: int, id: str | None, name: str | None, arguments: str) -> dict[str, Any]:
    delta: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if id is not None:
        delta["id"] = id
    if name is not None:
        delta["function"]["name"] = name
    return chunk({"tool_calls": [delta]})


def request(**fields: Any) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 1024, "messages": [{"role": "user", "content": "Hi"}], **fields}


# -- requests -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", golden("ingress_anthropic", "request"))
def test_request(case: dict[str, Any]) -> None:
    body = case["anthropic"]
    validate_messages_request(body)
    untouched = copy.deepcopy(body)
    chat = to_chat(body)
    assert chat == case["chat"]
    assert body == untouched  # the client's body is never changed
    validate_chat_request(chat)  # the canonical request passes the chat door's own contract


@pytest.mark.parametrize("case", golden("ingress_anthropic", "rejected"))
def test_rejected_request(case: dict[str, Any]) -> None:
    validate_messages_request(case["anthropic"])  # valid Messages: only the translation refuses it
    with pytest.raises(GatewayError) as caught:
        to_chat(case["anthropic"])
    error = caught.value
    assert {"status": error.status, "param": error.param, "code": error.code, "message": error.message} == (
        case["error"]
    )


def test_every_dropped_field_is_in_a_fixture_and_never_crosses() -> None:
    case = fixture("ingress_anthropic", "request", "anthropic_only_fields_dropped")
    top_level = {name for name in DROPPED_FIELDS if "." not in name}
    assert top_level <= case["anthropic"].keys()
    assert top_level.isdisjoint(to_chat(case["anthropic"]))


def test_the_claude_code_session_keeps_every_tool_and_turn() -> None:
    case = fixture("ingress_anthropic", "request", "claude_code_session")
    chat = to_chat(case["anthropic"])
    assert len(chat["tools"]) == len(case["anthropic"]["tools"]) >= 12
    roles = [message["role"] for message in chat["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "tool", "tool", "system", "user"]
    assert "thinking" not in json.dumps(chat["messages"])  # neither the blocks nor their text
    assert "signature" not in json.dumps(chat)


@pytest.mark.parametrize(
    ("budget", "effort"),
    [(1024, "low"), (8191, "low"), (8192, "medium"), (16383, "medium"), (16384, "high"), (128000, "high")],
)
def test_thinking_budgets_map_to_levels(budget: int, effort: str) -> None:
    assert reasoning_effort(request(thinking={"type": "enabled", "budget_tokens": budget})) == effort


@pytest.mark.parametrize("effort", ["low", "medium", "high"])
def test_a_level_survives_the_round_trip_through_claude(effort: str) -> None:
    """The budget the gateway sends Claude for a level maps back to that level."""
    thinking, _ = thinking_for(effort, "claude-sonnet-4-5", 64000, "Anthropic")
    assert reasoning_effort(request(thinking=thinking)) == effort


@pytest.mark.parametrize("thinking", [{"type": "between_tools"}, {"type": "a_future_type"}])
def test_thinking_types_without_a_level_leave_the_default(thinking: dict[str, Any]) -> None:
    assert reasoning_effort(request(thinking=thinking)) is None
    assert reasoning_effort(request(thinking=thinking, output_config={"effort": "low"})) == "low"


def test_a_count_tokens_body_translates_without_max_tokens() -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "system": "Be brief."}
    validate_messages_request(body, count_tokens=True)
    assert to_chat(body) == {
        "model": MODEL,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    }


# -- responses ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", golden("ingress_anthropic", "response"))
def test_response(case: dict[str, Any]) -> None:
    completion = case["completion"]
    untouched = copy.deepcopy(completion)
    message = from_completion(completion, case["model"])
    assert message.pop("id").startswith("msg_")
    assert message == case["message"]
    assert completion == untouched


@pytest.mark.parametrize("case", golden("ingress_anthropic", "response"))
def test_the_sdk_reads_the_message(case: dict[str, Any]) -> None:
    """`messages.create()` parses the message into its typed `Message`, field for field."""
    message = from_completion(case["completion"], case["model"])
    http = sdk_http()
    client = sdk_client(lambda request: http.Response(200, json=message))
    parsed = client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert isinstance(parsed, anthropic.types.Message)
    assert parsed.to_dict() == message


def test_a_call_without_an_id_gets_a_tool_use_id() -> None:
    completion = {
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{}"}}],
                },
                "finish_reason": "tool_calls",
            }
        ]
    }
    (block,) = from_completion(completion, MODEL)["content"]
    assert block["id"].startswith("toolu_") and len(block["id"]) > len("toolu_")


def test_tool_calls_round_trip_through_the_client() -> None:
    """The message the client gets back, replayed with its tool results, gives the upstream the same calls."""
    case = fixture("ingress_anthropic", "response", "tool_calls")
    message = from_completion(case["completion"], MODEL)
    results = [
        {"type": "tool_result", "tool_use_id": block["id"], "content": "ok"}
        for block in message["content"]
        if block["type"] == "tool_use"
    ]
    body = request(
        messages=[
            {"role": "user", "content": "Weather and time?"},
            {"role": "assistant", "content": message["content"]},
            {"role": "user", "content": results},
        ]
    )
    validate_messages_request(body)
    chat = to_chat(body)
    original = case["completion"]["choices"][0]["message"]
    replayed = chat["messages"][1]
    assert replayed["content"] == original["content"]
    assert [(c["id"], c["function"]["name"]) for c in replayed["tool_calls"]] == [
        (c["id"], c["function"]["name"]) for c in original["tool_calls"]
    ]
    assert [json.loads(c["function"]["arguments"]) for c in replayed["tool_calls"]] == [
        json.loads(c["function"]["arguments"]) for c in original["tool_calls"]
    ]
    assert [m["tool_call_id"] for m in chat["messages"][2:]] == [c["id"] for c in original["tool_calls"]]


# -- streams ------------------------------------------------------------------------------------------------


def fixture_failure(case: dict[str, Any]) -> GatewayError | None:
    failure = case["failure"]
    if failure is None:
        return None
    return GatewayError(failure["message"], status=failure["status"], code=failure["code"])


@pytest.mark.parametrize("case", golden("ingress_anthropic", "stream"))
def test_stream(case: dict[str, Any]) -> None:
    batches = case["batches"]
    untouched = copy.deepcopy(batches)
    events = events_of(encode(batches, fixture_failure(case)))
    assert events[0][0] == "message_start"
    assert events[0][1]["message"].pop("id").startswith("msg_")
    assert events == case["events"]
    assert batches == untouched


@pytest.mark.parametrize("case", golden("ingress_anthropic", "stream"))
def test_the_sdk_accumulates_the_stream(case: dict[str, Any]) -> None:
    """The official SDK's `messages.stream()` helper, fed the events, builds the expected message, or raises
    the error event as an API error."""
    raw = encode(case["batches"], fixture_failure(case))
    if case["sdk_error"] is not None:
        with pytest.raises(anthropic.APIStatusError) as caught:
            sdk_stream(raw)
        assert caught.value.body == case["sdk_error"]
        return
    message: dict[str, Any] = sdk_stream(raw).to_dict()
    assert message.pop("id").startswith("msg_")
    assert message == case["message"]


def test_the_event_sequence_is_anthropics() -> None:
    """message_start, ping, then per block start, deltas, stop with indexes counting up, then
    message_delta and message_stop: for every successful stream fixture."""
    for param in golden("ingress_anthropic", "stream"):
        (case,) = param.values
        if case["failure"] is not None:
            continue
        names = [name for name, _ in case["events"]]
        assert names[:2] == ["message_start", "ping"]
        assert names[-2:] == ["message_delta", "message_stop"]
        open_index, next_index = None, 0
        for name, data in case["events"][2:-2]:
            if name == "content_block_start":
                assert open_index is None and data["index"] == next_index
                open_index, next_index = next_index, next_index + 1
            elif name == "content_block_delta":
                assert data["index"] == open_index
            else:
                assert name == "content_block_stop" and data["index"] == open_index
                open_index = None
        assert open_index is None


def test_close_without_chunks_is_an_empty_message() -> None:
    names = [name for name, _ in events_of(MessagesStreamEncoder(MODEL).close(None))]
    assert names == ["message_start", "ping", "message_delta", "message_stop"]


def test_a_failure_before_any_chunk_is_the_error_event_alone() -> None:
    error = upstream_error("openai", 429, "slow down", retry_after="3")
    assert events_of(MessagesStreamEncoder(MODEL).close(error)) == [
        ["error", {"type": "error", "error": {"type": "rate_limit_error", "message": error.message}}]
    ]


def test_the_message_names_the_model_the_client_asked_for() -> None:
    events = events_of(encode([[chunk({"content": "Hi"}), chunk({}, "stop")]]))
    assert events[0][1]["message"]["model"] == MODEL


def test_later_batches_send_only_their_events() -> None:
    encoder = MessagesStreamEncoder(MODEL)
    encoder.encode([chunk({"role": "assistant", "content": ""})])
    assert encoder.encode([{"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}]) == b""
    assert encoder.encode([chunk({"content": "x"})]).startswith(b"event: content_block_start\n")


def test_stream_tool_ids_are_made_valid_and_made_up_when_missing() -> None:
    events = events_of(encode([[call_delta(0, "functions.f:0", "f", "{}"), call_delta(1, None, "g", "{}")]]))
    starts = [data["content_block"] for name, data in events if name == "content_block_start"]
    assert starts[0]["id"] == "functions_f_0"
    assert starts[1]["id"].startswith("toolu_")


def test_an_id_arriving_after_the_first_fragment_continues_the_call() -> None:
    raw = encode(
        [[call_delta(0, None, "f", '{"x":'), call_delta(0, "call_late", None, "1}"), chunk({}, "stop")]]
    )
    (block,) = sdk_stream(raw).content
    assert block.type == "tool_use" and block.id.startswith("toolu_") and block.input == {"x": 1}


def test_a_fragment_for_an_earlier_call_goes_to_its_block() -> None:
    """Upstreams stream calls one after the other; should one go back, the SDK still gets both inputs."""
    raw = encode(
        [
            [
                call_delta(0, "call_a", "f", '{"x":'),
                call_delta(1, "call_b", "g", '{"y":2}'),
                call_delta(0, None, None, "1}"),
                chunk({}, "tool_calls"),
            ]
        ]
    )
    content = sdk_stream(raw).content
    assert [(block.id, block.input) for block in content if block.type == "tool_use"] == [
        ("call_a", {"x": 1}),
        ("call_b", {"y": 2}),
    ]


def test_text_is_escaped_as_json() -> None:
    text = 'quote " backslash \\ newline \n tab \t unicode é 🙂 </script>'
    message = sdk_stream(encode([[chunk({"content": text}), chunk({}, "stop")]]))
    assert message.to_dict()["content"] == [{"type": "text", "text": text}]


# -- errors -------------------------------------------------------------------------------------------------


def sdk_class(name: str, before: type[anthropic.APIStatusError]) -> type[anthropic.APIStatusError]:
    """The SDK's exception class `name`, or the class SDKs that have none for its status raise."""
    found: type[anthropic.APIStatusError] = getattr(anthropic, name, before)
    return found


STATUSES = [
    (400, None, 400, "invalid_request_error", anthropic.BadRequestError),
    (401, None, 401, "authentication_error", anthropic.AuthenticationError),
    (402, None, 402, "billing_error", sdk_class("PaymentRequiredError", anthropic.APIStatusError)),
    (403, None, 403, "permission_error", anthropic.PermissionDeniedError),
    (404, "model_not_found", 404, "not_found_error", anthropic.NotFoundError),
    (405, None, 405, "invalid_request_error", anthropic.APIStatusError),
    (413, None, 413, "request_too_large", sdk_class("ContentTooLargeError", anthropic.APIStatusError)),
    (422, None, 422, "invalid_request_error", anthropic.UnprocessableEntityError),
    (429, "rate_limit_exceeded", 429, "rate_limit_error", anthropic.RateLimitError),
    (
        429,
        "insufficient_quota",
        402,
        "billing_error",
        sdk_class("PaymentRequiredError", anthropic.APIStatusError),
    ),
    (500, None, 500, "api_error", anthropic.InternalServerError),
    (502, "upstream_error", 502, "api_error", anthropic.InternalServerError),
    (503, "upstream_overloaded", 529, "overloaded_error", anthropic.OverloadedError),
    (
        504,
        "upstream_timeout",
        504,
        "timeout_error",
        sdk_class("GatewayTimeoutError", anthropic.InternalServerError),
    ),
]


@pytest.mark.parametrize(("status", "code", "expected_status", "kind", "exception"), STATUSES)
def test_error_envelope(
    status: int,
    code: str | None,
    expected_status: int,
    kind: str,
    exception: type[anthropic.APIStatusError],
) -> None:
    """Body, status and headers, and the typed exception the SDK raises for them."""
    error = GatewayError("what went wrong", status=status, code=code, headers={"retry-after": "7"})
    answer_status, body, headers = error_envelope(error)
    assert (answer_status, body) == (
        expected_status,
        {"type": "error", "error": {"type": kind, "message": "what went wrong"}},
    )
    assert headers == {"retry-after": "7"}
    assert events_of(error_event(error)) == [["error", body]]
    http = sdk_http()
    client = sdk_client(lambda request: http.Response(answer_status, json=body, headers=headers))
    with pytest.raises(exception) as caught:
        client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert type(caught.value) is exception
    assert caught.value.body == body


def test_status_outside_the_error_range_is_an_api_error() -> None:
    assert error_envelope(GatewayError("?", status=200))[:2] == (
        500,
        {"type": "error", "error": {"type": "api_error", "message": "?"}},
    )


def requests_sent(status: int, body: dict[str, Any]) -> int:
    """How many requests the SDK (allowed two retries) sends when the first one fails with `status`."""
    http = sdk_http()
    answer = from_completion(fixture("ingress_anthropic", "response", "text_end_turn")["completion"], MODEL)
    seen: list[object] = []

    def handler(request: Any) -> Any:
        seen.append(request)
        if len(seen) == 1:
            return http.Response(status, json=body, headers={"retry-after": "0"})
        return http.Response(200, json=answer)

    client = sdk_client(handler, max_retries=2)
    with contextlib.suppress(anthropic.APIStatusError):
        client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    return len(seen)


def test_overloaded_is_retried_and_out_of_credit_is_not() -> None:
    """503 becomes 529 so that Anthropic clients retry as they do for Anthropic; a 402 stops them."""
    overloaded = error_envelope(GatewayError("busy", status=503, code="upstream_overloaded"))
    assert requests_sent(overloaded[0], overloaded[1]) == 2
    quota = error_envelope(upstream_error("openai", 402, "out of credit"))
    assert requests_sent(quota[0], quota[1]) == 1


# -- the package --------------------------------------------------------------------------------------------


def test_public_names() -> None:
    assert sorted(ingress.__all__) == [
        "DROPPED_FIELDS",
        "MessagesStreamEncoder",
        "error_envelope",
        "error_event",
        "from_completion",
        "reasoning_effort",
        "stop_reason",
        "to_chat",
        "usage_of",
    ]
