"""The chat door relays an OpenAI upstream's plain content chunks as the bytes the upstream wrote: through
the openai SDK and a raw HTTP reader, against the fake OpenAI on loopback (compact JSON, as OpenAI writes)
and the fake DeepSeek (spaced JSON, where the relay re-encodes instead)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest

from asgi_llm_gateway import Gateway
from asgi_llm_gateway.providers import DeepSeekProvider, OpenAIProvider
from tests.fakes.openai import KEY, FakeOpenAI, Fault
from tests.support.server import serve

PROMPT = "Grüße, naïve café ✓"


@pytest.fixture(scope="module")
def gateway_url() -> Iterator[str]:
    with (
        serve(FakeOpenAI(flavour="openai").app()) as openai_url,
        serve(FakeOpenAI(flavour="deepseek").app()) as deepseek_url,
    ):
        gateway = Gateway(
            providers={
                "openai": OpenAIProvider(api_key=KEY, base_url=openai_url + "/v1"),
                "deepseek": DeepSeekProvider(api_key=KEY, base_url=deepseek_url),
            }
        )
        with serve(gateway) as url:
            yield url


def _raw_events(url: str, body: dict[str, object]) -> list[bytes]:
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=30) as response:
        assert response.status_code == 200
        raw = response.read()
    return [event[len(b"data: ") :] for event in raw.split(b"\n\n") if event]


@pytest.mark.parametrize("model", ["openai/gpt-4o-mini", "deepseek/deepseek-chat"])
@pytest.mark.parametrize("include_usage", [False, True])
def test_the_sdk_reads_the_text_the_model_and_the_usage_as_asked(
    gateway_url: str, model: str, include_usage: bool
) -> None:
    client = openai.OpenAI(base_url=gateway_url + "/v1", api_key="any", max_retries=0)
    options = {"stream_options": {"include_usage": True}} if include_usage else {}
    chunks = list(
        client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": PROMPT}], stream=True, **options
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert PROMPT in text
    assert {c.model for c in chunks} == {model}, "every chunk names the target, verbatim or not"
    usage_chunks = [c for c in chunks if not c.choices]
    if include_usage:
        assert len(usage_chunks) == 1 and usage_chunks[0].usage is not None
        assert usage_chunks[0].usage.completion_tokens > 0
        assert all(c.usage is None for c in chunks if c.choices)
    else:
        assert usage_chunks == [] and all(c.usage is None for c in chunks)
    assert chunks[-1 - include_usage].choices[0].finish_reason == "stop"
    client.close()


def test_content_chunks_keep_the_upstreams_own_bytes(gateway_url: str) -> None:
    """OpenAI's fake escapes non-ASCII text (`\\u00fc`); the verbatim relay keeps that spelling, where
    re-encoding would write the characters themselves. Without `include_usage` no event has `usage`."""
    body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}], "stream": True}
    events = _raw_events(gateway_url, body)
    assert events[-1] == b"[DONE]"
    content = [e for e in events[:-1] if b'"content":"' in e and b'"finish_reason":null' in e]
    assert any(b"\\u00fc" in e for e in content), "the text's chunks came as the upstream wrote them"
    for event in events[:-1]:
        chunk = json.loads(event)
        assert chunk["model"] == "openai/gpt-4o-mini" and "usage" not in chunk
    spaced = _raw_events(gateway_url, {**body, "model": "deepseek/deepseek-chat"})
    assert all(b'"model":"deepseek/deepseek-chat"' in e for e in spaced[:-1]), "re-encoded, compact"


def test_a_stream_cut_after_verbatim_chunks_ends_in_an_error(gateway_url: str) -> None:
    """Regression guard for the relay's cut-stream check: content relayed verbatim, then the upstream
    connection drops before a finish → the SDK raises, never a silent success."""
    with serve(FakeOpenAI(flavour="openai", faults=[Fault(None, cut_after=3)]).app()) as upstream_url:
        gateway = Gateway(providers={"openai": OpenAIProvider(api_key=KEY, base_url=upstream_url + "/v1")})
        with serve(gateway) as url:
            client = openai.OpenAI(base_url=url + "/v1", api_key="any", max_retries=0)
            stream = client.chat.completions.create(
                model="openai/gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}], stream=True
            )
            with pytest.raises(openai.APIError):
                for _ in stream:
                    pass
            client.close()


def _burst_upstream(words: list[str], seen: list[bytes]) -> object:
    """An OpenAI upstream that writes its whole stream in one send (as a fast model's burst reaches a proxy:
    many events per read), in OpenAI's compact spelling with `usage: null` and `obfuscation` pads."""

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        if scope["type"] != "http":
            return
        seen.append((await receive())["body"])  # type: ignore[operator]
        head = {"id": "chatcmpl-B", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-b"}

        def event(delta: dict[str, object], finish: str | None = None, pad: str = "Zq") -> bytes:
            chunk = {
                **head,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
                "usage": None,
                "obfuscation": pad,
            }
            return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"

        usage = {"prompt_tokens": 3, "completion_tokens": len(words), "total_tokens": 3 + len(words)}
        body = (
            event({"role": "assistant", "content": ""})
            + b"".join(event({"content": word}, pad="p" * (n % 7)) for n, word in enumerate(words))
            + event({}, "stop")
            + b"data: "
            + json.dumps({**head, "choices": [], "usage": usage}, separators=(",", ":")).encode()
            + b"\n\ndata: [DONE]\n\n"
        )
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": body})  # type: ignore[operator]

    return app


@pytest.mark.parametrize("include_usage", [False, True])
def test_a_burst_of_text_chunks_reaches_the_sdk_chunk_for_chunk(include_usage: bool) -> None:
    """Text chunks that come many to a read cross the relay as runs (`VerbatimReader`): the SDK still gets
    every one of them, in order, each naming the target, with `usage` as it asked."""
    words = [f" w{n}" for n in range(200)] + [' "quoted" ', " naïve ✓", " }\n\ndata: x"]
    seen: list[bytes] = []
    with serve(_burst_upstream(words, seen)) as upstream_url:  # type: ignore[arg-type]
        gateway = Gateway(providers={"openai": OpenAIProvider(api_key=KEY, base_url=upstream_url + "/v1")})
        with serve(gateway) as url:
            client = openai.OpenAI(base_url=url + "/v1", api_key="any", max_retries=0)
            options = {"stream_options": {"include_usage": True}} if include_usage else {}
            chunks = list(
                client.chat.completions.create(
                    model="openai/gpt-4o",
                    messages=[{"role": "user", "content": "go"}],
                    stream=True,
                    **options,
                )
            )
            client.close()
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert texts == words, "every chunk, in order, none merged or lost"
    assert {c.model for c in chunks} == {"openai/gpt-4o"}
    assert chunks[-1 - include_usage].choices[0].finish_reason == "stop"
    if include_usage:
        assert chunks[-1].choices == [] and chunks[-1].usage is not None
        assert chunks[-1].usage.completion_tokens == len(words)
        assert all(c.usage is None for c in chunks[:-1])
    else:
        assert all(c.choices for c in chunks)
    assert len(seen) == 1
