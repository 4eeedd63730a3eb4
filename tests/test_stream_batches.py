"""Streams travel in batches: the chunks of one upstream read are written to the client in one ASGI send.

Driven through the ASGI interface directly, so the sends themselves can be counted."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

import anyio
import httpx
import pytest

from asgi_llm_gateway import Gateway, GatewayError
from asgi_llm_gateway.providers import OpenAIProvider
from asgi_llm_gateway.providers.base import Provider, Request
from asgi_llm_gateway.providers.streams import translate_reads
from asgi_llm_gateway.wire import ChunkBuilder

pytestmark = pytest.mark.anyio

BODY = {"model": "p/m", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def script(texts: list[list[str]]) -> list[list[dict[str, Any]]]:
    """Batches of content chunks (the first with the role), then the finish chunk and usage in the last."""
    builder = ChunkBuilder("m")
    batches = [[builder.chunk({"content": text}) for text in batch] for batch in texts]
    batches[0].insert(0, builder.role())
    batches[-1] += [builder.finish("stop"), builder.usage({"prompt_tokens": 1, "completion_tokens": 2})]
    return batches


class Batched(Provider):
    """Hands over chunks the way the HTTP providers do: a list per upstream read."""

    def __init__(self, batches: list[list[dict[str, Any]]]) -> None:
        self.batches = batches

    async def complete(self, request: Request, model: str) -> dict[str, Any]:
        raise NotImplementedError

    async def stream(self, request: Request, model: str) -> AsyncIterator[dict[str, Any]]:
        raise NotImplementedError  # the gateway must read stream_batches()
        yield {}

    async def stream_batches(self, request: Request, model: str) -> AsyncIterator[list[dict[str, Any]]]:
        for batch in self.batches:
            yield batch


class OneByOne(Provider):
    """A host's provider that only writes `stream()`, as the public contract allows."""

    def __init__(self, batches: list[list[dict[str, Any]]]) -> None:
        self.chunks = [chunk for batch in batches for chunk in batch]

    async def complete(self, request: Request, model: str) -> dict[str, Any]:
        raise NotImplementedError

    async def stream(self, request: Request, model: str) -> AsyncIterator[dict[str, Any]]:
        for chunk in self.chunks:
            yield chunk


async def call(app: Gateway, body: dict[str, Any]) -> list[dict[str, Any]]:
    """All ASGI messages the app sends for one POST /v1/chat/completions."""
    raw = json.dumps(body).encode()
    received = [{"type": "http.request", "body": raw, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if received:
            return received.pop()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    return sent


def events_of(bodies: Iterable[bytes]) -> list[str]:
    text = b"".join(bodies).decode()
    assert text.endswith("\n\n")
    return [event.removeprefix("data: ") for event in text[:-2].split("\n\n")]


async def test_relay_writes_each_batch_in_one_send() -> None:
    app = Gateway(providers={"p": Batched(script([["a", "b", "c"], ["d", "e"]]))})
    sent = await call(app, {**BODY, "stream_options": {"include_usage": True}})
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
    bodies = [message["body"] for message in sent[1:]]
    assert all(message["type"] == "http.response.body" for message in sent[1:])
    assert len(bodies) == 3  # two batches, then [DONE]
    assert bodies[0].count(b"data: ") == 4 and bodies[1].count(b"data: ") == 4  # role+3 / 2+finish+usage
    events = events_of(bodies)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == "abcde"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 2
    assert all(chunk["model"] == "p/m" for chunk in chunks)
    assert [message["more_body"] for message in sent[1:]] == [True, True, False]


async def test_usage_chunk_alone_in_a_batch_sends_nothing_unless_asked() -> None:
    batches = script([["a"]])
    batches.append([batches[0].pop()])  # the usage chunk arrives on its own
    sent = await call(Gateway(providers={"p": Batched(batches)}), BODY)
    bodies = [message["body"] for message in sent[1:]]
    assert len(bodies) == 2 and bodies[-1] == b"data: [DONE]\n\n"
    assert all(json.loads(event)["choices"] for event in events_of(bodies)[:-1])


async def test_a_provider_with_only_stream_is_relayed_chunk_by_chunk() -> None:
    app = Gateway(providers={"p": OneByOne(script([["a", "b"], ["c"]]))})
    sent = await call(app, BODY)
    bodies = [message["body"] for message in sent[1:]]
    assert len(bodies) == 6  # one send each: role, a, b, c, finish (usage not asked for), [DONE]
    events = events_of(bodies)
    assert events[-1] == "[DONE]" and len(events) == 6


async def _reads(batches: list[list[str]], closed: list[bool]) -> AsyncIterator[list[str]]:
    try:
        for batch in batches:
            yield batch
    finally:
        closed.append(True)


class _Items:
    """A StreamTranslator over strings: "boom" fails, "ping" adds nothing, "stop" completes the stream."""

    def __init__(self) -> None:
        self.done = False
        self.ended = False

    def feed(self, item: str) -> list[dict[str, Any]]:
        if item == "boom":
            raise GatewayError("upstream: overloaded", status=503)
        if item == "stop":
            self.done = True
        return [] if item == "ping" else [{"item": item}]

    def end(self) -> list[dict[str, Any]]:
        self.ended = True
        return [{"item": "end"}]


async def test_translate_reads_hands_over_what_a_read_translated_before_it_failed() -> None:
    closed: list[bool] = []
    got: list[list[dict[str, Any]]] = []
    with pytest.raises(GatewayError, match="overloaded"):
        async for batch in translate_reads(_reads([["a"], ["b", "c", "boom", "d"]], closed), _Items()):
            got.append(batch)
    assert got == [[{"item": "a"}], [{"item": "b"}, {"item": "c"}]]
    assert closed == [True]


async def test_translate_reads_skips_empty_reads_and_stops_after_done() -> None:
    closed: list[bool] = []
    reads = _reads([["ping"], ["a", "stop"], ["after"]], closed)
    translator = _Items()
    got = [batch async for batch in translate_reads(reads, translator)]
    assert got == [[{"item": "a"}, {"item": "stop"}]]  # nothing read after the read that completed it
    assert closed == [True]
    assert not translator.ended  # the upstream said it was complete: no end-of-body check


async def test_translate_reads_ends_with_the_translators_last_chunks_when_reads_run_out() -> None:
    closed: list[bool] = []
    translator = _Items()
    got = [batch async for batch in translate_reads(_reads([["a"], ["ping"]], closed), translator)]
    assert got == [[{"item": "a"}], [{"item": "end"}]]
    assert closed == [True]


async def test_openai_provider_yields_one_batch_per_upstream_read() -> None:
    builder = ChunkBuilder("gpt-x")
    events = [builder.role(), *(builder.chunk({"content": str(i)}) for i in range(5)), builder.finish("stop")]
    body = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=httpx.ByteStream(body)
        )

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    provider = OpenAIProvider(api_key="k", base_url="http://upstream/v1", client=client)
    batches = [batch async for batch in provider.stream_batches(BODY, "gpt-x")]
    assert len(batches) == 1 and len(batches[0]) == 7
    assert [chunk async for chunk in provider.stream(BODY, "gpt-x")] == batches[0]
    await client.aclose()


class _Reads(httpx.AsyncByteStream):
    """An upstream body that arrives in the given pieces, one read each."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece


async def test_sse_events_are_grouped_by_the_read_that_completed_them() -> None:
    builder = ChunkBuilder("gpt-x")
    role, a, b = (
        json.dumps(e).encode()
        for e in (builder.role(), builder.chunk({"content": "a"}), builder.chunk({"content": "b"}))
    )
    finish = json.dumps(builder.finish("stop")).encode()
    pieces = [
        b"da",
        b"ta: " + role + b"\n",  # completes no event yet
        b"\ndata: " + a + b"\n\ndata: " + b + b"\n\n",  # completes three
        b": keep-alive\n\n",  # completes none
        b"data: " + finish + b"\n\ndata: [DONE]\n\n",
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=_Reads(pieces))

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    provider = OpenAIProvider(api_key="k", base_url="http://upstream/v1", client=client)
    batches = [batch async for batch in provider.stream_batches(BODY, "gpt-x")]
    await client.aclose()
    assert [len(batch) for batch in batches] == [3, 1]
    assert [c["choices"][0]["delta"].get("content") for c in batches[0]] == ["", "a", "b"]
    assert batches[1][0]["choices"][0]["finish_reason"] == "stop"
