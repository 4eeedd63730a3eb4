"""The chat door's verbatim relay of an OpenAI-family stream: plain content chunks go out as the bytes the
upstream sent (model renamed, `usage: null` as the client asked), everything else as before; both ways
give the client the same events.

Golden fixture: `fixtures/openai_family/stream/openai_compact.sse`, a stream as OpenAI writes it (compact
JSON, `usage: null` on every chunk since the gateway asks for usage, `obfuscation`, a tool call, the finish
and the usage chunk)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from asgi_llm_gateway.endpoints.chat import ChatEncoder
from asgi_llm_gateway.errors import GatewayError
from asgi_llm_gateway.pipeline.call import Call
from asgi_llm_gateway.pipeline.relay import ChunkProgress
from asgi_llm_gateway.providers.base import ChatItem, Chunk, VerbatimChunk
from asgi_llm_gateway.providers.openai import StreamTranslator
from asgi_llm_gateway.providers.openai._stream import VerbatimReader, VerbatimTranslator, verbatim_chunk
from asgi_llm_gateway.sse import SSEData
from asgi_llm_gateway.wire import TextFrame

FIXTURE = Path(__file__).parent / "fixtures" / "openai_family" / "stream" / "openai_compact.sse"
UPSTREAM_MODEL = "gpt-4o-2024-08-06"


def _events(raw: bytes) -> list[bytes]:
    reader = SSEData()
    return reader.feed(raw) + reader.flush()


def _spaced(raw: bytes) -> bytes:
    """The same stream in Python's default JSON spacing (`"model": "x"`), as some compatible servers write."""
    lines = []
    for data in _events(raw):
        lines.append(b"data: " + (data if data == b"[DONE]" else json.dumps(json.loads(data)).encode()))
    return b"\n\n".join(lines) + b"\n\n"


def _without_usage_null(raw: bytes) -> bytes:
    """The same stream as an upstream writes it when usage was not asked for (no `usage: null` member)."""
    return raw.replace(b',"usage":null', b"")


def _translate_both(raw: bytes) -> tuple[list[ChatItem], list[Chunk]]:
    verbatim, canonical = VerbatimTranslator("openai"), StreamTranslator("openai")
    items: list[ChatItem] = []
    chunks: list[Chunk] = []
    for data in _events(raw):
        items.extend(verbatim.feed(data))
        chunks.extend(canonical.feed(data))
    assert verbatim.done and canonical.done
    return items, chunks


def _sent(encoder: ChatEncoder, batch: list[Any]) -> list[Any]:
    """What the client reads from one batch: each SSE event's JSON."""
    wire = encoder.encode(batch)
    assert wire == b"" or wire.endswith(b"\n\n")
    return [json.loads(event[len(b"data: ") :]) for event in wire.split(b"\n\n") if event]


def test_golden_plain_content_chunks_are_kept_verbatim_and_the_rest_normalised() -> None:
    items, chunks = _translate_both(FIXTURE.read_bytes())
    kinds = ["verbatim" if isinstance(item, VerbatimChunk) else "chunk" for item in items]
    # role + two texts verbatim; the tool call's two fragments, the finish and the usage normalised
    assert kinds == ["verbatim"] * 3 + ["chunk"] * 4
    verbatim = [item for item in items if isinstance(item, VerbatimChunk)]
    assert [(v.model, v.index, v.usage_null) for v in verbatim] == [(UPSTREAM_MODEL, 0, True)] * 3
    assert [json.loads(v.data) for v in verbatim] == chunks[:3], "kept only where normalising changes nothing"
    assert items[3:] == chunks[3:]


@pytest.mark.parametrize("include_usage", [False, True])
@pytest.mark.parametrize("legacy_answer", [False, True])
@pytest.mark.parametrize("target", ["openai/gpt-4o", UPSTREAM_MODEL, 'a"quoted\\/model'])
@pytest.mark.parametrize("variant", [lambda raw: raw, _spaced, _without_usage_null])
def test_the_client_reads_the_same_events_either_way(
    include_usage: bool, legacy_answer: bool, target: str, variant: Any
) -> None:
    """Every event the verbatim relay writes parses to exactly what the canonical path writes, for compact
    and spaced upstreams, with and without `usage: null`, whatever the client asked and the target's name."""
    items, chunks = _translate_both(variant(FIXTURE.read_bytes()))
    fast = ChatEncoder(target, include_usage, legacy_answer)
    slow = ChatEncoder(target, include_usage, legacy_answer)
    for item, chunk in zip(items, chunks, strict=True):
        assert _sent(fast, [item]) == _sent(slow, [chunk])
    assert _sent(fast, items) == _sent(ChatEncoder(target, include_usage, legacy_answer), chunks)


def test_a_compact_content_chunk_goes_out_as_its_own_bytes() -> None:
    """No re-encoding: the upstream's member order, spelling and extra fields stay; only `model` changes
    (and `usage: null` goes when the client did not ask for usage). A `"model":"x"` inside the text stays."""
    items, _ = _translate_both(FIXTURE.read_bytes())
    third = items[2]
    assert isinstance(third, VerbatimChunk)
    wire = ChatEncoder("openai/gpt-4o", False, False).encode([third])
    expected = third.data.replace(b'"model":"gpt-4o-2024-08-06"', b'"model":"openai/gpt-4o"')
    assert wire == b"data: " + expected.replace(b',"usage":null', b"") + b"\n\n"
    assert b'\\"model\\":\\"x\\"' in wire and b'"obfuscation":"p"' in wire
    asked = ChatEncoder("openai/gpt-4o", True, False).encode([third])
    assert asked == b"data: " + expected + b"\n\n"


@pytest.mark.parametrize(
    ("chunk", "why"),
    [
        ({"choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": "stop"}]}, "finishes"),
        ({"choices": [{"index": 0, "delta": {"reasoning": "hm"}, "finish_reason": None}]}, "reasoning"),
        ({"choices": [{"index": 0, "delta": {"content": [{"type": "text", "text": "a"}]}}]}, "content list"),
        ({"choices": [{"index": 0, "delta": {"content": 1}, "finish_reason": None}]}, "content not text"),
        ({"choices": [{"index": 0, "delta": {"content": "a"}, "content_filter_results": {}}]}, "filter"),
        ({"choices": [{"index": 0, "delta": {"content": "a"}}], "x_groq": {"id": "x"}}, "groq extra"),
        ({"choices": [{"index": 0, "delta": {"content": "a"}}], "usage": {"total_tokens": 1}}, "usage"),
        ({"choices": [{"index": 0, "delta": {}}, {"index": 1, "delta": {}}]}, "two choices"),
        ({"choices": [], "usage": None}, "no choice"),
        ({"choices": [{"index": "0", "delta": {"content": "a"}}]}, "index not a number"),
        ({"choices": [{"index": 0, "delta": {"content": "a"}}], "object": "other"}, "another object"),
        ({"choices": [{"index": 0, "delta": {"content": "a"}}], "model": None}, "no model"),
    ],
)
def test_chunks_normalisation_would_change_are_not_kept_verbatim(chunk: dict[str, Any], why: str) -> None:
    parsed = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m", **chunk}
    assert verbatim_chunk(parsed, json.dumps(parsed).encode()) is None, why


def test_an_error_event_still_fails_the_stream() -> None:
    with pytest.raises(GatewayError) as failed:
        VerbatimTranslator("openai").feed(b'{"error":{"message":"overloaded"}}')
    assert failed.value.status == 502 and "overloaded" in failed.value.message
    with pytest.raises(GatewayError) as garbage:
        VerbatimTranslator("openai").feed(b'{"choices":[{"index":0,"delta":{"content":"a"')
    assert garbage.value.code == "upstream_bad_response"


def test_a_stream_of_only_verbatim_chunks_is_not_complete() -> None:
    """Cut-stream detection: content chunks open their choice; only a finish (always normalised) closes it."""
    items, _ = _translate_both(FIXTURE.read_bytes())
    call = Call("req_1", "chat.completions", None, "openai/gpt-4o", {}, 0.0)
    progress = ChunkProgress(call)
    progress.see(items[:3])
    assert not progress.complete
    progress.see(items[3:])
    assert progress.complete and call.usage is not None and call.usage["total_tokens"] == 19


# -- the content template: later text chunks recognised by the bytes of one parsed before ----------------

HEAD = (
    b'{"id":"chatcmpl-T","object":"chat.completion.chunk","created":1,"model":"gpt-4o","service_tier":"default",'
    b'"choices":[{"index":0,"delta":{"content":'
)


def _text_chunk(string: bytes, pad: bytes = b"Zk3") -> bytes:
    """A text chunk as OpenAI writes it, `string` being the raw JSON text of the content."""
    return (
        HEAD + string + b'},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"' + pad + b'"}'
    )


def _learnt() -> VerbatimTranslator:
    translator = VerbatimTranslator("openai")
    [first] = translator.feed(_text_chunk(b'"Hello"'))
    assert isinstance(first, VerbatimChunk) and translator.template is not None
    return translator


@pytest.mark.parametrize(
    "string",
    [b'" world"', b'""', b'"caf\\u00e9 \\"q\\" \\\\ \\/ \\n\\t"', '"naïve ✓"'.encode(), b'"\\ud83d\\ude00"'],
)
def test_a_later_text_chunk_is_relayed_as_the_full_parse_would_relay_it(string: bytes) -> None:
    data = _text_chunk(string, pad=b"a+/=_-9")
    [item] = _learnt().feed(data)
    assert isinstance(item, VerbatimChunk) and item.data == data
    assert (item.model, item.index, item.usage_null) == ("gpt-4o", 0, True)
    assert verbatim_chunk(json.loads(data), data) is not None, "the full check agrees"


@pytest.mark.parametrize(
    ("string", "what"),
    [
        (b'"a\x01b"', "a raw control character"),
        (b'"a\\xb"', "an escape JSON does not have"),
        (b'"a\\u12"', "a short unicode escape"),
        (b'"caf\xc3"', "invalid UTF-8"),
        (b'"a" "b"', "two strings"),
        (b'"unterminated', "an unterminated string"),
    ],
)
def test_garbage_in_a_later_text_chunk_still_fails_the_stream(string: bytes, what: str) -> None:
    """The template accepts only JSON; anything else goes to the full parse, which refuses it."""
    with pytest.raises(GatewayError) as failed:
        _learnt().feed(_text_chunk(string))
    assert failed.value.code == "upstream_bad_response", what


@pytest.mark.parametrize(
    "data",
    [
        _text_chunk(b'"x"').replace(b'"finish_reason":null', b'"finish_reason":"stop"'),
        _text_chunk(b'"x"').replace(b'"model":"gpt-4o"', b'"model":"gpt-4o-mini"'),
        _text_chunk(b'"x"').replace(b'"usage":null', b'"usage":{"total_tokens":3}'),
        _text_chunk(b'"x"').replace(b'"delta":{"content":"x"}', b'"delta":{"content":"x","reasoning":"r"}'),
        _text_chunk(b'"x"', pad=b"not safe!"),
    ],
    ids=["finish", "other model", "usage", "another delta field", "odd pad"],
)
def test_a_chunk_that_differs_outside_its_text_is_parsed(data: bytes) -> None:
    """What the learnt translator makes of it is what a fresh one (no template: the full parse) makes."""
    assert _view(_learnt().feed(data)) == _view(VerbatimTranslator("openai").feed(data))


def _view(items: list[ChatItem]) -> list[Any]:
    return [(i.data, i.model, i.index, i.usage_null) if isinstance(i, VerbatimChunk) else i for i in items]


def test_nothing_after_done_is_relayed_even_if_it_fits_the_template() -> None:
    translator = _learnt()
    assert translator.feed(b"[DONE]") == []
    assert translator.feed(_text_chunk(b'"late"')) == []


# -- runs: a read's consecutive text chunks cross the relay as one item (`VerbatimReader`) ---------------


def _read_all(reader: VerbatimReader, translator: VerbatimTranslator, reads: list[bytes]) -> list[ChatItem]:
    items: list[ChatItem] = []
    for read in reads:
        for event in reader.feed(read):
            items.extend(translator.feed(event))
    for event in reader.flush():
        items.extend(translator.feed(event))
    return items


def _burst(strings: list[bytes]) -> bytes:
    return b"".join(b"data: " + _text_chunk(s) + b"\n\n" for s in strings)


def test_a_burst_of_text_chunks_in_one_read_becomes_one_run() -> None:
    translator = VerbatimTranslator("openai")
    reader = VerbatimReader(translator)
    first = b"data: " + _text_chunk(b'"Hello"') + b"\n\n"
    items = _read_all(
        reader, translator, [first, _burst([b'" a"', b'" b"', b'" \\"c\\""']) + b"data: [DONE]\n\n"]
    )
    assert [i.count if isinstance(i, VerbatimChunk) else i for i in items] == [1, 3]
    run = items[1]
    assert isinstance(run, VerbatimChunk) and translator.done
    assert run.data.split(b"\n\ndata: ") == [_text_chunk(s) for s in (b'" a"', b'" b"', b'" \\"c\\""')]


def test_a_chunk_that_breaks_the_template_splits_the_run_and_is_parsed_in_its_place() -> None:
    translator = VerbatimTranslator("openai")
    reader = VerbatimReader(translator)
    finish = _text_chunk(b'""').replace(b'"finish_reason":null', b'"finish_reason":"stop"')
    read = _burst([b'"a"', b'"b"']) + b"data: " + finish + b"\n\n" + _burst([b'"c"', b'"d"'])
    items = _read_all(reader, translator, [b"data: " + _text_chunk(b'"Hello"') + b"\n\n", read])
    shape = [i.count if isinstance(i, VerbatimChunk) else "parsed" for i in items]
    assert shape == [1, 2, "parsed", 2]


@pytest.mark.parametrize("include_usage", [False, True])
@pytest.mark.parametrize("target", ["openai/gpt-4o", "gpt-4o", 'a"quoted\\/model'])
def test_a_run_goes_out_as_its_chunks_would_one_by_one(include_usage: bool, target: str) -> None:
    strings = [b'" a"', b'""', '"naïve ✓"'.encode(), b'"\\ud83d\\ude00 {}"', b'"}\\n\\ndata: x"']
    for usage_null in (True, False):
        chunks = [_text_chunk(s) for s in strings]
        if not usage_null:
            chunks = [c.replace(b',"usage":null', b"") for c in chunks]
        run = VerbatimChunk(b"\n\ndata: ".join(chunks), "gpt-4o", 0, usage_null, len(chunks))
        _assert_sent_as_one_by_one(run, chunks, usage_null, target, include_usage)


def _assert_sent_as_one_by_one(
    run: VerbatimChunk, events: list[bytes], usage_null: bool, target: str, include_usage: bool
) -> None:
    """The chat door writes `run` as the same bytes as its `events` one by one, and the client reads each
    event with `model` naming the target and `usage: null` as it asked."""
    one_by_one = [VerbatimChunk(e, "gpt-4o", 0, usage_null) for e in events]
    fast = ChatEncoder(target, include_usage, False).encode([run])
    assert fast == ChatEncoder(target, include_usage, False).encode(one_by_one)
    expected = [json.loads(e) | {"model": target} for e in events]
    for event in expected:
        if include_usage:
            event["usage"] = None
        else:
            event.pop("usage", None)
    assert _sent(ChatEncoder(target, include_usage, False), [run]) == expected


FRAMED_STRINGS = [
    b'" a"',
    b'""',
    '"naïve ✓"'.encode(),
    b'"\\ud83d\\ude00 {}"',
    b'"}\\n\\ndata: x"',
    b'"\\u0022"',
]
FRAMED_PADS = [b"Zk3", b"", b"a+/=_-9", b"Q", b"zz", b"0"]


def _framed_layout(chunk: bytes, layout: str) -> bytes:
    if layout in ("unpadded", "neither"):
        head, _, rest = chunk.partition(b',"obfuscation":"')
        chunk = head + rest[rest.index(b'"') + 1 :]
    if layout in ("no usage null", "neither"):
        chunk = chunk.replace(b',"usage":null', b"")
    return chunk


@pytest.mark.parametrize("include_usage", [False, True])
@pytest.mark.parametrize("target", ["openai/gpt-4o", "gpt-4o", 'a"quoted\\/model'])
@pytest.mark.parametrize("layout", ["padded", "unpadded", "no usage null", "neither"])
def test_a_framed_run_goes_out_as_its_chunks_would_one_by_one(
    include_usage: bool, target: str, layout: str
) -> None:
    """A burst's run is kept as the template's frame around its strings (and pads) and written out in one
    join: the same bytes as its events relayed one by one, whatever the pads, the layout and the client."""
    events = [
        _framed_layout(_text_chunk(s, p), layout) for s, p in zip(FRAMED_STRINGS, FRAMED_PADS, strict=True)
    ]
    translator = VerbatimTranslator("openai")
    reader = VerbatimReader(translator)
    first = b"data: " + _framed_layout(_text_chunk(b'"Hello"'), layout) + b"\n\n"
    burst = b"".join(b"data: " + e + b"\n\n" for e in events) + b"data: [DONE]\n\n"
    items = _read_all(reader, translator, [first, burst])
    assert [i.count if isinstance(i, VerbatimChunk) else i for i in items] == [1, len(events)]
    run = items[1]
    assert isinstance(run, VerbatimChunk) and run.frame is not None
    assert (run.pads is not None) == (layout in ("padded", "no usage null"))
    assert run.data == b"\n\ndata: ".join(events)
    _assert_sent_as_one_by_one(run, events, layout in ("padded", "unpadded"), target, include_usage)


@pytest.mark.parametrize("include_usage", [False, True])
def test_a_frame_the_door_cannot_rewrite_in_its_parts_goes_out_through_its_joined_data(
    include_usage: bool,
) -> None:
    """With `model` after the string (in the frame's tail) or twice, the door cannot rewrite the constant
    parts alone; it rewrites the joined events instead, with the same result."""
    head = b'{"id":"c","choices":[{"index":0,"delta":{"content":'
    for tail in (b'}}],"model":"gpt-4o","usage":null}', b'}}],"model":"gpt-4o","usage":null,"usage":null}'):
        frame = TextFrame(head, tail)
        texts = [b'"a"', b'"b"']
        run = VerbatimChunk.framed(frame, texts, None, "gpt-4o", 0, True)
        events = [head + t + tail for t in texts]
        one_by_one = [VerbatimChunk(e, "gpt-4o", 0, True) for e in events]
        encoder = ChatEncoder("openai/gpt-4o", include_usage, False)
        assert encoder.encode([run]) == ChatEncoder("openai/gpt-4o", include_usage, False).encode(one_by_one)
        assert b'"model":"openai/gpt-4o"' in encoder.encode([run])


@pytest.mark.parametrize(
    ("where", "twice"),
    [(b'"choices"', b'"model":"gpt-4o","choices"'), (b',"obfuscation"', b',"usage":null,"obfuscation"')],
    ids=["model", "usage"],
)
def test_a_chunk_with_a_member_the_run_rewrite_touches_twice_teaches_no_template(
    where: bytes, twice: bytes
) -> None:
    """JSON lets a key repeat; the chat door rewrites `model` and `usage: null` in a whole run at once, which
    is exact only when each is there once in every event: such a chunk is relayed, but never learnt from."""
    data = _text_chunk(b'"a"').replace(where, twice, 1)
    translator = VerbatimTranslator("openai")
    [item] = translator.feed(data)
    assert isinstance(item, VerbatimChunk) and translator.template is None


def test_invalid_utf8_in_a_run_still_fails_the_stream() -> None:
    translator = VerbatimTranslator("openai")
    reader = VerbatimReader(translator)
    with pytest.raises(GatewayError) as failed:
        _read_all(
            reader,
            translator,
            [b"data: " + _text_chunk(b'"Hello"') + b"\n\n", _burst([b'"ok"', b'"caf\xc3"'])],
        )
    assert failed.value.code == "upstream_bad_response"


def test_a_run_after_done_is_not_relayed() -> None:
    translator = VerbatimTranslator("openai")
    reader = VerbatimReader(translator)
    read = b"data: [DONE]\n\n" + _burst([b'"late"', b'"later"'])
    items = _read_all(reader, translator, [b"data: " + _text_chunk(b'"Hello"') + b"\n\n", read])
    assert [i.count for i in items if isinstance(i, VerbatimChunk)] == [1]


def test_a_whole_stream_in_its_first_read_is_learnt_from_and_relayed_as_one_run() -> None:
    """A burst brings everything in one read, before the translator has seen a text chunk: the reader learns
    the template from the read's first text chunk, which then leads the run."""
    translator = VerbatimTranslator("openai")
    reader = VerbatimReader(translator)
    role = b"data: " + _text_chunk(b'""').replace(b'"delta":{', b'"delta":{"role":"assistant",') + b"\n\n"
    items = _read_all(reader, translator, [role + _burst([b'"a"', b'"b"', b'"c"']) + b"data: [DONE]\n\n"])
    assert [i.count if isinstance(i, VerbatimChunk) else i for i in items] == [1, 3]
    assert isinstance(items[1], VerbatimChunk) and items[1].data.startswith(_text_chunk(b'"a"'))


def test_a_reader_whose_first_text_chunk_is_garbage_leaves_it_to_the_translator_to_refuse() -> None:
    translator = VerbatimTranslator("openai")
    reader = VerbatimReader(translator)
    read = b'data: {"delta":{"content":"x"\n\n' + _burst([b'"a"'])
    with pytest.raises(GatewayError) as failed:
        _read_all(reader, translator, [read])
    assert failed.value.code == "upstream_bad_response"


# -- any stream, cut into reads anywhere: the reader's shortcuts never change what the client reads --------

_GOOD_TEXTS = [
    b'"a"',
    b'" world"',
    b'""',
    b'"caf\\u00e9 \\"q\\" \\\\ \\/ \\n\\t"',
    '"naïve ✓"'.encode(),
    b'"\\ud83d\\ude00"',
    b'"data: {\\"id\\":1}"',
    b'"\\n\\ndata: x"',
]
_BAD_TEXTS = [b'"caf\xc3"', b'"raw\x01control"', b'"\\ud83d"']
_PADS = [b"Zk3", b"", b"ab+/=_-9"]
_USAGE = (
    b'{"id":"chatcmpl-T","object":"chat.completion.chunk","created":1,"model":"gpt-4o",'
    b'"service_tier":"default","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}'
)
_TOOL = (
    b'{"id":"chatcmpl-T","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,'
    b'"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]},'
    b'"logprobs":null,"finish_reason":null}],"usage":null}'
)


def _random_event(rng: random.Random) -> bytes:
    def text() -> bytes:
        return _text_chunk(rng.choice(_GOOD_TEXTS), rng.choice(_PADS))

    kind = rng.choices(
        [
            "text",
            "tool",
            "comment",
            "commented",
            "blank",
            "spaced",
            "crlf",
            "bad",
            "garbage",
            "usage",
            "done",
        ],
        weights=[60, 3, 3, 3, 3, 3, 2, 1, 1, 2, 1],
    )[0]
    if kind == "text":
        return b"data: " + text() + b"\n\n"
    if kind == "tool":
        return b"data: " + _TOOL + b"\n\n"
    if kind == "comment":
        return b": keep-alive\n\n"
    if kind == "commented":  # a comment line and a text chunk in one event
        return b": ping\ndata: " + text() + b"\n\n"
    if kind == "two data lines":  # whose data is both lines: no JSON
        return b"data: [1]\ndata: " + text() + b"\n\n"
    if kind == "other head":  # a text chunk of another time (some servers stamp every chunk)
        return b"data: " + text().replace(b'"created":1,', b'"created":2,') + b"\n\n"
    if kind == "blank":  # an empty event: three LFs in a row
        return b"\n"
    if kind == "spaced":
        return b"data: " + json.dumps(json.loads(text())).encode() + b"\n\n"
    if kind == "crlf":
        return b"data: " + text() + b"\r\n\r\n"
    if kind == "bad":
        return b"data: " + _text_chunk(rng.choice(_BAD_TEXTS)) + b"\n\n"
    if kind == "garbage":
        return b'data: {"oops\n\n'
    if kind == "usage":
        return b"data: " + _USAGE + b"\n\n"
    return b"data: [DONE]\n\n"


def _random_stream(rng: random.Random) -> bytes:
    role = _text_chunk(b'""').replace(b'"delta":{', b'"delta":{"role":"assistant",')
    finish = _text_chunk(b'""').replace(b'"finish_reason":null', b'"finish_reason":"stop"')
    middle = b"".join(_random_event(rng) for _ in range(rng.randint(0, 40)))
    return (
        b"data: "
        + role
        + b"\n\n"
        + middle
        + b"data: "
        + finish
        + b"\n\ndata: "
        + _USAGE
        + b"\n\ndata: [DONE]\n\n"
    )


def _random_reads(raw: bytes, rng: random.Random) -> list[bytes]:
    how = rng.choice(["whole", "events", "cuts", "bytes"])
    if how == "whole":
        return [raw]
    if how == "events":
        return [event + b"\n\n" for event in raw.split(b"\n\n")[:-1]]
    if how == "bytes" and len(raw) < 3000:
        return [raw[at : at + 1] for at in range(len(raw))]
    cuts = sorted(rng.sample(range(1, len(raw)), min(len(raw) - 1, rng.randint(1, 6))))
    return [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]


def _outcome(reads: list[bytes], fast: bool, target: str, include_usage: bool) -> tuple[Any, str | None]:
    """What the client reads from the stream's events, and the error code that ends it (None: no error)."""
    items: list[Any] = []
    try:
        if fast:
            translator = VerbatimTranslator("openai")
            items = _read_all(VerbatimReader(translator), translator, reads)
        else:
            canonical, sse = StreamTranslator("openai"), SSEData()
            for read in reads:
                for data in sse.feed(read):
                    items.extend(canonical.feed(data))
            for data in sse.flush():
                items.extend(canonical.feed(data))
    except GatewayError as error:
        return None, error.code
    return _sent(ChatEncoder(target, include_usage, False), items), None


@pytest.mark.parametrize("seed", range(300))
def test_any_stream_in_any_reads_reaches_the_client_as_the_full_parse_sends_it(seed: int) -> None:
    """Differential: the chat door's reader (a read's events cut out at once by the template, runs, the
    translator's template match) against the plain parse of every event, over random streams (text chunks
    with escapes, pads and bad UTF-8, another head, comments, empty events, CRLF, other spacing, tool calls,
    garbage, events after [DONE]) cut into reads anywhere."""
    rng = random.Random(seed)
    raw = _random_stream(rng)
    reads = _random_reads(raw, rng)
    target, include_usage = rng.choice(["openai/gpt-4o", "gpt-4o"]), rng.random() < 0.5
    assert _outcome(reads, True, target, include_usage) == _outcome(reads, False, target, include_usage)


def test_a_later_read_led_by_a_text_chunk_of_another_head_sends_that_chunk_as_it_came() -> None:
    """The read scan compares the rest of every head in a read with the template's: a text chunk stamped
    with another time, first in its read, is not written with the template's head."""
    role = _text_chunk(b'""').replace(b'"delta":{', b'"delta":{"role":"assistant",')
    first = b"data: " + role + b"\n\n" + _burst([b'"a"', b'"b"'])
    other = _text_chunk(b'"c"').replace(b'"created":1,', b'"created":2,')
    later = b"data: " + other + b"\n\n" + _burst([b'"d"', b'"e"'])
    fast, error = _outcome([first, later], True, "gpt-4o", False)
    assert error is None and fast == _outcome([first, later], False, "gpt-4o", False)[0]
    assert [event["created"] for event in fast] == [1, 1, 1, 2, 1, 1]


@pytest.mark.parametrize("count", [1, 2, 7])
@pytest.mark.parametrize("padded", [False, True])
def test_a_text_frame_writes_each_event_as_head_string_tail_pad_end(count: int, padded: bool) -> None:
    frame = TextFrame(b"H{", b"}T", b"E" if padded else b"")
    texts = [f'"t{n}"'.encode() for n in range(count)]
    pads = [b"p" * n for n in range(count)] if padded else None
    events = [b"H{" + t + b"}T" + (pads[n] + b"E" if pads else b"") for n, t in enumerate(texts)]
    assert frame.write(texts, pads, b"\n\n") == b"\n\n".join(events)


def test_a_text_frame_refuses_pads_that_are_not_one_per_text() -> None:
    with pytest.raises(ValueError):
        TextFrame(b"H", b"T", b"E").write([b'"a"', b'"b"'], [b"p"], b"")


def test_streams_of_one_layout_share_their_template_patterns_whatever_their_ids() -> None:
    """The patterns are built once per layout (the head from `"choices":` on, the tail) and kept by the
    provider's `TemplatePatterns`: a later stream, with its own id and time, compiles nothing."""
    from asgi_llm_gateway.providers.openai._template import TemplatePatterns

    patterns = TemplatePatterns()
    templates = []
    for stream_id, created in ((b"chatcmpl-A", b"1"), (b"chatcmpl-B", b"2")):
        translator = VerbatimTranslator("openai", patterns)
        chunk = (
            _text_chunk(b'"Hi"')
            .replace(b"chatcmpl-T", stream_id)
            .replace(b'"created":1', b'"created":' + created)
        )
        translator.feed(chunk)
        assert translator.template is not None
        templates.append(translator.template)
    first, second = templates
    assert first._scan is second._scan and first._tail is second._tail
    assert first._rest != second._rest and second._rest.startswith(b'data: {"id":"chatcmpl-B"')
