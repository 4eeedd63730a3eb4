"""The official `anthropic` SDK → gateway `/v1/messages` (uvicorn, loopback) → every kind of upstream.

Behind one gateway: the offline echo provider, a fake OpenAI, a fake Gemini and a fake Bedrock (translated
through the canonical chat form) and a fake Anthropic (native: passed through untouched). Each fake speaks
its provider's native wire format and rejects what the real API rejects, so every answer here also proves
the gateway sent a request that provider would accept.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import pytest

from asgi_llm_gateway import UsageRecord
from tests.fakes import openai as fake_openai
from tests.support.upstreams import gateway_over_every_upstream

KEY = "sk-gw-developer-0001"
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@dataclass(frozen=True)
class Upstream:
    model: str
    #: Whether the upstream counts tokens itself (else the gateway estimates, and says so).
    counts: bool
    #: Whether the gateway talks Messages to it natively (no translation).
    native: bool


UPSTREAMS = {
    "echo": Upstream("echo/echo-1", counts=False, native=False),
    "openai": Upstream("openai/gpt-4.1", counts=False, native=False),
    "gemini": Upstream("gemini/gemini-3-flash", counts=True, native=False),
    # Bedrock's CountTokens serves Claude models only
    "bedrock-llama": Upstream("bedrock/meta.llama3-1-70b-instruct-v1:0", counts=False, native=False),
    "bedrock-claude": Upstream(
        "bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0", counts=True, native=True
    ),
    "anthropic": Upstream("claude/claude-sonnet-4-5", counts=True, native=True),
}


@dataclass
class Stack:
    url: str
    fakes: dict[str, Any]
    usage: list[UsageRecord]

    def client(self, key: str = KEY) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.url, api_key=key, max_retries=0)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with gateway_over_every_upstream(
        {KEY: "developer"}, {"smart": ["claude/claude-sonnet-4-5", "openai/gpt-4.1"]}
    ) as served:
        yield Stack(served.url, served.fakes, served.usage)


@pytest.fixture(params=list(UPSTREAMS))
def upstream(request: pytest.FixtureRequest) -> Upstream:
    return UPSTREAMS[request.param]


def ask(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def text_of(message: Any) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


def test_create(stack: Stack, upstream: Upstream) -> None:
    message = stack.client().messages.create(
        model=upstream.model, max_tokens=200, system="Be brief.", messages=ask("Hello there")
    )
    assert message.type == "message" and message.role == "assistant"
    assert message.model == upstream.model
    assert "Hello there" in text_of(message)
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0


def test_stream_with_the_sdk_helper(stack: Stack, upstream: Upstream) -> None:
    with stack.client().messages.stream(
        model=upstream.model, max_tokens=200, messages=ask("Hello streaming world")
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "content_block_start" in kinds and "message_delta" in kinds
    assert "Hello streaming world" in text_of(final)
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0
    assert final.model == upstream.model


def test_tool_round_trip(stack: Stack, upstream: Upstream) -> None:
    client = stack.client()
    messages: list[Any] = ask("What is the weather in Paris? Use get_weather.")
    first = client.messages.create(model=upstream.model, max_tokens=300, tools=[WEATHER], messages=messages)
    assert first.stop_reason == "tool_use"  # whenever the answer holds tool calls
    [call] = [block for block in first.content if block.type == "tool_use"]
    assert call.name == "get_weather" and isinstance(call.input, dict)
    messages += [
        {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in first.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18 degrees"}],
        },
    ]
    second = client.messages.create(model=upstream.model, max_tokens=300, tools=[WEATHER], messages=messages)
    assert second.stop_reason == "end_turn"
    assert "18 degrees" in text_of(second)


def test_streamed_tool_call(stack: Stack, upstream: Upstream) -> None:
    with stack.client().messages.stream(
        model=upstream.model,
        max_tokens=300,
        tools=[WEATHER],
        messages=ask("Weather in Oslo? Use get_weather."),
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    [call] = [block for block in final.content if block.type == "tool_use"]
    assert call.name == "get_weather" and isinstance(call.input, dict)


def test_count_tokens(stack: Stack, upstream: Upstream) -> None:
    raw = stack.client().messages.with_raw_response.count_tokens(
        model=upstream.model, system="Be brief.", tools=[WEATHER], messages=ask("How many tokens is this?")
    )
    assert raw.parse().input_tokens > 0
    assert raw.headers["x-llm-gateway-token-count"] == ("upstream" if upstream.counts else "estimate")


def test_bad_key_is_an_authentication_error(stack: Stack) -> None:
    with pytest.raises(anthropic.AuthenticationError) as caught:
        stack.client(key="sk-wrong").messages.create(model="echo/echo-1", max_tokens=10, messages=ask("hi"))
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": caught.value.body["error"]["message"]},
    }  # type: ignore[index]


def test_unknown_model_is_not_found(stack: Stack) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        stack.client().messages.create(model="nowhere/model", max_tokens=10, messages=ask("hi"))
    assert caught.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"model": "echo/echo-1", "messages": [{"role": "user", "content": "hi"}]}, "max_tokens"),
        ({"model": "echo/echo-1", "max_tokens": 5, "messages": [{"role": "robot", "content": "hi"}]}, "role"),
        ({"model": "echo/echo-1", "max_tokens": "many", "messages": []}, "max_tokens"),
    ],
)
def test_invalid_bodies_get_anthropics_envelope_and_never_reach_an_upstream(
    stack: Stack, body: dict[str, Any], where: str
) -> None:
    response = httpx.post(stack.url + "/v1/messages?beta=true", json=body, headers={"x-api-key": KEY})
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert where in error["error"]["message"]


def test_invalid_json_gets_anthropics_envelope(stack: Stack) -> None:
    response = httpx.post(
        stack.url + "/v1/messages", content=b"{nope", headers={"authorization": f"Bearer {KEY}"}
    )
    assert response.status_code == 400 and response.json()["type"] == "error"


def test_models_in_anthropics_shape(stack: Stack) -> None:
    page = stack.client().models.list()
    ids = [model.id for model in page.data]
    assert "smart" in ids and all(model.type == "model" for model in page.data)
    assert stack.client().models.retrieve("smart").id == "smart"
    with pytest.raises(anthropic.NotFoundError):
        stack.client().models.retrieve("nowhere/model")


def test_openai_clients_still_get_openais_models_shape(stack: Stack) -> None:
    listed = httpx.get(stack.url + "/v1/models", headers={"authorization": f"Bearer {KEY}"}).json()
    assert listed["object"] == "list" and listed["data"][0]["object"] == "model"


def test_the_anthropic_upstream_sees_the_request_untouched(stack: Stack) -> None:
    fake = stack.fakes["claude"]
    system = [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
    stack.client().messages.create(
        model="claude/claude-sonnet-4-5",
        max_tokens=2000,
        system=system,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=ask("Hello native"),
        extra_headers={"anthropic-beta": "interleaved-thinking-2025-05-14"},
    )
    seen = fake.last
    assert seen["system"] == system and seen["model"] == "claude-sonnet-4-5"
    assert seen["thinking"] == {"type": "enabled", "budget_tokens": 1024}


def test_thinking_and_signatures_pass_through_a_native_stream(stack: Stack) -> None:
    with stack.client().messages.stream(
        model="claude/claude-sonnet-4-5",
        max_tokens=2000,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=ask("Think about this"),
    ) as stream:
        kinds = [(event.type, getattr(getattr(event, "delta", None), "type", None)) for event in stream]
        final = stream.get_final_message()
    assert ("content_block_delta", "thinking_delta") in kinds
    assert ("content_block_delta", "signature_delta") in kinds
    [thinking] = [block for block in final.content if block.type == "thinking"]
    assert thinking.signature  # replayable to the model that made it


def test_raw_events_of_a_translated_stream_are_anthropics_sequence(stack: Stack) -> None:
    body = {"model": "openai/gpt-4.1", "max_tokens": 50, "stream": True, "messages": ask("one two three")}
    with httpx.stream("POST", stack.url + "/v1/messages", json=body, headers={"x-api-key": KEY}) as response:
        lines = [line for line in response.iter_lines() if line]
    events = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    data = [json.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data: ")]
    assert events[:2] == ["message_start", "ping"] and events[-2:] == ["message_delta", "message_stop"]
    assert [d["type"] for d in data] == events
    assert data[-2]["delta"]["stop_reason"] == "end_turn" and data[-2]["usage"]["output_tokens"] > 0


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_metering_sees_every_messages_call(stack: Stack, upstream: Upstream, stream: bool) -> None:
    client = stack.client()
    if stream:
        with client.messages.stream(model=upstream.model, max_tokens=100, messages=ask("meter me")) as events:
            answer = events.get_final_message()
    else:
        answer = client.messages.create(model=upstream.model, max_tokens=100, messages=ask("meter me"))
    deadline = time.monotonic() + 3
    while not any(r.model == upstream.model and r.stream == stream for r in stack.usage[-3:]):
        assert time.monotonic() < deadline, "no usage record"
        time.sleep(0.02)
    record = next(r for r in reversed(stack.usage) if r.model == upstream.model and r.stream == stream)
    assert (record.endpoint, record.status, record.principal, record.target) == (
        "messages",
        200,
        "developer",
        upstream.model,
    )
    assert record.usage is not None and record.usage["completion_tokens"] == answer.usage.output_tokens


def test_a_cut_upstream_stream_is_an_anthropic_error_event_not_a_silent_stop(stack: Stack) -> None:
    stack.fakes["openai"].faults.append(fake_openai.Fault(None, cut_after=2))
    body = {
        "model": "openai/gpt-4.1",
        "max_tokens": 50,
        "stream": True,
        "messages": ask("one two three four"),
    }
    with httpx.stream("POST", stack.url + "/v1/messages", json=body, headers={"x-api-key": KEY}) as response:
        lines = [line for line in response.iter_lines() if line]
    events = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    assert events[0] == "message_start" and events[-1] == "error" and "message_stop" not in events
    error = json.loads(lines[-1].removeprefix("data: "))
    assert error["type"] == "error" and error["error"]["type"] == "api_error"
    stack.fakes["openai"].faults.append(fake_openai.Fault(None, cut_after=2))
    with (
        pytest.raises(anthropic.APIStatusError),
        stack.client().messages.stream(
            model="openai/gpt-4.1", max_tokens=50, messages=ask("one two three four")
        ) as stream,
    ):
        for _ in stream:
            pass


def test_an_upstream_overload_reaches_anthropic_clients_as_529(stack: Stack) -> None:
    overloaded = {"error": {"message": "busy", "type": "server_error", "param": None, "code": None}}
    stack.fakes["openai"].faults.append(fake_openai.Fault(503, overloaded))
    with pytest.raises(anthropic.APIStatusError) as caught:
        stack.client().messages.create(model="openai/gpt-4.1", max_tokens=10, messages=ask("hi"))
    assert caught.value.status_code == 529
    assert caught.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
