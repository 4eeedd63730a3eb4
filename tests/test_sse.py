from __future__ import annotations

import json

import pytest

from asgi_llm_gateway.sse import ServerSentEvent, SSEData, SSEDecoder


def decode_all(*chunks: bytes) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    return events + decoder.flush()


def test_single_data_event() -> None:
    assert decode_all(b"data: hello\n\n") == [ServerSentEvent(data="hello")]


def test_u2028_inside_json_does_not_split_the_event() -> None:
    """Regression: httpx's aiter_lines() splits on U+2028; the SSE spec only ends lines at CR/LF."""
    payload = json.dumps({"text": "a\u2028b\u2029c\x85d"}, ensure_ascii=False)
    (event,) = decode_all(f"data: {payload}\n\n".encode())
    assert json.loads(event.data)["text"] == "a\u2028b\u2029c\x85d"


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending(newline: bytes) -> None:
    raw = b"event: ping" + newline + b"data: 1" + newline + newline + b"data: 2" + newline + newline
    assert decode_all(raw) == [ServerSentEvent(data="1", event="ping"), ServerSentEvent(data="2")]


def test_crlf_split_across_reads() -> None:
    assert decode_all(b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n") == [
        ServerSentEvent(data="a"),
        ServerSentEvent(data="b"),
    ]


def test_byte_by_byte_with_multibyte_characters() -> None:
    raw = "data: héllo ✓\n\n".encode()
    assert decode_all(*[raw[i : i + 1] for i in range(len(raw))]) == [ServerSentEvent(data="héllo ✓")]


def test_multi_line_data_joins_with_newline() -> None:
    assert decode_all(b"data: a\ndata: b\n\n") == [ServerSentEvent(data="a\nb")]


def test_comments_and_keep_alives_are_skipped() -> None:
    assert decode_all(b": keep-alive\n\n\n\ndata: x\n\n") == [ServerSentEvent(data="x")]


def test_field_without_space_and_id() -> None:
    assert decode_all(b"id: 7\nevent:message_start\ndata:{}\n\n") == [
        ServerSentEvent(data="{}", event="message_start", id="7")
    ]


def test_event_missing_final_blank_line_is_flushed() -> None:
    assert decode_all(b"data: last\n") == [ServerSentEvent(data="last")]


def test_partial_last_line_of_a_cut_stream_is_dropped() -> None:
    assert decode_all(b'data: {"a": 1}\n\ndata: {"tru') == [ServerSentEvent(data='{"a": 1}')]


def test_lines_that_are_no_field_go_to_on_other_line() -> None:
    other: list[str] = []
    decoder = SSEDecoder(on_other_line=other.append)
    events = decoder.feed(b'data: 1\nretry: 5\nid: x\n: comment\n{"error": {\n\n  "code": 1}\n')
    events += decoder.feed(b"event: e\ndata: 2\n\n}")
    events += decoder.flush()
    assert [event.data for event in events] == ["1", "2"]
    assert other == ['{"error": {', '  "code": 1}', "}"]  # the unterminated last line too, at the end


def test_a_cut_data_line_is_not_handed_to_on_other_line() -> None:
    other: list[str] = []
    decoder = SSEDecoder(on_other_line=other.append)
    assert decoder.feed(b'data: {"a": 1}\n\ndata: {"tru') == [ServerSentEvent(data='{"a": 1}')]
    assert decoder.flush() == [] and other == []


# -- SSEData: each event's data as bytes, the same events SSEDecoder finds --------------------------------

_STREAMS = [
    b'data: {"a":1}\n\ndata: {"b":2}\n\ndata: [DONE]\n\n',
    b": keep-alive\n\n\n\ndata: x\n\n",
    b"data: a\ndata: b\n\n",
    b"event: ping\ndata: 1\n\ndata: 2\n\n",
    b"id: 7\nevent:message_start\ndata:{}\n\n",
    b"data: a\r\n\r\ndata: b\r\n\r\n",
    b"data: a\n\n\ndata: b\n\n",
    "data: héllo ✓\u2028\n\n".encode(),
    b"data: complete line, no blank line\n",
    b"data: whole\n\ndata: cut mid-li",
    b"data:\n\n",
    b"retry: 10\n\ndata: after retry\n\n",
]


def data_all(*chunks: bytes) -> list[bytes]:
    reader = SSEData()
    data: list[bytes] = []
    for chunk in chunks:
        data.extend(reader.feed(chunk))
    return data + reader.flush()


@pytest.mark.parametrize("raw", _STREAMS)
@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_sse_data_finds_the_data_of_the_events_the_decoder_finds(raw: bytes, size: int) -> None:
    """Read whole or in pieces of `size` bytes, the fast reader agrees with `SSEDecoder` on every stream."""
    pieces = [raw[i : i + size] for i in range(0, len(raw), size)]
    assert data_all(*pieces) == [event.data.encode() for event in decode_all(*pieces)]


_MIXED = [
    b": ping\r\n\ndata: a\n\ndata: b\n\n",  # one CRLF line in an LF stream
    b"data: a\r\rdata: b\r\r",  # lone CRs only
    b"data: a\r\n\r\ndata: b\n\ndata: c\r\n\r\n",  # CRLF and LF blank lines
    b"data: a\r\ndata: b\r\n\r\ndata: c\r\n\r\n",  # an event of two CRLF lines
    b"data: a\n\r\ndata: b\r\n\r\n",  # LF then CRLF: a blank line
]


@pytest.mark.parametrize("raw", _STREAMS + _MIXED)
@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_sse_data_hands_each_event_over_as_soon_as_the_decoder_does(raw: bytes, size: int) -> None:
    """Regression: a CR anywhere in an LF stream (or lone CRs) left every event waiting for the stream's end,
    because the fast reader looked only for CRLF blank lines. After every read, the fast reader has given
    exactly the events `SSEDecoder` has completed by then; only a read that ends in a CR may keep one back,
    since that CR may be the first half of a CRLF."""
    fast, decoder = SSEData(), SSEDecoder()
    given: list[bytes] = []
    completed: list[bytes] = []
    for start in range(0, len(raw), size):
        piece = raw[start : start + size]
        given += fast.feed(piece)
        completed += [event.data.encode() for event in decoder.feed(piece)]
        if not piece.endswith(b"\r"):
            assert given == completed
    assert given + fast.flush() == completed + [event.data.encode() for event in decoder.flush()]


def test_sse_data_keeps_the_bytes_of_a_plain_event() -> None:
    """The common event comes out as a slice of the read, not decoded and encoded again."""
    assert data_all(b'data: {"x":"\xc3\xa9"}\n\ndata: [DONE]\n\n') == [b'{"x":"\xc3\xa9"}', b"[DONE]"]


# -- SSEDecoder's whole-event path: the same events as reading every line ---------------------------------


class LineByLine(SSEDecoder):
    """The decoder with its whole-event path turned off: every line read as the spec's algorithm reads it."""

    def _whole_events(self, buffer: bytes) -> list[ServerSentEvent]:
        events, self._buffer = self._lines(buffer)
        return events


_EVENT_STREAMS = [
    *_STREAMS,
    b'event: message_start\ndata: {"type":"message_start"}\n\nevent: ping\ndata: {"type": "ping"}\n\n',
    b"event: \ndata: unnamed\n\nevent: a:b\ndata: c\n\n",
    b"event: a\ndata: b\ndata: c\n\nevent: a\nid: 3\ndata: b\n\ndata: keeps id 3\n\n",
    b'id: 1\n\n{"error": {\n  "code": 500}\n}\n\ndata: after\n\n',
    b"event: x\r\ndata: crlf\r\n\r\nevent: y\ndata: lf\n\n",
    b"data:nospace\n\nevent:nospace\ndata: y\n\n",
    "event: é\ndata: ✓\n\n".encode(),
    b"event: only a name\n\ndata: then data\n\n",
]


@pytest.mark.parametrize("raw", _EVENT_STREAMS)
@pytest.mark.parametrize("size", [1, 2, 5, 13, 1000])
def test_whole_events_are_read_as_the_line_by_line_algorithm_reads_them(raw: bytes, size: int) -> None:
    pieces = [raw[i : i + size] for i in range(0, len(raw), size)]
    fast_other: list[str] = []
    slow_other: list[str] = []
    fast, slow = SSEDecoder(on_other_line=fast_other.append), LineByLine(on_other_line=slow_other.append)
    fast_events = [event for piece in pieces for event in fast.feed(piece)] + fast.flush()
    slow_events = [event for piece in pieces for event in slow.feed(piece)] + slow.flush()
    assert fast_events == slow_events
    assert fast_other == slow_other
