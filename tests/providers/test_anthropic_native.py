"""Anthropic Messages passed through natively (the Messages door with an Anthropic upstream): the pure pieces
(`anthropic/_native.py`), the contract's defaults, and the provider against the fake Anthropic on loopback,
which refuses what the real API refuses, so every success also proves the request was one Anthropic takes."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from asgi_llm_gateway.errors import GatewayError
from asgi_llm_gateway.providers.anthropic import AnthropicProvider, to_native
from asgi_llm_gateway.providers.anthropic._native import (
    NativeStreamTranslator,
    beta_values,
    count_body,
    native_body,
    native_headers,
)
from asgi_llm_gateway.providers.base import Provider
from asgi_llm_gateway.sse import ServerSentEvent
from tests.fakes.anthropic import KEY, FakeAnthropic, count_input, sign_thinking
from tests.support.server import serve

MODEL = "claude-sonnet-4-6"
BETAS = ["interleaved-thinking-2025-05-14", "context-management-2025-06-27", "claude-code-20250219"]
WEATHER = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "cache_control": {"type": "ephemeral"},
}


def body(text: str = "Hello there", **extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-code-alias",
        "max_tokens": 2000,
        "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}],
        **extra,
    }


def sse(name: str, data: Any) -> ServerSentEvent:
    return ServerSentEvent(data=json.dumps(data), event=name)


# -- pure pieces --------------------------------------------------------------------------------------------


def test_native_body_replaces_the_model_and_sets_stream_without_touching_the_client_body() -> None:
    client = body(
        stream=False, system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
    )
    before = copy.deepcopy(client)
    streamed = native_body(client, MODEL, stream=True)
    assert streamed == {**before, "model": MODEL, "stream": True}
    plain = native_body(client, MODEL, stream=False)
    assert "stream" not in plain and plain["model"] == MODEL and plain["system"] == before["system"]
    assert client == before


def test_count_body_keeps_only_what_count_tokens_takes() -> None:
    create = body(
        stream=True,
        temperature=0.5,
        metadata={"user_id": "u"},
        stop_sequences=["END"],
        system="Be brief.",
        tools=[WEATHER],
        tool_choice={"type": "auto"},
        thinking={"type": "adaptive"},
        output_config={"effort": "low"},
    )
    assert count_body(create, MODEL) == {
        "model": MODEL,
        "messages": create["messages"],
        "system": "Be brief.",
        "tools": [WEATHER],
        "tool_choice": {"type": "auto"},
        "thinking": {"type": "adaptive"},
        "output_config": {"effort": "low"},
    }


def test_beta_values_are_trimmed_split_and_deduplicated() -> None:
    assert beta_values([" a-1 ", "b-2,c-3", "", "a-1"]) == ["a-1", "b-2", "c-3"]
    assert native_headers(body(), ["a-1", "b-2"], "2023-06-01") == {"anthropic-beta": "a-1,b-2"}
    assert native_headers(body(), [], "2023-06-01") is None
    assert native_headers(body(), [" "], "2023-06-01") is None


def test_system_turns_get_the_version_that_takes_them() -> None:
    turns = body()
    turns["messages"] += [
        {"role": "assistant", "content": "ok"},
        {"role": "system", "content": "Now be brief."},
        {"role": "user", "content": "go"},
    ]
    assert native_headers(turns, [], "2023-06-01") == {"anthropic-version": "2026-10-21"}
    assert native_headers(turns, [], "2026-10-21") is None  # the provider's own version takes them
    beta = ["mid-conversation-system-2026-04-07"]  # Claude Code's way: the beta, under 2023-06-01
    assert native_headers(turns, beta, "2023-06-01") == {"anthropic-beta": beta[0]}


THINKING_STREAM = [
    ("message_start", {"type": "message_start", "message": {"id": "msg_1", "content": [], "usage": {}}}),
    ("ping", {"type": "ping"}),
    (
        "content_block_start",
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
    ),
    (
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Hmm"}},
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": "c2ln"},
        },
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    (
        "message_delta",
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}},
    ),
    ("message_stop", {"type": "message_stop"}),
]


def test_translator_hands_on_events_unchanged_drops_ping_and_stops_at_message_stop() -> None:
    translator = NativeStreamTranslator()
    out = [event for name, data in THINKING_STREAM for event in translator.feed(sse(name, data))]
    assert out == [data for name, data in THINKING_STREAM if name != "ping"]
    assert translator.done and translator.end() == []
    assert translator.feed(sse("content_block_stop", {"type": "content_block_stop", "index": 9})) == []


def test_translator_passes_unknown_event_types_and_fills_a_missing_type() -> None:
    translator = NativeStreamTranslator()
    translator.feed(sse(*THINKING_STREAM[0]))
    assert translator.feed(sse("future_event", {"x": 1})) == [{"type": "future_event", "x": 1}]


@pytest.mark.parametrize(
    ("events", "status", "code"),
    [
        (
            [("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})],
            503,
            None,
        ),
        ([("error", {"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}})], 429, None),
        ([THINKING_STREAM[2]], 502, "upstream_bad_response"),  # a block before message_start
        ([("message_start", "not json at all")], 502, "upstream_bad_response"),
        ([("message_start", [1, 2])], 502, "upstream_bad_response"),
    ],
)
def test_translator_failures(events: list[tuple[str, Any]], status: int, code: str | None) -> None:
    translator = NativeStreamTranslator()
    with pytest.raises(GatewayError) as caught:
        for name, data in events:
            item = ServerSentEvent(data=data, event=name) if isinstance(data, str) else sse(name, data)
            translator.feed(item)
    assert caught.value.status == status
    if code is not None:
        assert caught.value.code == code


def test_translator_end_without_message_stop_is_incomplete() -> None:
    translator = NativeStreamTranslator()
    for name, data in THINKING_STREAM[:4]:
        translator.feed(sse(name, data))
    with pytest.raises(GatewayError) as caught:
        translator.end()
    assert (caught.value.status, caught.value.code) == (502, "upstream_stream_incomplete")


class Plain(Provider):
    kind = "plain"

    async def complete(self, request: Any, model: str) -> dict[str, Any]:
        raise NotImplementedError

    def stream(self, request: Any, model: str) -> AsyncIterator[dict[str, Any]]:
        raise NotImplementedError


@pytest.mark.anyio
async def test_contract_defaults_say_not_here() -> None:
    provider = Plain()
    assert provider.speaks_messages("m") is False
    assert await provider.count_tokens({"messages": []}, "m") is None
    for call in (
        lambda: provider.messages(body(), "m", []),
        lambda: provider.count_message_tokens(body(), "m", []),
    ):
        with pytest.raises(GatewayError) as caught:
            await call()
        assert (caught.value.status, caught.value.code) == (500, "messages_not_native")
    with pytest.raises(GatewayError):
        provider.messages_batches(body(), "m", [])


# -- through the fake Anthropic -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[FakeAnthropic, str]]:
    fake = FakeAnthropic()
    with serve(fake) as url:
        yield fake, url


@pytest.fixture
def fake(upstream: tuple[FakeAnthropic, str]) -> FakeAnthropic:
    upstream[0].requests.clear()
    return upstream[0]


@pytest.fixture
async def provider(upstream: tuple[FakeAnthropic, str]) -> AsyncIterator[AnthropicProvider]:
    anthropic = AnthropicProvider(api_key=KEY, base_url=upstream[1])
    yield anthropic
    await anthropic.aclose()


async def events_of(stream: AsyncIterator[list[Any]]) -> list[dict[str, Any]]:
    """The events, text deltas relayed as the upstream's bytes read as the client reads them."""
    return [event async for batch in stream for item in batch for event in _expanded(item)]


def _expanded(item: Any) -> list[dict[str, Any]]:
    if not isinstance(item, bytes):
        return [item]
    events = [event.split(b"\ndata: ", 1) for event in item.split(b"\n\n") if event]
    assert all(name == b"event: content_block_delta" for name, _ in events)
    return [json.loads(data) for _, data in events]


@pytest.mark.anyio
async def test_create_passes_the_request_through_intact(
    provider: AnthropicProvider, fake: FakeAnthropic
) -> None:
    # 5m after the tools' 5m breakpoint: a 1h one after it is refused (as the API refuses it).
    system = [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral", "ttl": "5m"}}]
    client = body(
        system=system,
        tools=[WEATHER],
        thinking={"type": "adaptive"},
        output_config={"effort": "medium"},
        context_management={"edits": [{"type": "clear_thinking_20251015"}]},
    )
    before = copy.deepcopy(client)
    message = await provider.messages(client, MODEL, BETAS)
    assert client == before
    sent = fake.requests[-1]
    assert sent.body == {**before, "model": MODEL}  # cache_control, thinking, context_management intact
    assert sent.headers["anthropic-beta"] == ",".join(BETAS)
    assert sent.headers["x-api-key"] == KEY and sent.headers["anthropic-version"] == "2023-06-01"
    assert message["type"] == "message" and message["model"] == MODEL
    thinking, text = message["content"]
    assert thinking["type"] == "thinking"
    assert thinking["signature"] == sign_thinking(MODEL, thinking["thinking"])
    assert text == {"type": "text", "text": "Hello there"}


@pytest.mark.anyio
async def test_create_without_betas_sends_no_beta_header_and_the_upstream_refuses_beta_fields(
    provider: AnthropicProvider, fake: FakeAnthropic
) -> None:
    await provider.messages(body(), MODEL, [])
    assert "anthropic-beta" not in fake.requests[-1].headers
    with pytest.raises(GatewayError) as caught:
        await provider.messages(body(context_management={"edits": []}), MODEL, [])
    assert caught.value.status == 400 and "context_management" in caught.value.message


@pytest.mark.anyio
async def test_system_turns_reach_anthropic_intact(provider: AnthropicProvider, fake: FakeAnthropic) -> None:
    client = body("first")
    client["messages"] += [
        {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
        {"role": "system", "content": "From now on, answer in French."},
        {"role": "user", "content": [{"type": "text", "text": "second"}]},
    ]
    message = await provider.messages(client, MODEL, [])
    assert fake.requests[-1].body["messages"] == client["messages"]
    assert fake.requests[-1].headers["anthropic-version"] == "2026-10-21"
    assert message["content"] == [{"type": "text", "text": "second"}]
    await provider.messages(client, MODEL, ["mid-conversation-system-2026-04-07"])
    assert fake.requests[-1].headers["anthropic-version"] == "2023-06-01"
    await provider.messages(body(), MODEL, [])
    assert fake.requests[-1].headers["anthropic-version"] == "2023-06-01"


@pytest.mark.anyio
async def test_stream_hands_on_thinking_signatures_and_text(
    provider: AnthropicProvider, fake: FakeAnthropic
) -> None:
    events = await events_of(
        provider.messages_batches(body("one two", thinking={"type": "adaptive"}), MODEL, BETAS)
    )
    assert fake.requests[-1].body["stream"] is True
    blocks = [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"]
    assert blocks == ["thinking", "text"]
    kinds = [e["type"] for e in events if e["type"] != "content_block_delta"]
    assert kinds == [
        "message_start",
        "content_block_start",
        "content_block_stop",
        "content_block_start",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]  # ping dropped
    deltas = [e["delta"] for e in events if e["type"] == "content_block_delta"]
    thought = "".join(d.get("thinking", "") for d in deltas)
    assert thought == "The user wrote: one two"
    assert {"type": "signature_delta", "signature": sign_thinking(MODEL, thought)} in deltas
    assert "".join(d.get("text", "") for d in deltas) == "one two"
    assert events[-2]["delta"]["stop_reason"] == "end_turn"


@pytest.mark.anyio
async def test_stream_of_a_tool_call(provider: AnthropicProvider) -> None:
    events = await events_of(
        provider.messages_batches(body("get_weather(city=Paris)", tools=[WEATHER]), MODEL, [])
    )
    starts = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    assert starts[-1]["type"] == "tool_use" and starts[-1]["name"] == "get_weather"
    partial = "".join(
        e["delta"]["partial_json"] for e in events if e.get("delta", {}).get("type") == "input_json_delta"
    )
    assert json.loads(partial) == {"city": "Paris"}
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("prompt", "status", "code"),
    [
        ("FAIL STREAM overloaded_error", 503, None),
        ("FAIL STREAM api_error", 502, None),
        ("CUT STREAM", 502, "upstream_stream_incomplete"),
    ],
)
async def test_stream_failures_raise_after_the_events_sent(
    provider: AnthropicProvider, prompt: str, status: int, code: str | None
) -> None:
    events: list[dict[str, Any]] = []
    with pytest.raises(GatewayError) as caught:
        async for batch in provider.messages_batches(body(prompt), MODEL, []):
            events.extend(batch)
    assert [e["type"] for e in events[:2]] == ["message_start", "content_block_start"]
    assert caught.value.status == status
    if code is not None:
        assert caught.value.code == code


@pytest.mark.anyio
@pytest.mark.parametrize(("prompt", "status"), [("FAIL 429", 429), ("FAIL 529", 503), ("FAIL 400", 400)])
async def test_http_errors_keep_the_shared_mapping(
    provider: AnthropicProvider, prompt: str, status: int
) -> None:
    for call in (
        provider.messages(body(prompt), MODEL, []),
        events_of(provider.messages_batches(body(prompt), MODEL, [])),
    ):
        with pytest.raises(GatewayError) as caught:
            await call
        assert caught.value.status == status
        if status != 400:
            assert caught.value.headers["retry-after"] == "0"


@pytest.mark.anyio
async def test_count_message_tokens_sends_only_count_fields(
    provider: AnthropicProvider, fake: FakeAnthropic
) -> None:
    create = body(
        system="Be brief.", tools=[WEATHER], stream=True, temperature=0.2, metadata={"user_id": "u"}
    )
    tokens = await provider.count_message_tokens(create, MODEL, BETAS)
    sent = fake.requests[-1]
    assert sent.path == "/v1/messages/count_tokens"
    assert sent.body == count_body(create, MODEL)
    assert sent.headers["anthropic-beta"] == ",".join(BETAS)
    assert tokens == count_input(sent.body)


@pytest.mark.anyio
async def test_count_tokens_of_a_chat_request_includes_system_and_tools(
    provider: AnthropicProvider, fake: FakeAnthropic
) -> None:
    chat: dict[str, Any] = {
        "model": "x",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}],
    }
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER["input_schema"]}}]
    bare = await provider.count_tokens(chat, MODEL)
    with_tools = await provider.count_tokens({**chat, "tools": tools}, MODEL)
    assert fake.requests[-1].body == count_body(to_native({**chat, "tools": tools}, MODEL).body, MODEL)
    assert bare is not None and with_tools is not None and with_tools > bare > 2
