"""Recognise a stream's content chunks by the bytes of one already parsed, without parsing each again.

Within one OpenAI-style stream every text chunk is the same bytes around a different string:

    head  {"id":"chatcmpl-…","object":"chat.completion.chunk","created":…,"model":"…",…,
          "choices":[{"index":0,"delta":{"content":              identical in every text chunk
    text  "…"                                                       a JSON string
    tail  },"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"…"}
                                                                    identical but the obfuscation pad

`ContentTemplate.learn` takes a chunk that was parsed and found verbatim-safe (`verbatim_chunk`), whose delta
is `{"content": …}` alone, and keeps its head and its tail. `match` then accepts a chunk only if it is
that head, one JSON string (checked against JSON's grammar, and as UTF-8), and that tail (the `obfuscation`
value may differ, from a safe alphabet): such a chunk is valid JSON with the learnt chunk's every field
but its text, so it is verbatim-safe as well. Anything else does not match and is parsed as usual.

A read's run of matches is kept as the template's `TextFrame` (head; tail up to the pad; the rest) around
its strings and pads: the chat door rewrites the frame once and writes the run in one join, where
replacing `model` and `usage` in the run's joined bytes cost two passes over all of them.
"""

from __future__ import annotations

import re

from ...memo import remember
from ...sse import event_data
from ..base import TextFrame, VerbatimChunk, model_member
from ..runs import JSON_STRING, valid_utf8

__all__ = ["DELTA_CONTENT", "PAD", "ContentTemplate", "TemplatePatterns"]

DELTA_CONTENT = b'"delta":{"content":'
_STRING = JSON_STRING
_STRING_RE = re.compile(_STRING)
#: OpenAI pads each chunk with a random `obfuscation` value (base64-like letters): the value, as a group.
PAD = rb"([A-Za-z0-9+/=_-]*)"
_OBFUSCATION = re.compile(rb'"obfuscation":"' + PAD + rb'"')


class TemplatePatterns:
    """The two patterns of each text-chunk layout a provider's streams have shown, built once.

    A layout (the head from `"choices":` on, the tail around the pad) is the same in every stream of a
    model, while escaping and compiling its patterns cost more than the rest of learning a template: a
    provider keeps one of these for all its streams (see `memo.py` for the bound)."""

    __slots__ = ("_memo",)

    def __init__(self) -> None:
        self._memo: dict[tuple[bytes, bytes, bytes | None], tuple[re.Pattern[bytes], re.Pattern[bytes]]] = {}

    def of(
        self, head_end: bytes, tail: bytes, after: bytes | None
    ) -> tuple[re.Pattern[bytes], re.Pattern[bytes]]:
        """The patterns of the layout whose head ends in `head_end` and whose tail is `tail` (then, with a
        pad, the pad and `after`): a chunk's data after the head, to its end (`ContentTemplate.match`),
        and a whole event from `head_end` on, blank line and all (`ContentTemplate.scan`)."""
        key = (head_end, tail, after)
        found = self._memo.get(key)
        if found is None:
            pattern = re.escape(tail) if after is None else re.escape(tail) + PAD + re.escape(after)
            string = b"(" + _STRING + b")"
            found = remember(
                self._memo,
                key,
                (
                    re.compile(string + pattern + rb"\Z"),
                    re.compile(re.escape(head_end) + string + pattern + b"\n\n"),
                ),
            )
        return found


class ContentTemplate:
    """The head and tail of a stream's text chunks, learnt from one of them (see the module docstring)."""

    __slots__ = ("_padded", "_rest", "_scan", "_tail", "frame", "index", "model", "usage_null")

    def __init__(
        self, frame: TextFrame, padded: bool, head_at: int, patterns: TemplatePatterns, chunk: VerbatimChunk
    ) -> None:
        #: The learnt chunk's bytes around its string (and pad): what a run of matches is kept as.
        self.frame = frame
        self._padded = padded
        # `scan` cuts a read's events with the head's end, from `head_at` (`"choices":`) on: the same in every
        # stream of a model, its pattern is built once, in `patterns`. The rest of each head (the stream's
        # id, its time) is compared as bytes.
        head, tail, end = frame
        self._tail, self._scan = patterns.of(head[head_at:], tail, end if padded else None)
        self._rest = b"data: " + head[:head_at]
        self.model, self.index, self.usage_null = chunk.model, chunk.index, chunk.usage_null

    @classmethod
    def learn(cls, chunk: VerbatimChunk, patterns: TemplatePatterns | None = None) -> ContentTemplate | None:
        """The template of `chunk` (verbatim-safe, its delta `{"content": …}` alone), or None when its bytes
        do not have that layout (another spacing, the marker twice, a null content). `patterns`: the
        provider's, kept across its streams."""
        data = chunk.data
        at = data.find(DELTA_CONTENT)
        if at < 0 or data.find(DELTA_CONTENT, at + 1) >= 0:
            return None
        if data.count(model_member(chunk.model)) != 1 or data.count(b',"usage":null') != chunk.usage_null:
            return None  # the chat door rewrites these in a whole run at once: each must be there once
        start = at + len(DELTA_CONTENT)
        string = _STRING_RE.match(data, start)
        if string is None:
            return None
        head, tail = data[:start], data[string.end() :]
        pad = _OBFUSCATION.search(tail)
        if pad is None:
            frame = TextFrame(head, tail)
        else:
            frame = TextFrame(head, tail[: pad.start(1)], tail[pad.end(1) :])
        head_at = max(head.rfind(b'"choices":'), 0)
        return cls(frame, pad is not None, head_at, patterns or TemplatePatterns(), chunk)

    def scan(self, events: bytes) -> list[bytes | VerbatimChunk] | None:
        """`runs` for a read's whole events given as one piece of text (`SSEData.take_events`), when its
        matches are one run: the events before it, the run, the events after it (a burst: the role chunk,
        the text, the finish and the usage). One regex split cuts every string of the run out at once and
        the heads between them are compared in one `list.count`, where `runs` costs one split, one
        comparison and one match per event (about half the time for a 200-event read). None when anything
        else is in the read (matches apart, a match not starting an event): then `runs` reads it."""
        pieces = self._scan.split(events)
        step = 3 if self._padded else 2  # each match gives its string (and pad) between two gaps
        gaps = pieces[::step]
        rest = self._rest
        inner = gaps[1:-1]  # between two matches: the rest of the next event's head, exactly
        if len(gaps) < 2 or inner.count(rest) != len(inner) or not gaps[0].endswith(rest):
            return None
        before, after = gaps[0][: len(gaps[0]) - len(rest)], gaps[-1]
        if before and not before.endswith(b"\n\n"):
            return None  # the first match is inside an event: no match of `runs`'s then
        texts = pieces[1::step]
        if not valid_utf8(b"".join(texts)):
            return None  # `runs` reads them one by one, and the full parse says what is wrong
        pads = pieces[2::step] if self._padded else None
        run = VerbatimChunk.framed(self.frame, texts, pads, self.model, self.index, self.usage_null)
        items: list[bytes | VerbatimChunk] = [*event_data(before[:-2].split(b"\n\n"))] if before else []
        items.append(run)
        if after:  # whole events: the last match ended one
            items += event_data(after[:-2].split(b"\n\n"))
        return items

    def runs(self, parts: list[bytes]) -> list[bytes | VerbatimChunk]:
        """A read's events, given as their raw SSE text (`SSEData.split`), as their data, except that every
        run of consecutive ones that match this template comes as one `VerbatimChunk` holding them all
        (`count`), kept as this template's frame around their strings. A burst of text chunks then crosses
        the relay as one item instead of one per chunk, and is written out in one join."""
        prefix = b"data: " + self.frame.head
        start, tail, padded = len(prefix), self._tail.match, self._padded
        items: list[bytes | VerbatimChunk] = []
        first = -1  # where the current run began
        texts: list[bytes] = []  # its events' strings
        pads: list[bytes] = []  # and their pads, when the template has them
        for position, part in enumerate(parts):
            if part.startswith(prefix) and (match := tail(part, start)) is not None:
                if first < 0:
                    first, texts, pads = position, [], []
                texts.append(match[1])
                if padded:
                    pads.append(match[2])
                continue
            if first >= 0:
                items += self._run(parts, first, position, texts, pads)
                first = -1
            items += event_data([part])
        if first >= 0:
            items += self._run(parts, first, len(parts), texts, pads)
        return items

    def _run(
        self, parts: list[bytes], first: int, end: int, texts: list[bytes], pads: list[bytes]
    ) -> list[bytes | VerbatimChunk]:
        # The frame came from a parsed chunk and the pads are ASCII: the strings alone can be bad UTF-8.
        if not valid_utf8(b"".join(texts)):  # each read on its own, and the full parse says what is wrong
            return list(event_data(parts[first:end]))
        return [
            VerbatimChunk.framed(
                self.frame, texts, pads if self._padded else None, self.model, self.index, self.usage_null
            )
        ]

    def match(self, data: bytes) -> VerbatimChunk | None:
        """`data` as a verbatim chunk when it is this template around another text; None otherwise."""
        head = self.frame.head
        if not data.startswith(head) or (match := self._tail.match(data, len(head))) is None:
            return None
        if not valid_utf8(data):
            return None  # the full parse says what is wrong
        return VerbatimChunk(data, self.model, self.index, self.usage_null, texts=[match[1]])
