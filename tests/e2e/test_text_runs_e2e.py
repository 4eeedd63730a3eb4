"""A burst of text deltas from a translated provider, through the real SDKs: the fake Anthropic, Gemini and
Bedrock upstreams on loopback write each stream in one piece, so the gateway reads many deltas a read and
relays each run as events written around the upstream's own strings (`providers/runs.py`): chat chunks for
the openai SDK, text deltas for the anthropic SDK on the Messages door, `response.output_text.delta` events
for the openai SDK's Responses stream. Every client must still get every delta, in order, with usage as
asked, and a cut stream must still end in an error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anthropic as anthropic_sdk
import httpx
import openai
import pytest

from asgi_llm_gateway import Gateway
from asgi_llm_gateway.policy import Policy
from asgi_llm_gateway.providers import AnthropicProvider, BedrockProvider, GeminiProvider, OpenAIProvider
from tests.fakes import anthropic, bedrock, gemini
from tests.fakes import openai as fake_openai
from tests.support.server import serve

# Many words, non-ASCII letters (which the fakes write as `\u` escapes) and quotes.
PROMPT = " ".join(f'wörd{n} "q{n}"' for n in range(40))
MODELS = {
    "anthropic": "claude/claude-haiku-4-5",
    "gemini": "gemini/gemini-3-flash",
    "bedrock": "bedrock/anthropic.claude-3-haiku-20240307-v1:0",
}
#: Models the Messages door reaches through chat completions (a Claude model on Bedrock goes natively).
TRANSLATED_FOR_MESSAGES = {"gemini": MODELS["gemini"], "bedrock": "bedrock/amazon.nova-lite-v1:0"}


@contextmanager
def _gateway(
    claude: anthropic.FakeAnthropic, google: gemini.FakeGemini, aws: bedrock.FakeBedrock
) -> Iterator[str]:
    """The URL of a gateway in front of the three fakes, each served on loopback."""
    with serve(claude) as claude_url, serve(google.app()) as google_url, serve(aws.app) as aws_url:
        providers = {
            "claude": AnthropicProvider(api_key=anthropic.KEY, base_url=claude_url),
            "gemini": GeminiProvider(api_key=gemini.KEY, base_url=google_url),
            "bedrock": BedrockProvider(
                base_url=aws_url,
                region="us-east-1",
                aws_access_key_id=bedrock.ACCESS_KEY,
                aws_secret_access_key=bedrock.SECRET_KEY,
            ),
        }
        with serve(Gateway(providers=providers, policy=Policy(max_attempts=1))) as url:
            yield url


@pytest.fixture(scope="module")
def gateway_url() -> Iterator[str]:
    with _gateway(
        anthropic.FakeAnthropic(burst=True), gemini.FakeGemini(burst=True), bedrock.FakeBedrock(burst=True)
    ) as url:
        yield url


@pytest.mark.parametrize("include_usage", [False, True])
@pytest.mark.parametrize("provider", sorted(MODELS))
def test_a_burst_of_text_deltas_reaches_the_sdk_delta_for_delta(
    gateway_url: str, provider: str, include_usage: bool
) -> None:
    model = MODELS[provider]
    messages = [{"role": "user", "content": PROMPT}]
    options = {"stream_options": {"include_usage": True}} if include_usage else {}
    with openai.OpenAI(base_url=gateway_url + "/v1", api_key="any", max_retries=0) as client:
        whole = client.chat.completions.create(model=model, messages=messages)  # type: ignore[arg-type]
        chunks = list(
            client.chat.completions.create(
                model=model,
                messages=messages,  # type: ignore[arg-type]
                stream=True,
                **options,  # type: ignore[arg-type]
            )
        )
    content = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert PROMPT in "".join(content)
    assert "".join(content) == whole.choices[0].message.content
    assert len(content) >= 80, "each delta is its own chunk"
    assert {c.model for c in chunks} == {model}
    usage = [c for c in chunks if not c.choices]
    if include_usage:
        assert len(usage) == 1 and usage[0] is chunks[-1] and usage[0].usage is not None
        assert usage[0].usage.completion_tokens > 0
        assert all(c.usage is None for c in chunks if c.choices)
    else:
        assert usage == [] and all(c.usage is None for c in chunks)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]


@pytest.mark.parametrize("provider", sorted(MODELS))
def test_content_chunks_carry_the_upstreams_own_strings(gateway_url: str, provider: str) -> None:
    """The fakes escape non-ASCII (`\\u00f6`); chunks written around the upstream's strings keep that
    spelling, where parsing and encoding again would write `ö` itself: proof that the run path served."""
    body = {"model": MODELS[provider], "messages": [{"role": "user", "content": PROMPT}], "stream": True}
    with httpx.stream("POST", gateway_url + "/v1/chat/completions", json=body, timeout=30) as response:
        assert response.status_code == 200
        raw = response.read()
    events = [event[len(b"data: ") :] for event in raw.split(b"\n\n") if event]
    assert events[-1] == b"[DONE]"
    escaped = [e for e in events if b"w\\u00f6rd" in e]
    assert len(escaped) >= 20
    for event in events[:-1]:
        chunk = json.loads(event)
        assert chunk["model"] == MODELS[provider] and "usage" not in chunk


def test_a_burst_cut_after_text_deltas_ends_in_an_error() -> None:
    """Each fake cuts its stream after some text: the SDK raises, never a silent success."""
    google = gemini.FakeGemini(burst=True, faults=[gemini.Fault(status=None, after_events=5)])
    cases = [("claude/claude-haiku-4-5", "CUT STREAM"), ("gemini/gemini-3-flash", PROMPT)]
    cases.append(("bedrock/stream-cut", PROMPT))
    with (
        _gateway(anthropic.FakeAnthropic(burst=True), google, bedrock.FakeBedrock(burst=True)) as url,
        openai.OpenAI(base_url=url + "/v1", api_key="any", max_retries=0) as client,
    ):
        for model, prompt in cases:
            stream = client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": prompt}], stream=True
            )
            received: list[str] = []
            with pytest.raises(openai.APIError):
                for chunk in stream:
                    received.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
            assert "".join(received), f"{model}: text came before the cut"


def _messages_stream(gateway_url: str, model: str) -> tuple[list[str], Any]:
    """The text deltas and the final message the anthropic SDK reads from the Messages door for PROMPT."""
    client = anthropic_sdk.Anthropic(base_url=gateway_url, api_key="any", max_retries=0)
    with client.messages.stream(
        model=model, max_tokens=1000, messages=[{"role": "user", "content": PROMPT}]
    ) as stream:
        deltas = [
            e.delta.text for e in stream if e.type == "content_block_delta" and e.delta.type == "text_delta"
        ]
        final = stream.get_final_message()
    client.close()
    return deltas, final


@pytest.mark.parametrize("provider", sorted(TRANSLATED_FOR_MESSAGES))
def test_the_messages_door_relays_a_burst_delta_for_delta(gateway_url: str, provider: str) -> None:
    model = TRANSLATED_FOR_MESSAGES[provider]
    deltas, final = _messages_stream(gateway_url, model)
    assert PROMPT in "".join(deltas) and len(deltas) >= 80
    assert [block.type for block in final.content] == ["text"]
    assert final.content[0].text == "".join(deltas)  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0


@pytest.mark.parametrize("provider", sorted(MODELS))
def test_the_responses_door_relays_a_burst_delta_for_delta(gateway_url: str, provider: str) -> None:
    with openai.OpenAI(base_url=gateway_url + "/v1", api_key="any", max_retries=0) as client:
        events = list(client.responses.create(model=MODELS[provider], input=PROMPT, stream=True, store=False))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert PROMPT in "".join(deltas) and len(deltas) >= 80
    numbers = [e.sequence_number for e in events]
    assert numbers == list(range(len(events))), "every event numbered in turn"
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.output_text == "".join(deltas)
    assert completed.response.usage is not None and completed.response.usage.output_tokens > 0


def test_a_native_responses_burst_reaches_the_sdk_as_the_upstreams_own_events() -> None:
    """OpenAI's own Responses stream, in one write: the door relays the text deltas as the bytes the fake
    wrote (its `\\u00f6` escapes kept, where parsing and encoding again would write `ö`), and the SDK reads
    every delta in order, numbered as the upstream numbered them, and the final response."""
    fake = fake_openai.FakeOpenAI(burst=True)
    with (
        serve(fake.app()) as upstream,
        serve(
            Gateway(providers={"openai": OpenAIProvider(api_key=fake_openai.KEY, base_url=upstream + "/v1")})
        ) as url,
    ):
        with openai.OpenAI(base_url=url + "/v1", api_key="any", max_retries=0) as client:
            events = list(client.responses.create(model="openai/gpt-4.1", input=PROMPT, stream=True))
        body = {"model": "openai/gpt-4.1", "input": PROMPT, "stream": True, "store": False}
        with httpx.stream("POST", url + "/v1/responses", json=body, timeout=30) as response:
            raw = response.read()
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert PROMPT in "".join(deltas) and len(deltas) >= 80
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].type == "response.completed" and events[-1].response.model == "openai/gpt-4.1"
    assert events[-1].response.output_text == "".join(deltas)
    escaped = [e for e in raw.split(b"\n\n") if b"output_text.delta" in e and b"w\\u00f6rd" in e]
    assert len(escaped) >= 20 and all(b'"obfuscation":"' in e for e in escaped)


def test_a_native_responses_stream_cut_after_text_deltas_ends_in_an_error_event() -> None:
    """A native stream is relayed with the upstream's own numbering, so its failure is an `error` event
    numbered after the last one sent; never `response.completed`."""
    fake = fake_openai.FakeOpenAI(faults=[fake_openai.Fault(cut_after=30)])
    with (
        serve(fake.app()) as upstream,
        serve(
            Gateway(providers={"openai": OpenAIProvider(api_key=fake_openai.KEY, base_url=upstream + "/v1")})
        ) as url,
        openai.OpenAI(base_url=url + "/v1", api_key="any", max_retries=0) as client,
    ):
        events = list(client.responses.create(model="openai/gpt-4.1", input=PROMPT, stream=True))
    assert sum(e.type == "response.output_text.delta" for e in events) >= 20
    assert events[-1].type == "error" and events[-1].sequence_number == events[-2].sequence_number + 1
    assert not any(e.type == "response.completed" for e in events)


def test_the_messages_door_relays_anthropics_own_burst_as_its_bytes(gateway_url: str) -> None:
    """Claude on the Messages door is passed through: its text deltas leave as the bytes the upstream wrote
    (the fake's `\\u00f6` escapes kept), and the anthropic SDK reads every delta and the final message."""
    model = MODELS["anthropic"]
    deltas, final = _messages_stream(gateway_url, model)
    assert PROMPT in "".join(deltas) and len(deltas) >= 80
    assert final.model == model and final.content[0].text == "".join(deltas)  # type: ignore[union-attr]
    body = {
        "model": model,
        "max_tokens": 1000,
        "stream": True,
        "messages": [{"role": "user", "content": PROMPT}],
    }
    with httpx.stream("POST", gateway_url + "/v1/messages", json=body, timeout=30) as response:
        raw = response.read()
    escaped = [e for e in raw.split(b"\n\n") if b"content_block_delta" in e and b"w\\u00f6rd" in e]
    assert len(escaped) >= 20
