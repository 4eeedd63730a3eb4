"""Incremental decoding of upstream Server-Sent Events.

Written here rather than taken from `httpx.Response.aiter_lines()`, which splits on every Unicode line
boundary (U+2028 inside a JSON string breaks an event in two). The SSE spec ends lines only at CR, LF or
CRLF, so this works on bytes and splits on exactly those.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

__all__ = ["SSEDecoder", "ServerSentEvent", "aiter_sse"]


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    data: str
    event: str = "message"
    id: str | None = None


class SSEDecoder:
    """Feed it bytes as they arrive; it returns the events completed so far."""

    __slots__ = ("_buffer", "_data", "_event", "_has_data", "_id", "_pending_cr")

    def __init__(self) -> None:
        self._buffer = b""
        self._pending_cr = False  # a chunk ended in CR: a following LF belongs to the same line end
        self._data: list[str] = []
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
        events: list[ServerSentEvent] = []
        start = 0
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            event = self._line(buffer[start:end])
            if event is not None:
                events.append(event)
            start = end + 1
        self._buffer = buffer[start:]
        return events

    def flush(self) -> list[ServerSentEvent]:
        """End of stream: complete lines still waiting for their blank line are dispatched; a partial
        last line (the connection was cut mid-line) is dropped, so it never parses as a whole event."""
        self._buffer = b""
        event = self._dispatch()
        return [event] if event is not None else []

    def _line(self, raw: bytes) -> ServerSentEvent | None:
        if not raw:
            return self._dispatch()
        line = raw.decode("utf-8", errors="replace")
        if line.startswith(":"):
            return None  # comment / keep-alive
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._has_data = True
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._has_data:
            self._event = ""
            return None
        event = ServerSentEvent(data="\n".join(self._data), event=self._event or "message", id=self._id)
        self._data = []
        self._has_data = False
        self._event = ""
        return event


async def aiter_sse(chunks: AsyncIterable[bytes]) -> AsyncIterator[ServerSentEvent]:
    """Events from a byte stream, e.g. `response.aiter_raw()`."""
    decoder = SSEDecoder()
    async for chunk in chunks:
        for event in decoder.feed(chunk):
            yield event
    for event in decoder.flush():
        yield event
