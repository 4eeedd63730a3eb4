"""Text deltas of a native Responses stream relayed as the bytes the upstream sent, checked by a template.

Most of an OpenAI Responses stream is `response.output_text.delta` events that differ only in their
sequence number, their text and their `obfuscation` pad:

    event: response.output_text.delta
    data: {"type":"response.output_text.delta","sequence_number":12,"item_id":"msg_…","output_index":0,
           "content_index":0,"delta":"…","logprobs":[],"obfuscation":"…"}

The Responses door hands these on unchanged (they carry no `model`), so decoding each event, parsing its
JSON, checking it and encoding it again costs about 3 µs an event for bytes that leave as they came.
`NativeEventsReader` learns the layout of the first such event that parses as one (`DeltaTemplate.learn`)
and then takes a later event only if it is those bytes but for a JSON number, a JSON string (by JSON's
grammar, and UTF-8) and a pad from a safe alphabet: valid JSON with the learnt event's every field but
those three. A read's consecutive such events, their numbers increasing, cross the relay as one `EventRun`;
`ResponsesStreamTranslator` checks its state allows them (the response started, not ended, the first
number above the last) as it checks a parsed event. Anything else is decoded and parsed as before.
"""

from __future__ import annotations

import re

from ...sse import ServerSentEvent, SSEData
from ...wire import loads
from ..base import EventRun
from ..runs import JSON_STRING, valid_utf8
from ._template import PAD

__all__ = ["DeltaTemplate", "NativeEventsReader"]

#: The raw event text a text delta starts with, as OpenAI writes it.
DELTA_EVENT = b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
_SEQUENCE = b'"sequence_number":'
_DELTA = b',"delta":'
_NUMBER = rb"(0|[1-9][0-9]{0,15})"
_NUMBER_RE = re.compile(_NUMBER)
_STRING_RE = re.compile(JSON_STRING)
_PADDED = re.compile(rb',"obfuscation":"' + PAD + rb'"')
#: How many reads a reader looks for an event to learn the template from.
_TRIES = 3


class DeltaTemplate:
    """The bytes around the number, the string and the pad of one text delta event (module docstring)."""

    __slots__ = ("_rest", "head")

    def __init__(self, head: bytes, rest: re.Pattern[bytes]) -> None:
        self.head = head
        self._rest = rest

    @classmethod
    def learn(cls, part: bytes) -> DeltaTemplate | None:
        """The template of `part` (an event's raw text), or None when it is not a text delta that parses as a
        JSON object in this layout: the number and the string once each, the number first."""
        if not part.startswith(DELTA_EVENT) or part.count(_SEQUENCE) != 1 or part.count(_DELTA) != 1:
            return None
        try:
            payload = loads(part[part.index(b"\ndata: ") + 7 :])
        except ValueError:
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("delta"), str):
            return None
        number_at = part.index(_SEQUENCE) + len(_SEQUENCE)
        number = _NUMBER_RE.match(part, number_at)
        string_at = part.index(_DELTA) + len(_DELTA)
        string = _STRING_RE.match(part, string_at)
        if number is None or string is None or number.end() > string_at:
            return None
        tail = part[string.end() :]
        pad = _PADDED.search(tail)
        if pad is None:
            ending = re.escape(tail)
        else:
            ending = re.escape(tail[: pad.start(1)]) + PAD + re.escape(tail[pad.end(1) :])
        middle = re.escape(part[number.end() : string_at])
        rest = re.compile(_NUMBER + middle + JSON_STRING + ending + rb"\Z")
        return cls(part[:number_at], rest)

    def runs(self, parts: list[bytes], events: SSEData) -> list[ServerSentEvent | EventRun]:
        """A read's events (`SSEData.split`), decoded, but every run of consecutive ones that match this
        template with increasing numbers comes as one `EventRun`."""
        head, rest = self.head, self._rest.match
        start = len(head)
        items: list[ServerSentEvent | EventRun] = []
        first = other = -1  # where the current run, or the current stretch of other events, began
        low = last = 0
        for position, part in enumerate(parts):
            match = rest(part, start) if part.startswith(head) else None
            if match is not None:
                number = int(match[1])
                if first >= 0 and number > last:
                    last = number
                    continue
                # a new run: after other events, or after a number not above the last (which the
                # translator refuses, as it refuses the parsed event)
                if first >= 0:
                    items += _run(parts, first, position, low, last, events)
                if other >= 0:
                    items += events.events_of(parts[other:position])
                    other = -1
                first, low, last = position, number, number
                continue
            if first >= 0:
                items += _run(parts, first, position, low, last, events)
                first = -1
            if other < 0:
                other = position
        if first >= 0:
            items += _run(parts, first, len(parts), low, last, events)
        if other >= 0:
            items += events.events_of(parts[other:])
        return items


def _run(
    parts: list[bytes], first: int, end: int, low: int, high: int, events: SSEData
) -> list[ServerSentEvent | EventRun]:
    data = b"\n\n".join(parts[first:end]) + b"\n\n"
    if not valid_utf8(data):  # the parsed events say what is wrong
        return list(events.events_of(parts[first:end]))
    return [EventRun(data, end - first, low, high)]


class NativeEventsReader:
    """The native Responses reader (`sse.SSEData`): events decoded, but a read's runs of text deltas that
    match the stream's template as `EventRun`s. The template is learnt from a read's first text delta (one
    parse), at most `_TRIES` times a stream; that event then matches it like the others."""

    __slots__ = ("_events", "_template", "_tries")

    def __init__(self) -> None:
        self._events = SSEData()
        self._template: DeltaTemplate | None = None
        self._tries = 0

    def feed(self, chunk: bytes) -> list[ServerSentEvent | EventRun]:
        reader = self._events
        parts = reader.split(chunk)
        if parts is None:  # a stream with lone CRs: `SSEDecoder` reads it, event by event
            return list(reader.events(chunk))
        template = self._template
        if template is None and self._tries < _TRIES:
            part = next((part for part in parts if part.startswith(DELTA_EVENT)), None)
            if part is not None:
                self._tries += 1
                template = self._template = DeltaTemplate.learn(part)
        if template is None:
            return list(reader.events_of(parts))
        return template.runs(parts, reader)

    def flush(self) -> list[ServerSentEvent | EventRun]:
        return list(self._events.flush_events())
