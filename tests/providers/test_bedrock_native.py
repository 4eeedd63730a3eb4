"""Claude on Bedrock through InvokeModel, for the Messages door: the tables and translators of
`bedrock/_native.py`, and the provider against the fake Bedrock on loopback (SigV4 checked, InvokeModel's
rules enforced), including CountTokens for native and chat requests."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from asgi_llm_gateway.errors import GatewayError
from asgi_llm_gateway.eventstream import EventStreamDecoder, Frame
from asgi_llm_gateway.providers.bedrock import BedrockProvider, to_native
from asgi_llm_gateway.providers.bedrock._names import base_model_id
from asgi_llm_gateway.providers.bedrock._native import (
    ANTHROPIC_VERSION,
    BETAS,
    NativeStreamTranslator,
    bedrock_betas,
    converse_count_input,
    invoke_body,
    invoke_count_input,
)
from tests.fakes.anthropic import count_input
from tests.fakes.bedrock import (
    ACCESS_KEY,
    API_KEY,
    INVOKE_BETAS,
    REGION,
    SECRET_KEY,
    FakeBedrock,
    chunk_frame,
    claude_signature,
    event_frame,
    exception_frame,
    isolate_aws_environment,
)
from tests.support.server import serve

PROFILE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
BASE = "anthropic.claude-sonnet-4-5-20250929-v1:0"
CLAUDE_CODE_BETAS = [
    "claude-code-20250219",
    "oauth-2025-04-20",
    "interleaved-thinking-2025-05-14",
    "context-management-2025-06-27",
    "prompt-caching-scope-2026-01-05",
    "advanced-tool-use-2025-11-20",
    "effort-2025-11-24",
    "fast-mode-2026-02-01",
]
WEATHER = {
    "name": "get_weather",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "cache_control": {"type": "ephemeral", "ttl": "1h"},
}


def body(text: str = "Hello there", **extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 2000,
        "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}],
        **extra,
    }


def frame(data: bytes) -> Frame:
    return next(EventStreamDecoder().feed(data))


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_aws_environment(monkeypatch, tmp_path)


# -- tables -------------------------------------------------------------------------------------------------


def test_betas_keep_what_bedrock_knows_and_translate_tool_search() -> None:
    assert bedrock_betas(CLAUDE_CODE_BETAS) == [
        "interleaved-thinking-2025-05-14",
        "context-management-2025-06-27",
        "tool-search-tool-2025-10-19",
        "effort-2025-11-24",
    ]
    assert bedrock_betas(["tool-search-tool-2025-10-19", "advanced-tool-use-2025-11-20"]) == [
        "tool-search-tool-2025-10-19"
    ]
    assert bedrock_betas([" context-1m-2025-08-07 ,unknown-beta-2030-01-01"]) == ["context-1m-2025-08-07"]


def test_every_value_the_table_forwards_is_one_the_fake_service_accepts() -> None:
    assert set(BETAS.values()) <= INVOKE_BETAS


def test_invoke_body_keeps_the_messages_fields_and_drops_what_invoke_model_refuses() -> None:
    client = body(
        stream=True,
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        temperature=0.3,
        top_k=5,
        stop_sequences=["END"],
        tools=[WEATHER],
        tool_choice={"type": "auto"},
        thinking={"type": "adaptive"},
        metadata={"user_id": "u-1"},
        output_config={"effort": "low"},
        service_tier="auto",
        container="container_1",
        mcp_servers=[{"type": "url", "url": "https://mcp.example", "name": "x"}],
        speed="fast",
        inference_geo="us",
        cache_control={"type": "ephemeral"},
        anthropic_beta=["smuggled"],
        anthropic_version="2026-10-21",
    )
    before = copy.deepcopy(client)
    native = invoke_body(client, CLAUDE_CODE_BETAS)
    assert client == before
    kept = ("max_tokens", "messages", "system", "temperature", "top_k", "stop_sequences", "tools")
    kept += ("tool_choice", "thinking", "metadata", "output_config")
    assert native == {
        "anthropic_version": ANTHROPIC_VERSION,
        "anthropic_beta": bedrock_betas(CLAUDE_CODE_BETAS),
        **{key: before[key] for key in kept},
    }
    assert "anthropic_beta" not in invoke_body(body(), ["claude-code-20250219"])


def test_context_management_needs_its_beta_and_keeps_only_edits_bedrock_can_take() -> None:
    edits = [{"type": "clear_thinking_20251015"}, {"type": "compact_20260112"}, {"type": "clear_future_2030"}]
    client = body(context_management={"edits": edits})
    assert "context_management" not in invoke_body(client, [])
    assert invoke_body(client, ["context-management-2025-06-27"])["context_management"] == {
        "edits": edits[:1]
    }
    both = invoke_body(client, ["context-management-2025-06-27", "compact-2026-01-12"])
    assert both["context_management"] == {"edits": edits[:2]}
    only_future = body(context_management={"edits": edits[2:]})
    assert "context_management" not in invoke_body(only_future, ["context-management-2025-06-27"])


def test_cache_control_keeps_type_and_ttl_only_and_the_client_body_is_untouched() -> None:
    scoped = {"type": "ephemeral", "ttl": "5m", "scope": "global"}
    result_block = {"type": "text", "text": "sunny", "cache_control": scoped}
    client = body(
        system=[{"type": "text", "text": "S", "cache_control": scoped}],
        tools=[{**WEATHER, "cache_control": scoped}],
    )
    client["messages"] += [
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t1", "name": "get_weather", "input": {}}],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": [result_block]},
                {"type": "text", "text": "ok", "cache_control": {"type": "ephemeral"}},
            ],
        },
    ]
    before = copy.deepcopy(client)
    native = invoke_body(client, [])
    assert client == before
    plain = {"type": "ephemeral", "ttl": "5m"}
    assert native["system"][0]["cache_control"] == plain
    assert native["tools"][0]["cache_control"] == plain
    assert native["messages"][2]["content"][0]["content"][0]["cache_control"] == plain
    assert native["messages"][2]["content"][1] is client["messages"][2]["content"][1]  # unchanged: not copied
    assert native["messages"][0] is client["messages"][0]


def test_system_turns_join_the_top_level_system_and_the_turns_around_them_merge() -> None:
    use = {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {}}
    result = {"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}
    reminder = [{"type": "text", "text": "Mind the tests.", "cache_control": {"type": "ephemeral"}}]
    client = body(system="Be brief.")
    client["messages"] += [
        {"role": "assistant", "content": [use]},
        {"role": "user", "content": [result]},
        {"role": "system", "content": reminder},
        {"role": "user", "content": "go on"},
    ]
    before = copy.deepcopy(client)
    native = invoke_body(client, [])
    assert client == before
    assert native["system"] == [{"type": "text", "text": "Be brief."}, *reminder]
    assert [m["role"] for m in native["messages"]] == ["user", "assistant", "user"]
    assert native["messages"][2]["content"] == [result, {"type": "text", "text": "go on"}]
    plain = body(system="Be brief.")
    assert invoke_body(plain, [])["system"] == "Be brief."  # nothing to fold: left as sent


def test_a_counted_body_gets_the_max_tokens_invoke_model_requires() -> None:
    counted = {"model": "x", "messages": body()["messages"]}
    assert invoke_body(counted, [], count=True)["max_tokens"] == 1
    thinking = {**counted, "thinking": {"type": "enabled", "budget_tokens": 2048}}
    assert invoke_body(thinking, [], count=True)["max_tokens"] == 2049
    assert invoke_body(body(), [], count=True)["max_tokens"] == 2000


def test_count_inputs() -> None:
    native = invoke_body(body(), [])
    encoded = invoke_count_input(native)["input"]["invokeModel"]["body"]
    assert json.loads(base64.b64decode(encoded)) == native
    converse = to_native(
        {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}]}, BASE
    )
    counted = converse_count_input({**converse.body, "inferenceConfig": {"maxTokens": 5}})["input"][
        "converse"
    ]
    assert set(counted) == {"messages", "system"} and counted["system"] == [{"text": "S"}]


@pytest.mark.parametrize(
    ("model", "base"),
    [
        (PROFILE, BASE),
        ("global.anthropic.claude-opus-4-6-v1", "anthropic.claude-opus-4-6-v1"),
        (f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/{PROFILE}", BASE),
        (BASE, None),
        ("arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123", None),
        ("amazon.nova-pro-v1:0", None),
    ],
)
def test_base_model_id(model: str, base: str | None) -> None:
    assert base_model_id(model) == base


@pytest.mark.parametrize(
    ("model", "native"),
    [
        (PROFILE, True),
        (BASE, True),
        (f"arn:aws:bedrock:us-east-1::foundation-model/{BASE}", True),
        ("amazon.nova-pro-v1:0", False),
        ("meta.llama3-70b-instruct-v1:0", False),
        ("arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123", False),
    ],
)
def test_speaks_messages_for_claude_ids_only(model: str, native: bool) -> None:
    assert BedrockProvider(api_key=API_KEY, region=REGION).speaks_messages(model) is native


# -- the stream translator ----------------------------------------------------------------------------------

EVENTS = [
    {"type": "message_start", "message": {"id": "msg_1", "content": [], "usage": {"input_tokens": 3}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "c2ln"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 1}},
    {"type": "message_stop", "amazon-bedrock-invocationMetrics": {"inputTokenCount": 3}},
]


def test_translator_reads_the_anthropic_event_in_each_chunk() -> None:
    translator = NativeStreamTranslator()
    out = [event for i, data in enumerate(EVENTS) for event in translator.feed(frame(chunk_frame(data, i)))]
    assert out == [*EVENTS[:-1], {"type": "message_stop"}]  # Bedrock's metrics are not Anthropic's protocol
    assert translator.done and translator.end() == []


def test_translator_skips_other_event_types_and_fails_on_bad_chunks() -> None:
    translator = NativeStreamTranslator()
    assert translator.feed(frame(event_frame("somethingNew", {"x": 1}))) == []
    with pytest.raises(GatewayError) as caught:
        translator.feed(frame(event_frame("chunk", {"bytes": "not base64!"})))
    assert (caught.value.status, caught.value.code) == (502, "upstream_bad_response")


@pytest.mark.parametrize(
    ("exception", "status"),
    [("throttlingException", 429), ("modelStreamErrorException", 502), ("serviceUnavailableException", 503)],
)
def test_translator_raises_exception_frames(exception: str, status: int) -> None:
    translator = NativeStreamTranslator(secrets=["s3cr3t"])
    translator.feed(frame(chunk_frame(EVENTS[0], 0)))
    with pytest.raises(GatewayError) as caught:
        translator.feed(frame(exception_frame(exception, "no s3cr3t here")))
    assert caught.value.status == status and "s3cr3t" not in caught.value.message


def test_translator_end_before_message_stop_is_incomplete() -> None:
    translator = NativeStreamTranslator()
    translator.feed(frame(chunk_frame(EVENTS[0], 0)))
    with pytest.raises(GatewayError) as caught:
        translator.end()
    assert (caught.value.status, caught.value.code) == (502, "upstream_stream_incomplete")


# -- through the fake Bedrock -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[FakeBedrock, str]]:
    fake = FakeBedrock()
    with serve(fake.app) as url:
        yield fake, url


@pytest.fixture
def fake(upstream: tuple[FakeBedrock, str]) -> FakeBedrock:
    upstream[0].requests.clear()
    return upstream[0]


@pytest.fixture
async def provider(upstream: tuple[FakeBedrock, str]) -> AsyncIterator[BedrockProvider]:
    bedrock = BedrockProvider(
        base_url=upstream[1], region=REGION, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY
    )
    yield bedrock
    await bedrock.aclose()


async def events_of(stream: AsyncIterator[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [event async for batch in stream for event in batch]


@pytest.mark.anyio
async def test_create_through_invoke_model(provider: BedrockProvider, fake: FakeBedrock) -> None:
    # 5m after the tools' 5m breakpoint: a 1h one after it is refused (as the API refuses it).
    system = [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral", "ttl": "5m"}}]
    client = body(
        system=system,
        tools=[WEATHER],
        thinking={"type": "adaptive"},
        context_management={"edits": [{"type": "clear_thinking_20251015"}]},
        service_tier="auto",
    )
    message = await provider.messages(client, PROFILE, CLAUDE_CODE_BETAS)
    sent = fake.requests[-1]
    assert (sent.operation, sent.model) == ("invoke", PROFILE)
    assert sent.body == invoke_body(client, CLAUDE_CODE_BETAS)
    assert sent.body["system"] == system and sent.body["tools"] == [WEATHER]  # cache_control intact
    assert sent.headers["authorization"].startswith("AWS4-HMAC-SHA256 ")
    thinking, text = message["content"]
    assert thinking["type"] == "thinking"
    assert thinking["signature"] == claude_signature(PROFILE, thinking["thinking"])  # the service's own key
    assert text == {"type": "text", "text": "Hello there"}


@pytest.mark.anyio
async def test_system_turns_are_folded_so_invoke_model_takes_them(
    provider: BedrockProvider, fake: FakeBedrock
) -> None:
    client = body("first")
    client["messages"] += [
        {"role": "assistant", "content": "ok"},
        {"role": "system", "content": "From now on, answer in French."},
        {"role": "user", "content": "second"},
    ]
    message = await provider.messages(client, PROFILE, [])
    assert fake.requests[-1].body["system"] == [{"type": "text", "text": "From now on, answer in French."}]
    assert message["content"] == [{"type": "text", "text": "second"}]


@pytest.mark.anyio
async def test_create_with_a_bedrock_api_key(upstream: tuple[FakeBedrock, str]) -> None:
    bedrock = BedrockProvider(api_key=API_KEY, base_url=upstream[1], region=REGION)
    try:
        message = await bedrock.messages(body(), BASE, [])
    finally:
        await bedrock.aclose()
    assert upstream[0].requests[-1].headers["authorization"] == f"Bearer {API_KEY}"
    assert message["content"] == [{"type": "text", "text": "Hello there"}]


@pytest.mark.anyio
async def test_stream_hands_on_thinking_signatures_and_tool_use(
    provider: BedrockProvider, fake: FakeBedrock
) -> None:
    client = body("get_weather(city=Paris)", tools=[WEATHER], thinking={"type": "adaptive"})
    events = await events_of(provider.messages_batches(client, PROFILE, CLAUDE_CODE_BETAS))
    assert fake.requests[-1].operation == "invoke-with-response-stream"
    assert [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"] == [
        "thinking",
        "text",
        "tool_use",
    ]
    deltas = [e["delta"] for e in events if e["type"] == "content_block_delta"]
    thought = "".join(d.get("thinking", "") for d in deltas)
    assert {"type": "signature_delta", "signature": claude_signature(PROFILE, thought)} in deltas
    partial = "".join(d["partial_json"] for d in deltas if d["type"] == "input_json_delta")
    assert json.loads(partial) == {"city": "Paris"}
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    assert events[-1] == {"type": "message_stop"}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("prompt", "status", "code"),
    [
        ("FAIL STREAM throttlingException", 429, None),
        ("FAIL STREAM modelStreamErrorException", 502, None),
        ("CUT STREAM", 502, "upstream_stream_incomplete"),
    ],
)
async def test_stream_failures_raise_after_the_events_sent(
    provider: BedrockProvider, prompt: str, status: int, code: str | None
) -> None:
    events: list[dict[str, Any]] = []
    with pytest.raises(GatewayError) as caught:
        async for batch in provider.messages_batches(body(prompt), PROFILE, []):
            events.extend(batch)
    assert [e["type"] for e in events[:2]] == ["message_start", "content_block_start"]
    assert caught.value.status == status
    if code is not None:
        assert caught.value.code == code


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("prompt", "status"), [("FAIL ThrottlingException", 429), ("FAIL ModelNotReadyException", 503)]
)
async def test_exceptions_answering_invoke_model(provider: BedrockProvider, prompt: str, status: int) -> None:
    for call in (
        provider.messages(body(prompt), PROFILE, []),
        events_of(provider.messages_batches(body(prompt), PROFILE, [])),
    ):
        with pytest.raises(GatewayError) as caught:
            await call
        assert caught.value.status == status


@pytest.mark.anyio
async def test_other_models_are_not_native(provider: BedrockProvider, fake: FakeBedrock) -> None:
    with pytest.raises(GatewayError) as caught:
        await provider.messages(body(), "amazon.nova-pro-v1:0", [])
    assert caught.value.code == "messages_not_native"
    with pytest.raises(GatewayError):
        await provider.count_message_tokens(body(), "amazon.nova-pro-v1:0", [])
    assert (
        await provider.count_tokens({"messages": [{"role": "user", "content": "hi"}]}, "amazon.nova-pro-v1:0")
        is None
    )
    assert fake.requests == []


@pytest.mark.anyio
async def test_count_message_tokens_falls_back_to_the_foundation_model(
    provider: BedrockProvider, fake: FakeBedrock
) -> None:
    counted = {"model": "x", "messages": body()["messages"], "system": "Be brief.", "tools": [WEATHER]}
    tokens = await provider.count_message_tokens(counted, PROFILE, CLAUDE_CODE_BETAS)
    refused, answered = fake.requests
    assert (refused.operation, refused.model) == ("count-tokens", PROFILE)  # the fake refuses profiles
    assert (answered.operation, answered.model) == ("count-tokens", BASE)
    sent = json.loads(base64.b64decode(answered.body["input"]["invokeModel"]["body"]))
    assert sent == invoke_body(counted, CLAUDE_CODE_BETAS, count=True)
    assert tokens == count_input({**sent, "model": "claude"})
    fake.requests.clear()
    assert await provider.count_message_tokens(counted, BASE, []) == tokens
    assert len(fake.requests) == 1


@pytest.mark.anyio
async def test_count_errors_that_are_not_about_the_profile_stand(provider: BedrockProvider) -> None:
    bad = {"model": "x", "messages": [{"role": "assistant", "content": "first"}]}
    with pytest.raises(GatewayError) as caught:
        await provider.count_message_tokens(bad, BASE, [])
    assert caught.value.status == 400 and "user" in caught.value.message


@pytest.mark.anyio
async def test_count_tokens_of_a_chat_request_through_converse(
    provider: BedrockProvider, fake: FakeBedrock
) -> None:
    chat: dict[str, Any] = {
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}]
    }
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER["input_schema"]}}]
    bare = await provider.count_tokens(chat, BASE)
    with_tools = await provider.count_tokens({**chat, "tools": tools}, BASE)
    converse = fake.requests[-1].body["input"]["converse"]
    assert (
        converse == converse_count_input(to_native({**chat, "tools": tools}, BASE).body)["input"]["converse"]
    )
    assert bare is not None and with_tools is not None and with_tools > bare >= 4
