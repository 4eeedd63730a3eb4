"""Incremental decoding of upstream Server-Sent Events.

Written here rather than taken from `httpx.Response.aiter_lines()`, which splits on every Unicode line
boundary (U+2028 inside a JSON string breaks an event in two). The SSE spec ends lines only at CR, LF or
CRLF, so this works on bytes and splits on exactly those.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["SSEData", "SSEDecoder", "ServerSentEvent"]

_FIELDS = frozenset(("data", "event", "id", "retry"))


def _field(line: str) -> str:
    return line.partition(":")[0]


@dataclass(slots=True)  # not frozen: a frozen dataclass costs three times as much to build, once per event
class ServerSentEvent:
    data: str
    event: str = "message"
    id: str | None = None


class SSEDecoder:
    """Feed it bytes as they arrive; it returns the events completed so far."""

    __slots__ = ("_buffer", "_data", "_event", "_has_data", "_id", "_on_other_line", "_pending_cr")

    def __init__(self, on_other_line: Callable[[str], None] | None = None) -> None:
        #: Called with each line that is no SSE field (the spec says to ignore those): an upstream that
        #: writes a bare error body into its stream can be caught there, at no cost to the common lines.
        self._on_other_line = on_other_line
        self._buffer = b""
        self._pending_cr = False  # a chunk ended in CR: a following LF belongs to the same line end
        self._data: list[bytes] = []  # decoded once per event, not once per line
        self._has_data = False
        self._event = ""
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._pending_cr = chunk.endswith(b"\r")
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if self._has_data or self._event:  # in the middle of an event: line by line until it ends
            events, self._buffer = self._lines(buffer)
            return events
        return self._whole_events(buffer)

    def _whole_events(self, buffer: bytes) -> list[ServerSentEvent]:
        """Between events: the usual ones (`data: …`, or `event: …` then `data: …`) are cut out whole, one
        split for the read; any other goes through `_lines`, which reads every field the spec has."""
        parts = buffer.split(b"\n\n")
        rest = parts.pop()
        events: list[ServerSentEvent] = []
        for part in parts:
            end = part.find(b"\n")
            if end < 0:
                if part.startswith(b"data: "):
                    events.append(
                        ServerSentEvent(part[6:].decode("utf-8", errors="replace"), "message", self._id)
                    )
                    continue
            elif (
                part.startswith(b"event: ")
                and part.startswith(b"data: ", end + 1)
                and part.find(b"\n", end + 1) < 0
            ):
                name = part[7:end].decode("utf-8", errors="replace") or "message"
                events.append(
                    ServerSentEvent(part[end + 7 :].decode("utf-8", errors="replace"), name, self._id)
                )
                continue
            events += self._lines(part + b"\n\n")[0]
        more, self._buffer = self._lines(rest)  # the next event's complete lines go into the state
        return events + more if more else events

    def _lines(self, buffer: bytes) -> tuple[list[ServerSentEvent], bytes]:
        """The events `buffer` completes, read line by line; and its unfinished last line."""
        events: list[ServerSentEvent] = []
        start = 0
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            if end == start:
                event = self._dispatch()
                if event is not None:
                    events.append(event)
            elif buffer.startswith(b"data:", start):  # the common line, handled inline
                value_start = start + 6 if buffer[start + 5 : start + 6] == b" " else start + 5
                self._data.append(buffer[value_start:end])
                self._has_data = True
            else:
                self._line(buffer[start:end])
            start = end + 1
        return events, buffer[start:]

    def flush(self) -> list[ServerSentEvent]:
        """End of stream: complete lines still waiting for their blank line are dispatched; a partial
        last line (the connection was cut mid-line) is dropped, so it never parses as a whole event.
        Only `on_other_line` sees an unterminated last line that is no field (bare text ending the body)."""
        rest, self._buffer = self._buffer, b""
        if rest and self._on_other_line is not None:
            line = rest.decode("utf-8", errors="replace")
            if line.strip() and _field(line) not in _FIELDS:
                self._on_other_line(line)
        event = self._dispatch()
        return [event] if event is not None else []

    def _line(self, raw: bytes) -> None:
        """Any line but a blank one or `data:` (those are handled inline in `feed`)."""
        line = raw.decode("utf-8", errors="replace")
        if line.startswith(":"):
            return  # comment / keep-alive
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":  # `data` with no colon
            self._data.append(value.encode())
            self._has_data = True
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name != "retry" and self._on_other_line is not None:
            self._on_other_line(line)

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._has_data:
            self._event = ""
            return None
        data = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
        event = ServerSentEvent(
            data=data.decode("utf-8", errors="replace"), event=self._event or "message", id=self._id
        )
        self._data = []
        self._has_data = False
        self._event = ""
        return event


class SSEData:
    """Feed it bytes as they arrive; it returns the `data` of each event completed so far, as bytes.

    For readers that tell events apart by their data alone (an OpenAI-compatible chat stream): no event
    object and no decoding per event. The common event, `data: {...}` and a blank line, is cut out of the
    read with one split; anything else (comments, other fields, several `data` lines, a leading blank line)
    goes through `SSEDecoder` one event at a time. Lines may end in LF or CRLF (Google's servers write
    CRLF); a lone CR anywhere hands the rest of the stream to `SSEDecoder`, so every event means what it
    means to `SSEDecoder`. `on_other_line` is passed on to every `SSEDecoder` this uses.

    Readers that also need the events' names or their raw text use `split`, `events_of` and `events`."""

    __slots__ = ("_buffer", "_decoder", "_on_other_line")

    def __init__(self, on_other_line: Callable[[str], None] | None = None) -> None:
        self._buffer = b""
        self._decoder: SSEDecoder | None = None  # once the stream has shown a lone CR
        self._on_other_line = on_other_line

    def feed(self, chunk: bytes) -> list[bytes]:
        parts = self.split(chunk)
        if parts is not None:
            return event_data(parts, self._on_other_line)
        return _data(self.events(chunk))

    def split(self, chunk: bytes) -> list[bytes] | None:
        """The events `chunk` completes, each as its raw text between blank lines with LF line ends
        (`event_data` and `events_of` read them), the rest kept for the next read. None, with nothing taken,
        once the stream has shown a lone CR: then `events` (or `feed`) must read it."""
        buffer = self._buffer + chunk if self._buffer else chunk
        if self._decoder is not None:
            return None
        parts = buffer.split(b"\n\n") if b"\r" not in buffer else _crlf_parts(buffer)
        if parts is None:
            return None
        self._buffer = parts.pop()  # as it came: the next read or `flush` reads it again
        return parts

    def take_events(self, chunk: bytes) -> bytes | None:
        """The whole events `chunk` completes, as one piece of raw text ending in their blank line, the rest
        kept for the next read: for a reader that scans a read's events at once rather than one by one.
        None, with nothing taken, unless there are two or more, with LF line ends alone, and the last blank
        line is not in a run of three LFs or more (where `split` would cut elsewhere); `split` then reads
        the chunk as any other. Taken, they are the events `split` would give, blank lines between them."""
        buffer = self._buffer + chunk if self._buffer else chunk
        last = buffer.rfind(b"\n\n")
        if (
            self._decoder is not None
            or buffer.find(b"\n\n") == last  # one event, or none
            or buffer[last - 1 : last] == b"\n"
            or b"\r" in buffer
        ):
            return None
        self._buffer = buffer[last + 2 :]
        return buffer[: last + 2]

    def events(self, chunk: bytes) -> list[ServerSentEvent]:
        """The events `chunk` completes, read by `SSEDecoder`: for a stream `split` refused."""
        buffer = self._buffer + chunk if self._buffer else chunk
        self._buffer = b""
        if self._decoder is None:
            self._decoder = SSEDecoder(self._on_other_line)
        return self._decoder.feed(buffer)

    def events_of(self, parts: list[bytes]) -> list[ServerSentEvent]:
        """The events of whole events given as their raw text (what `split` gives)."""
        return _events_of(b"\n\n".join(parts) + b"\n\n", self._on_other_line) if parts else []

    def flush(self) -> list[bytes]:
        """End of stream, as `SSEDecoder.flush`: a complete last line is an event, a partial one is not."""
        return _data(self.flush_events())

    def flush_events(self) -> list[ServerSentEvent]:
        """`flush`, as events."""
        if self._decoder is not None:
            return self._decoder.flush()
        rest, self._buffer = self._buffer, b""
        return _events_of(rest, self._on_other_line, flush=True) if rest else []


def _crlf_parts(buffer: bytes) -> list[bytes] | None:
    """`buffer` (which holds a CR) split at its blank lines, each event's line ends made LF; None when it has
    a lone CR (then `SSEDecoder` reads the stream). A stream written with CRLF throughout is split at its
    CRLF blank lines directly, which is cheaper than replacing every CRLF first: most events are one line,
    with no CR or LF of their own to look at. Anything else (a CRLF line in an LF stream, a mix) has every
    CRLF replaced first."""
    parts = buffer.split(b"\r\n\r\n")
    if len(parts) > 1 and _crlf_throughout(parts):
        return parts
    buffer = buffer.replace(b"\r\n", b"\n")  # a CR ending the read may be its LF's: kept as is
    if buffer.find(b"\r", 0, len(buffer) - 1) >= 0:
        return None
    return buffer.split(b"\n\n")


def _crlf_throughout(parts: list[bytes]) -> bool:
    """Whether the pieces between CRLF blank lines hold no other blank line and no lone CR; the events' own
    CRLFs are made LF on the way. The last piece (the rest) is only looked at, and kept as it came."""
    for at in range(len(parts) - 1):
        part = parts[at]
        if b"\r" in part or b"\n" in part:
            part = parts[at] = part.replace(b"\r\n", b"\n")
            if b"\r" in part or b"\n\n" in part:
                return False
    rest = parts[-1]
    if b"\r" in rest or b"\n" in rest:
        rest = rest.replace(b"\r\n", b"\n")
        return b"\n\n" not in rest and rest.find(b"\r", 0, len(rest) - 1) < 0
    return True


def event_data(parts: list[bytes], on_other_line: Callable[[str], None] | None = None) -> list[bytes]:
    """The data of whole events given as their raw text (LF line ends, no blank line): the common
    `data: {...}` cut out directly, anything else read by `SSEDecoder`."""
    data: list[bytes] = []
    for part in parts:
        if part.startswith(b"data: ") and part.find(b"\n") < 0:
            data.append(part[6:])
        elif part:
            data.extend(_data(_events_of(part + b"\n\n", on_other_line)))
    return data


def _events_of(
    raw: bytes, on_other_line: Callable[[str], None] | None, flush: bool = False
) -> list[ServerSentEvent]:
    """The events in `raw` (whole events, LF line ends), read by `SSEDecoder`."""
    decoder = SSEDecoder(on_other_line)
    events = decoder.feed(raw)
    if flush:
        events += decoder.flush()
    return events


def _data(events: list[ServerSentEvent]) -> list[bytes]:
    return [event.data.encode() for event in events]
