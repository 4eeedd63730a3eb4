"""Text deltas recognised by their bytes (`providers/runs.py`): the chat door's readers of Anthropic, Gemini
and Bedrock streams hand runs of text deltas over as `TextRun`s, written as content chunks around the
upstream's own JSON strings. The client must read exactly what the usual path (parse, translate, encode)
gives it.

Every golden stream fixture of the three providers, and streams written here with hard text (escapes,
surrogate pairs, raw UTF-8, bytes that are not UTF-8, a quote at the end), goes both ways, whole and cut
into reads of several sizes, through the chat door (with and without `include_usage`) and the Messages
and Responses doors' encoders; the events the client reads and the error it gets must be the same."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from asgi_llm_gateway.endpoints.anthropic_native import NativeEvents
from asgi_llm_gateway.endpoints.chat import ChatEncoder
from asgi_llm_gateway.errors import GatewayError
from asgi_llm_gateway.eventstream import EventStreamDecoder
from asgi_llm_gateway.ingress.anthropic._stream import MessagesStreamEncoder
from asgi_llm_gateway.ingress.responses._response import skeleton
from asgi_llm_gateway.ingress.responses._stream import ResponsesStreamEncoder
from asgi_llm_gateway.providers.anthropic._native import NativeStreamTranslator
from asgi_llm_gateway.providers.anthropic._stream import StreamTranslator as AnthropicTranslator
from asgi_llm_gateway.providers.anthropic._stream import TextDeltaReader
from asgi_llm_gateway.providers.base import VerbatimChunk
from asgi_llm_gateway.providers.bedrock._stream import StreamTranslator as BedrockTranslator
from asgi_llm_gateway.providers.bedrock._stream import chat_items
from asgi_llm_gateway.providers.gemini._stream import StreamDecoder, TextRunDecoder
from asgi_llm_gateway.providers.gemini._stream import StreamTranslator as GeminiTranslator
from asgi_llm_gateway.providers.runs import TextRun, content_run, text_runs
from asgi_llm_gateway.sse import SSEDecoder
from asgi_llm_gateway.wire import ChunkBuilder, dumps
from tests.fakes.bedrock import encode_frame, event_frame
from tests.support.golden import golden

TARGET = "team/chat-model"
HARD_TEXTS = [
    "plain words ",
    'a "quoted" word\\ and a back\\slash',
    "tab\there, newline\nthere, bell\x07",
    "Grüße, naïve café ✓ 🎉",
    "</script> & 'single' \u2028 line separator",
    '"',
]


# -- the pieces -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("index", [0, 2])
def test_content_frame_is_the_encoded_chunk_around_its_string(index: int) -> None:
    builder = ChunkBuilder('odd "model" \\ ü', id='id "with" quotes', created=7)
    head, tail, end = builder.content_frame(index)
    assert end == b""
    for text in HARD_TEXTS:
        string = dumps(text)
        assert head + string + tail == dumps(builder.chunk({"content": text}, index=index))


def test_content_frame_follows_the_streams_id_and_model() -> None:
    builder = ChunkBuilder("m1", id="a", created=1)
    first = builder.content_frame()
    builder.id, builder.model = "b", "m2"
    head, tail, _ = builder.content_frame()
    assert (head, tail) != first[:2]
    assert json.loads(head + b'"x"' + tail) == builder.chunk({"content": "x"})


def test_content_run_joins_a_runs_chunks_as_events() -> None:
    builder = ChunkBuilder("m", id="c", created=1)
    chunk = content_run(builder, [b'"one"', b'"two"', b'"\\u00fc"'], index=1)
    assert isinstance(chunk, VerbatimChunk) and chunk.count == 3 and chunk.index == 1
    events = [json.loads(data) for data in chunk.data.split(b"\n\ndata: ")]
    assert events == [builder.chunk({"content": text}, index=1) for text in ("one", "two", "ü")]


def test_text_runs_group_consecutive_deltas_of_one_index() -> None:
    parts = ["t0:a", "t0:b", "x", "t0:c", "t1:d", "t1:e"]

    def text_of(part: str) -> tuple[int, bytes] | None:
        return (int(part[1]), part[3:].encode("latin-1")) if part.startswith("t") else None

    items = list(text_runs([*parts, "t1:\xff"], text_of, lambda part: [part.replace("x", "X")]))
    shapes = [(i.index, i.strings, i.last) if isinstance(i, TextRun) else i for i in items]
    assert shapes == [
        (0, [b"a", b"b"], "t0:b"),
        "X",
        (0, [b"c"], "t0:c"),
        (1, [b"d", b"e"], "t1:e"),
        "t1:\xff",
    ]


def test_text_runs_hand_over_the_run_before_a_failure() -> None:
    def parts() -> Iterable[str]:
        yield "t0:a"
        yield "t0:b"
        raise ValueError("bad frame")

    seen: list[object] = []
    with pytest.raises(ValueError):
        for item in text_runs(parts(), lambda p: (0, p[3:].encode()), lambda p: [p]):
            seen.append(item)
    assert len(seen) == 1 and isinstance(seen[0], TextRun) and seen[0].strings == [b"a", b"b"]


# -- the three providers, both ways ---------------------------------------------------------------------


Reader = Any
View = tuple[list[Any], tuple[int, str] | None, int]
Mangle = Callable[[bytes], bytes]


def _encoder(door: str) -> Any:
    if door == "chat":
        return ChatEncoder(TARGET, False, False)
    if door == "chat+usage":
        return ChatEncoder(TARGET, True, False)
    if door == "messages":
        return MessagesStreamEncoder(TARGET)
    return ResponsesStreamEncoder(skeleton({"input": "hi"}, response_id="resp_1", created_at=1, model=TARGET))


def _events(out: bytes) -> list[Any]:
    """Each SSE event's data, parsed (`[DONE]` as it is); a Messages stream's random message id taken out."""
    events: list[Any] = []
    for event in out.split(b"\n\n"):
        data = next((line[6:] for line in event.split(b"\n") if line.startswith(b"data: ")), None)
        if data is None:
            continue
        parsed = data.decode() if data == b"[DONE]" else json.loads(data)
        if isinstance(parsed, dict) and parsed.get("type") == "message_start":
            del parsed["message"]["id"]
        events.append(parsed)
    return events


def _view(
    body: bytes,
    size: int,
    reader: Reader,
    translator: Any,
    feed: Callable[[Reader, bytes], Iterable[Any]],
    flush: Callable[[Reader], Iterable[Any]],
    door: str,
) -> View:
    """What a client of `door` reads from `body` cut into reads of `size`: its events, the error that ended
    the stream (status, code), and the most text deltas that crossed as one item."""
    encoder = _encoder(door)
    out = b""
    error = None
    failure = None
    longest = 0
    try:
        for start in range(0, len(body), size):
            for item in feed(reader, body[start : start + size]):
                for chunk in translator.feed(item):
                    if isinstance(chunk, VerbatimChunk):
                        longest = max(longest, chunk.count)
                    out += encoder.encode([chunk])
        for item in flush(reader):
            for chunk in translator.feed(item):
                out += encoder.encode([chunk])
        out += encoder.encode(translator.end())
    except GatewayError as exc:
        error, failure = (exc.status, exc.code), exc
    out += encoder.close(failure)
    return _events(out), error, longest


def _both_ways(provider: str, body: bytes, size: int, door: str, **options: Any) -> View:
    """The usual path's view and the text-run path's, which must agree; the run path's is returned."""
    usual, runs = (_reading(provider, chat, options) for chat in (False, True))
    expected = _view(body, size, *usual, door)
    got = _view(body, size, *runs, door)
    assert got[:2] == expected[:2]
    assert expected[2] == 0
    return got


def _reading(provider: str, chat: bool, options: dict[str, Any]) -> tuple[Any, ...]:
    if provider == "anthropic":
        translator: Any = AnthropicTranslator("claude-x", created=0, **options)
        if chat:
            return TextDeltaReader(), translator, TextDeltaReader.feed, TextDeltaReader.flush
        return SSEDecoder(), translator, SSEDecoder.feed, SSEDecoder.flush
    if provider == "gemini":
        translator = GeminiTranslator("gemini-x", scope="test", created=0, **options)
        decoder = TextRunDecoder() if chat else StreamDecoder()
        return decoder, translator, type(decoder).feed, type(decoder).flush
    translator = BedrockTranslator("bedrock-x", id="chatcmpl-b", created=0, **options)

    def feed(decoder: EventStreamDecoder, data: bytes) -> Iterable[Any]:
        frames = decoder.feed(data)
        return chat_items(frames) if chat else frames

    def close(decoder: EventStreamDecoder) -> Iterable[Any]:
        decoder.close()
        return ()

    return EventStreamDecoder(), translator, feed, close


def _anthropic_event(name: str, data: Any) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"event: {name}\ndata: {text}\n\n".encode()


def _gemini_event(payload: Any) -> bytes:
    """As Google writes it: `": "` after keys, `,` alone between members, CRLF line ends."""
    return b"data: " + json.dumps(payload, separators=(",", ": ")).encode() + b"\r\n\r\n"


def _bedrock_frame(kind: str, payload: Any, n: int) -> bytes:
    return event_frame(kind, {**payload, "p": "abcdefghijklmnopqrstuvwxyz"[: 3 + n % 20]})


def _anthropic_case(case: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    body = b"".join(_anthropic_event(name, data) for name, data in case["events"])
    return body, {"json_tool": case["json_tool"], "scope": case.get("scope")}


def _gemini_case(case: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    return b"".join(_gemini_event(payload) for payload in case["events"]), {}


def _bedrock_case(case: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    body = b"".join(_bedrock_frame(kind, payload, n) for n, (kind, payload) in enumerate(case["events"]))
    return body, {
        "tool_names": case["tool_names"],
        "json_tool": case["json_tool"],
        "scope": case.get("scope"),
    }


#: Each provider's golden stream fixture → its native body, as the upstream writes it, and the translator's
#: options.
GOLDEN_BODIES = {"anthropic": _anthropic_case, "gemini": _gemini_case, "bedrock": _bedrock_case}
GOLDEN_STREAMS = [
    pytest.param(provider, case.values[0], id=f"{provider}-{case.id}")
    for provider in GOLDEN_BODIES
    for case in golden(provider, "stream")
]
SIZES = [1, 7, 64, 10**6]
#: The chat door without and with `include_usage`, and the two doors that translate chat chunks.
DOORS = ["chat", "chat+usage", "messages", "responses"]


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize(("provider", "case"), GOLDEN_STREAMS)
def test_golden_streams_read_the_same_both_ways(provider: str, case: dict[str, Any], door: str) -> None:
    body, options = GOLDEN_BODIES[provider](case)
    for size in SIZES:
        _both_ways(provider, body, size, door, **options)


# -- streams of hard text --------------------------------------------------------------------------------


def _anthropic_text_stream(
    texts: list[str], *, ascii_only: bool = True, end: bool = True, mangle: Mangle = bytes
) -> bytes:
    def event(name: str, data: dict[str, Any]) -> bytes:
        text = json.dumps({"type": name, **data}, separators=(",", ":"), ensure_ascii=ascii_only).encode()
        return b"event: " + name.encode() + b"\ndata: " + mangle(text) + b"\n\n"

    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x", "content": []}
    body = event("message_start", {"message": {**message, "usage": {"input_tokens": 3, "output_tokens": 1}}})
    body += event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
    for text in texts:
        body += event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": text}})
    if end:
        body += event("content_block_stop", {"index": 0})
        body += event("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}})
        body += event("message_stop", {})
    return body


def _gemini_text_stream(
    texts: list[str], *, ascii_only: bool = True, end: bool = True, mangle: Mangle = bytes
) -> bytes:
    body = b""
    for n, text in enumerate(texts):
        candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
        usage = {"promptTokenCount": 4, "candidatesTokenCount": n + 1, "totalTokenCount": 5 + n}
        payload = {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": "g-1",
            "responseId": "r1",
        }
        body += b"data: " + mangle(
            json.dumps(payload, separators=(",", ": "), ensure_ascii=ascii_only).encode()
        )
        body += b"\r\n\r\n"
    if end:
        last = {
            "candidates": [{"content": {"parts": [{"text": ""}], "role": "model"}, "finishReason": "STOP"}]
        }
        body += _gemini_event({**last, "modelVersion": "g-1", "responseId": "r1"})
    return body


def _bedrock_text_stream(
    texts: list[str], *, ascii_only: bool = True, end: bool = True, mangle: Mangle = bytes
) -> bytes:
    def frame(kind: str, payload: dict[str, Any], n: int) -> bytes:
        data = {**payload, "p": "abcdefghij"[: n % 10]}
        headers = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
        return encode_frame(
            headers, mangle(json.dumps(data, separators=(",", ":"), ensure_ascii=ascii_only).encode())
        )

    body = frame("messageStart", {"role": "assistant"}, 0)
    for n, text in enumerate(texts):
        body += frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": text}}, n)
    if end:
        body += frame("contentBlockStop", {"contentBlockIndex": 0}, 1)
        body += frame("messageStop", {"stopReason": "end_turn"}, 2)
        usage = {"inputTokens": 3, "outputTokens": 9, "totalTokens": 12}
        body += frame("metadata", {"usage": usage, "metrics": {"latencyMs": 5}}, 3)
    return body


def _not_utf8(data: bytes) -> bytes:
    return data.replace(b"BAD", b"B\xffD")


TEXT_STREAMS: dict[str, Callable[..., bytes]] = {
    "anthropic": _anthropic_text_stream,
    "gemini": _gemini_text_stream,
    "bedrock": _bedrock_text_stream,
}


def _text(door: str, events: list[Any]) -> str:
    """The text a client of `door` reads from its events."""
    if door == "messages":
        return "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    if door == "responses":
        return "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    chunks = [chunk for chunk in _chunks(events) if chunk.get("choices")]  # not usage, not an error
    return "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks)


def _chunks(events: list[Any]) -> list[Any]:
    """A chat stream's chunks: its events but `[DONE]`."""
    return [event for event in events if isinstance(event, dict)]


@pytest.mark.parametrize("ascii_only", [True, False])
@pytest.mark.parametrize("provider", sorted(TEXT_STREAMS))
def test_hard_text_reads_the_same_both_ways_and_crosses_as_one_run(provider: str, ascii_only: bool) -> None:
    body = TEXT_STREAMS[provider](HARD_TEXTS, ascii_only=ascii_only)
    for size in SIZES:
        for door in DOORS:
            events, error, _ = _both_ways(provider, body, size, door)
            assert error is None
            assert _text(door, events) == "".join(HARD_TEXTS)
        chunks = _chunks(_both_ways(provider, body, size, "chat+usage")[0])
        assert {chunk["model"] for chunk in chunks} == {TARGET}
        assert [chunk for chunk in chunks if not chunk["choices"]] == [chunks[-1]], "usage last, once"
    completed = _both_ways(provider, body, 10**6, "responses")[0][-1]
    assert completed["type"] == "response.completed"
    assert completed["response"]["output"][0]["content"][0]["text"] == "".join(HARD_TEXTS)
    # read whole, the deltas after the first (Gemini learns the layout from it) come as one item
    assert _both_ways(provider, body, 10**6, "chat")[2] >= len(HARD_TEXTS) - 1


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("provider", sorted(TEXT_STREAMS))
def test_a_stream_cut_after_a_run_of_text_ends_in_an_error(provider: str, door: str) -> None:
    body = TEXT_STREAMS[provider](["one ", "two ", "three"], end=False)
    events, error, longest = _both_ways(provider, body, 10**6, door)
    assert error is not None and error[0] == 502
    assert _text(door, events) == "one two three"
    assert longest >= 2
    last = events[-1]
    if door == "messages":
        assert last["type"] == "error"
    elif door == "responses":
        assert last["type"] == "response.failed"
    else:
        assert "error" in last


@pytest.mark.parametrize("provider", sorted(TEXT_STREAMS))
def test_text_that_is_not_utf8_is_read_as_the_usual_path_reads_it(provider: str) -> None:
    body = TEXT_STREAMS[provider](["fine ", "BAD", "fine"], ascii_only=False, mangle=_not_utf8)
    for door in DOORS:
        _both_ways(provider, body, 10**6, door)


def test_gemini_reads_the_counts_of_the_last_text_delta_when_the_finish_has_none() -> None:
    chunks = _chunks(_both_ways("gemini", _gemini_text_stream(["a", "b", "c", "d"]), 10**6, "chat+usage")[0])
    assert chunks[-1]["usage"]["completion_tokens"] == 4, "the last delta's cumulative count"


def test_gemini_takes_a_delta_with_another_shape_the_usual_way() -> None:
    """A delta with a part the layout does not have (a thought signature) is parsed, not matched."""
    body = _gemini_text_stream(["a", "b"], end=False)
    odd = {"content": {"parts": [{"text": "c", "thoughtSignature": "c2ln"}], "role": "model"}, "index": 0}
    body += _gemini_event({"candidates": [odd], "modelVersion": "g-1", "responseId": "r1"})
    body += _gemini_text_stream(["d"], end=True)
    events, error, _ = _both_ways("gemini", body, 10**6, "chat")
    assert error is None
    assert _text("chat", events) == "abcd"


def test_gemini_learns_the_layout_after_any_number_of_thoughts() -> None:
    """Thought deltas (a thinking model's first chunks) are no attempt at learning the text's layout."""
    thought = {"content": {"parts": [{"text": "hmm", "thought": True}], "role": "model"}, "index": 0}
    body = b"".join(_gemini_event({"candidates": [thought], "responseId": "r1"}) for _ in range(5))
    body += _gemini_text_stream(["a", "b", "c", "d"])
    events, error, longest = _both_ways("gemini", body, 10**6, "chat")
    assert error is None and _text("chat", events) == "abcd"
    assert longest == 3


def test_anthropic_deltas_in_another_spelling_take_the_usual_path() -> None:
    """Spaced JSON (not how Anthropic writes) is never matched; the client reads the same either way."""
    body = _anthropic_text_stream(["x", "y"]).replace(b'"text_delta","text":', b'"text_delta", "text": ')
    assert _both_ways("anthropic", body, 10**6, "chat")[2] == 0


def test_a_text_delta_before_message_start_is_refused_on_the_run_path_too() -> None:
    body = _anthropic_text_stream(["x", "y"])
    start = body.index(b"event: content_block_delta")
    _, error, _ = _both_ways("anthropic", body[start:], 10**6, "chat")
    assert error == (502, "upstream_bad_response")


def test_a_bad_frame_after_a_run_still_delivers_the_run_first() -> None:
    body = bytearray(_bedrock_text_stream(["one ", "two ", "three"]))
    body[-10] ^= 0xFF  # the metadata frame's checksum no longer holds
    translator = BedrockTranslator("bedrock-x", id="chatcmpl-b", created=0)
    decoder = EventStreamDecoder()
    seen: list[Any] = []
    with pytest.raises(ValueError):
        for item in chat_items(decoder.feed(bytes(body))):
            seen += translator.feed(item)
    runs = [chunk for chunk in seen if isinstance(chunk, VerbatimChunk)]
    assert len(runs) == 1 and runs[0].count == 3


# -- the Messages door over Anthropic itself: text deltas relayed as the upstream's bytes ------------------


def _native_view(body: bytes, size: int, runs: bool) -> View:
    """What a Messages client reads of Anthropic's own stream `body` in reads of `size`: its events, the
    error that ended it, and the most text deltas relayed as one item of bytes."""
    reader: Any = TextDeltaReader() if runs else SSEDecoder()
    translator = NativeStreamTranslator()
    encoder = NativeEvents(TARGET)
    out, error, failure, longest = b"", None, None, 0
    try:
        reads = [body[start : start + size] for start in range(0, len(body), size)]
        for items in [*(reader.feed(read) for read in reads), reader.flush()]:
            for item in items:
                for event in translator.feed(item):
                    if isinstance(event, bytes):
                        longest = max(longest, event.count(b"\n\n"))
                        assert event in body, "a run leaves as the bytes the upstream sent"
                    out += encoder.encode([event])
            if translator.done:
                break
        else:
            translator.end()
    except GatewayError as exc:
        error, failure = (exc.status, exc.code), exc
    out += encoder.close(failure)
    return _events(out), error, longest


def _native_both_ways(body: bytes, size: int) -> View:
    usual, runs = _native_view(body, size, runs=False), _native_view(body, size, runs=True)
    assert runs[:2] == usual[:2] and usual[2] == 0
    return runs


@pytest.mark.parametrize("case", [case.values[0] for case in golden("anthropic", "stream")])
def test_anthropic_golden_streams_reach_the_messages_door_the_same_both_ways(case: dict[str, Any]) -> None:
    body, _ = _anthropic_case(case)
    for size in SIZES:
        _native_both_ways(body, size)


@pytest.mark.parametrize("ascii_only", [True, False])
def test_hard_text_reaches_the_messages_door_as_the_upstreams_bytes(ascii_only: bool) -> None:
    body = _anthropic_text_stream(HARD_TEXTS, ascii_only=ascii_only)
    for size in SIZES:
        events, error, _ = _native_both_ways(body, size)
        assert error is None and _text("messages", events) == "".join(HARD_TEXTS)
        assert events[0]["message"]["model"] == TARGET and events[-1] == {"type": "message_stop"}
    assert _native_both_ways(body, 10**6)[2] == len([text for text in HARD_TEXTS if text])


def test_a_native_stream_cut_after_a_run_of_text_ends_in_an_error_event() -> None:
    events, error, longest = _native_both_ways(
        _anthropic_text_stream(["one ", "two ", "three"], end=False), 10**6
    )
    assert error is not None and error[0] == 502 and longest == 3
    assert _text("messages", events) == "one two three" and events[-1]["type"] == "error"


def test_native_text_that_is_not_utf8_or_before_message_start_is_judged_as_before() -> None:
    bad = _anthropic_text_stream(["fine ", "BAD", "fine"], ascii_only=False, mangle=_not_utf8)
    _native_both_ways(bad, 10**6)
    body = _anthropic_text_stream(["x", "y"])
    _, error, _ = _native_both_ways(body[body.index(b"event: content_block_delta") :], 10**6)
    assert error == (502, "upstream_bad_response")
