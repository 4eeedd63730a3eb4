"""An OpenAI-compatible upstream's stream → canonical chunks, up to `data: [DONE]`.

Both readers take each event's data as bytes (`sse.SSEData`: these streams say everything in their data)
and share one parse and one normalisation: `StreamTranslator` gives canonical chunks (for every door), and
`VerbatimTranslator` (the chat door's) keeps a plain content chunk as the bytes the upstream sent
(`VerbatimChunk`) where normalising it would change nothing.
"""

from __future__ import annotations

from typing import Any

from ...sse import SSEData, event_data
from ...wire import loads
from ..base import ChatItem, Chunk, VerbatimChunk
from ..streams import bad_upstream_data
from ._response import normalize_chunk
from ._template import DELTA_CONTENT, ContentTemplate, TemplatePatterns

__all__ = ["StreamTranslator", "VerbatimReader", "VerbatimTranslator", "split_usage", "verbatim_chunk"]


class StreamTranslator:
    """An OpenAI-style upstream's stream events (their data) → normalised chunks, up to `data: [DONE]`.

    The family's `StreamTranslator` (the protocol in `providers/base.py`): `done` turns true at `[DONE]`."""

    __slots__ = ("done", "kind")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.done = False

    def feed(self, data: bytes) -> list[Chunk]:
        if data[:1] != b"{" and _no_chunk(self, data):
            return []
        return [] if self.done else _canonical(_parse(data, self.kind), self.kind)

    def end(self) -> list[Chunk]:
        """Nothing to add: the relay itself fails a stream whose choices never finished."""
        return []


class VerbatimTranslator:
    """The chat door's reader of the same stream, fed each event's data as bytes (`sse.SSEData`): plain
    content chunks stay as the upstream wrote them, the rest (the role-less first chunk of a tool call, the
    finish, the usage, an error, any field the normalisation touches) become canonical chunks as above."""

    __slots__ = ("done", "kind", "patterns", "template")

    def __init__(self, kind: str, patterns: TemplatePatterns | None = None) -> None:
        self.kind = kind
        self.done = False
        #: The layout of this stream's text chunks, once one has been parsed (`_template.py`).
        self.template: ContentTemplate | None = None
        #: The provider's patterns, kept across its streams (a fresh set when not given).
        self.patterns = patterns or TemplatePatterns()

    def feed(self, data: bytes | VerbatimChunk) -> list[ChatItem]:
        if type(data) is VerbatimChunk:  # a run the reader already matched (`VerbatimReader`)
            return [] if self.done else [data]
        assert isinstance(data, bytes)
        template = self.template
        if template is not None and not self.done:
            verbatim = template.match(data)
            if verbatim is not None:
                return [verbatim]
        if (data[:1] != b"{" and _no_chunk(self, data)) or self.done:
            return []
        parsed = _parse(data, self.kind)
        verbatim = verbatim_chunk(parsed, data)
        if verbatim is None:
            return list(_canonical(parsed, self.kind))
        self.template = _template_of(parsed, verbatim, self.patterns) or template
        return [verbatim]

    def end(self) -> list[ChatItem]:
        return []


class VerbatimReader:
    """The chat door's SSE reader (`sse.SSEData`), which hands a read's consecutive text chunks that match
    the stream's template over as one `VerbatimChunk`: a burst of text then costs one template check per
    chunk and one item in the relay, not one item per chunk.

    The template is `translator`'s. A burst often brings the whole stream in its first read, before the
    translator has seen a chunk to learn from, so the reader learns it from the read's first text chunk
    itself (one parse, which the translator then skips), at most `_TRIES` times a stream."""

    __slots__ = ("_events", "_translator", "_tries")

    def __init__(self, translator: VerbatimTranslator) -> None:
        self._events = SSEData()
        self._translator = translator
        self._tries = 0

    def feed(self, chunk: bytes) -> list[bytes | VerbatimChunk]:
        events = self._events.take_events(chunk)  # two or more whole events, in one piece
        if events is None:
            return self._one_by_one(chunk)
        template = self._template(events)
        if template is None:
            return list(event_data(_parts(events)))
        items = template.scan(events)  # a burst: its events cut out at once
        return items if items is not None else template.runs(_parts(events))

    def _one_by_one(self, chunk: bytes) -> list[bytes | VerbatimChunk]:
        """A read of one event (a paced stream), or one with CRs or empty events: split as any SSE read, and
        its events handed over one by one (the translator matches each against the template)."""
        reader = self._events
        parts = reader.split(chunk)
        if parts is None:  # a stream with lone CRs: `SSEDecoder` reads it, event by event
            return [event.data.encode() for event in reader.events(chunk)]
        if len(parts) < 2:
            return list(event_data(parts))
        template = self._template(parts)
        return list(event_data(parts)) if template is None else template.runs(parts)

    def _template(self, events: bytes | list[bytes]) -> ContentTemplate | None:
        """The stream's template; while it has none, learnt from the first text chunk of a read's `events`
        (whole events in one piece, or as `SSEData.split` gives them), in at most `_TRIES` reads."""
        translator = self._translator
        if translator.template is None and self._tries < _TRIES:
            self._tries += 1
            text = events if isinstance(events, bytes) else b"\n\n".join(events)
            translator.template = _first_template(text, translator.patterns)
        return translator.template

    def flush(self) -> list[bytes | VerbatimChunk]:
        return list(self._events.flush())


#: How many reads a `VerbatimReader` looks for a chunk to learn the template from.
_TRIES = 3


def _template_of(parsed: Any, verbatim: VerbatimChunk, patterns: TemplatePatterns) -> ContentTemplate | None:
    """The template of a verbatim-safe chunk whose delta is `{"content": …}` alone; None for others."""
    delta = parsed["choices"][0]["delta"]
    return ContentTemplate.learn(verbatim, patterns) if len(delta) == 1 and "content" in delta else None


def _first_template(events: bytes, patterns: TemplatePatterns) -> ContentTemplate | None:
    """The template of the first of a read's events (raw SSE text, blank lines between them) that looks like
    a text chunk, if it is one (a chunk that is not JSON is left for the translator to refuse)."""
    at = events.find(DELTA_CONTENT)
    if at < 0:
        return None
    start = events.rfind(b"\n\n", 0, at)
    end = events.find(b"\n\n", at)
    part = events[0 if start < 0 else start + 2 : len(events) if end < 0 else end]
    [data, *_] = event_data([part]) or [b""]
    try:
        parsed = loads(data)
    except ValueError:
        return None
    verbatim = verbatim_chunk(parsed, data)
    return None if verbatim is None else _template_of(parsed, verbatim, patterns)


def _parts(events: bytes) -> list[bytes]:
    """Whole events in one piece (`SSEData.take_events`) as `SSEData.split` gives them: each without its
    blank line."""
    return events[:-2].split(b"\n\n")


def _no_chunk(translator: StreamTranslator | VerbatimTranslator, data: bytes) -> bool:
    """Whether an event that is no JSON object holds no chunk: blank data, or `[DONE]` (which ends the
    stream). Anything else is left to the parse, which refuses it."""
    if not data or data.isspace():
        return True
    if data.startswith(b"[DONE]"):
        translator.done = True
        return True
    return False


def _parse(data: bytes, kind: str) -> Any:
    try:
        return loads(data)
    except ValueError:
        raise bad_upstream_data(kind, "a stream event that is not JSON") from None


def _canonical(parsed: Any, kind: str) -> list[Chunk]:
    chunk = normalize_chunk(parsed, kind)
    return split_usage(chunk) if chunk is not None else []


def split_usage(chunk: dict[str, Any]) -> list[dict[str, Any]]:
    """OpenAI sends usage in its own chunk with `choices: []`; some upstreams attach it to the last one."""
    usage = chunk.get("usage")
    if not chunk["choices"] or not isinstance(usage, dict):
        return [chunk]
    content = {**chunk, "usage": None}
    return [content, {**chunk, "choices": [], "usage": usage}]


#: The fields of a chunk, a choice and a delta that `normalize_chunk` leaves alone when their values are
#: plain; a chunk with any other field (`x_groq`, `error`, filter results, `tool_calls`, `reasoning`, …)
#: is normalised instead.
_CHUNK_FIELDS = frozenset(
    {
        "id",
        "object",
        "created",
        "model",
        "service_tier",
        "system_fingerprint",
        "choices",
        "usage",
        "obfuscation",
    }
)
_CHOICE_FIELDS = frozenset({"index", "delta", "logprobs", "finish_reason"})
_DELTA_FIELDS = frozenset({"role", "content", "refusal"})


def verbatim_chunk(parsed: Any, data: bytes) -> VerbatimChunk | None:
    """`data` kept as it is, when its parse `parsed` is a chunk that `normalize_chunk` would not change: one
    choice that has not finished, whose delta holds only text (`role`, `content`, `refusal`), and no usage.
    None for everything else. (Once per content chunk of every stream: written for speed.)"""
    if type(parsed) is not dict or parsed.get("usage") is not None or not _CHUNK_FIELDS.issuperset(parsed):
        return None
    choices = parsed.get("choices")
    if type(choices) is not list or len(choices) != 1:
        return None
    choice = choices[0]
    if type(choice) is not dict or choice.get("finish_reason") is not None:
        return None
    delta, index, model = choice.get("delta"), choice.get("index"), parsed.get("model")
    if type(delta) is not dict or type(index) is not int or type(model) is not str:
        return None
    if not (_CHOICE_FIELDS.issuperset(choice) and _DELTA_FIELDS.issuperset(delta)):
        return None
    if parsed.get("object") != "chat.completion.chunk":
        return None
    for value in delta.values():
        if value is not None and type(value) is not str:
            return None
    return VerbatimChunk(data, model, index, "usage" in parsed)
