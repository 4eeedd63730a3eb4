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
"""

from __future__ import annotations

import re

from ...sse import event_data
from ..base import VerbatimChunk, model_member
from ..runs import JSON_STRING, valid_utf8

__all__ = ["DELTA_CONTENT", "ContentTemplate"]

DELTA_CONTENT = b'"delta":{"content":'
_STRING = JSON_STRING
_STRING_RE = re.compile(_STRING)
#: OpenAI pads each chunk with a random `obfuscation` value (base64-like letters).
_OBFUSCATION = re.compile(rb'"obfuscation":"[A-Za-z0-9+/=_-]*"')


class ContentTemplate:
    """The head and tail of a stream's text chunks, learnt from one of them (see the module docstring)."""

    __slots__ = ("_tail", "head", "index", "model", "usage_null")

    def __init__(self, head: bytes, tail: re.Pattern[bytes], chunk: VerbatimChunk) -> None:
        self.head = head
        self._tail = tail
        self.model, self.index, self.usage_null = chunk.model, chunk.index, chunk.usage_null

    @classmethod
    def learn(cls, chunk: VerbatimChunk) -> ContentTemplate | None:
        """The template of `chunk` (verbatim-safe, its delta `{"content": …}` alone), or None when its bytes
        do not have that layout (another spacing, the marker twice, a null content)."""
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
        tail = data[string.end() :]
        pad = _OBFUSCATION.search(tail)
        if pad is None:
            pattern = re.escape(tail)
        else:
            before, after = tail[: pad.start()], tail[pad.end() :]
            pattern = re.escape(before) + _OBFUSCATION.pattern + re.escape(after)
        return cls(data[:start], re.compile(b"(" + _STRING + b")" + pattern + rb"\Z"), chunk)

    def runs(self, parts: list[bytes]) -> list[bytes | VerbatimChunk]:
        """A read's events, given as their raw SSE text (`SSEData.split`), as their data, except that every
        run of consecutive ones that match this template comes as one `VerbatimChunk` holding them all
        (`count`). A burst of text chunks then crosses the relay as one item instead of one per chunk."""
        prefix = b"data: " + self.head
        start, tail = len(prefix), self._tail.match
        items: list[bytes | VerbatimChunk] = []
        first = -1  # where the current run began
        texts: list[bytes] = []  # its events' strings
        for position, part in enumerate(parts):
            if part.startswith(prefix) and (match := tail(part, start)) is not None:
                if first < 0:
                    first, texts = position, []
                texts.append(match[1])
                continue
            if first >= 0:
                items += self._run(parts, first, position, texts)
                first = -1
            items += event_data([part])
        if first >= 0:
            items += self._run(parts, first, len(parts), texts)
        return items

    def _run(
        self, parts: list[bytes], first: int, end: int, texts: list[bytes]
    ) -> list[bytes | VerbatimChunk]:
        data = b"\n\n".join(parts[first:end])[6:]  # `{…}\n\ndata: {…}…`: the events' data, joined
        if not valid_utf8(data):  # each read on its own, and the full parse says what is wrong
            return list(event_data(parts[first:end]))
        return [VerbatimChunk(data, self.model, self.index, self.usage_null, end - first, texts)]

    def match(self, data: bytes) -> VerbatimChunk | None:
        """`data` as a verbatim chunk when it is this template around another text; None otherwise."""
        if not data.startswith(self.head) or (match := self._tail.match(data, len(self.head))) is None:
            return None
        if not valid_utf8(data):
            return None  # the full parse says what is wrong
        return VerbatimChunk(data, self.model, self.index, self.usage_null, texts=[match[1]])
