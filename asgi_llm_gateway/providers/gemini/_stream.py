"""A `streamGenerateContent?alt=sse` body → `chat.completion.chunk` dicts: `StreamDecoder` reads the body's
framing into JSON payloads, `StreamTranslator` turns those into chunks."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from ...sse import SSEData, event_data
from ...wire import ChunkBuilder, loads, tool_call_delta
from ..base import ChatItem, Chunk
from ..runs import TEXT, TextRun, content_run, text_runs
from ..streams import bad_upstream_data, stream_ended_early
from ._errors import KIND, payload_error
from ._response import check_prompt_feedback, finish_reason, logprobs_of, parts_of, usage_of

__all__ = ["StreamDecoder", "StreamTranslator", "TextRunDecoder"]


@dataclass
class _ChoiceState:
    tool_calls: int = 0
    finish_reason: str | None = None


class StreamTranslator:
    """Turns the `GenerateContentResponse` payloads of one stream into `chat.completion.chunk` dicts.

    Gemini sends text as deltas and every function call whole, so each call is one tool-call fragment.
    Finish chunks wait for the end of the stream, because usage (and occasionally a trailing part) may
    arrive after a candidate's `finishReason`. An error payload (Google fails after the 200 this way) is
    raised; `secrets` are kept out of its message. Thought signatures are bound to `scope` (`_ids.py`).
    """

    def __init__(
        self, model: str, *, scope: str, created: int | None = None, secrets: Iterable[str | None] = ()
    ) -> None:
        self.model = model
        self.scope = scope
        self.created = created
        self._secrets = tuple(secrets)
        self._builder: ChunkBuilder | None = None
        self._response_id: str | None = None
        self._choices: dict[int, _ChoiceState] = {}
        self._usage_metadata: Any = None  # the last payload's: Gemini's counts are cumulative
        self._unread_usage: bytes | None = None  # a later `TextRun`'s last event, whose counts win

    @property
    def done(self) -> bool:
        """Always false: Gemini says nothing before the body ends, so the stream is read to its end."""
        return False

    def feed(self, item: Any) -> list[ChatItem]:
        """Chunks for one upstream payload (a `GenerateContentResponse`, or Google's error object), or for a
        run of text deltas the chat door's decoder recognised (`TextRunDecoder`)."""
        if type(item) is TextRun:
            return self._text_run(item)
        return cast("list[ChatItem]", self._payload(item))  # a list of dicts, only read from here on

    def _text_run(self, run: TextRun) -> list[ChatItem]:
        """What the events of `run` say: each is a payload like one already fed, with another text."""
        state = self._choices.get(run.index)
        if self._builder is None or state is None:  # the decoder learns the layout from a payload fed first
            raise bad_upstream_data(KIND, "a text delta before its candidate")
        if isinstance(run.last, bytes):
            self._unread_usage = run.last
        return [content_run(self._builder, run.strings, run.index)]

    def _payload(self, item: Any) -> list[Chunk]:
        if not isinstance(item, dict):
            raise bad_upstream_data(KIND, "an event that is not a JSON object")
        if "error" in item:
            raise payload_error(item, self._secrets)
        check_prompt_feedback(item)
        if self._builder is None:
            self._response_id = item.get("responseId")
            chunk_id = f"chatcmpl-{self._response_id}" if self._response_id else None
            self._builder = ChunkBuilder(self.model, id=chunk_id, created=self.created)
        metadata = item.get("usageMetadata")
        if metadata:
            self._usage_metadata = metadata  # read once, at the end: the last one wins
            self._unread_usage = None
        chunks: list[Chunk] = []
        for position, candidate in enumerate(item.get("candidates") or ()):
            chunks += self._candidate(self._builder, candidate, candidate.get("index", position))
        return chunks

    def _candidate(self, builder: ChunkBuilder, candidate: Mapping[str, Any], index: int) -> list[Chunk]:
        """Chunks for one candidate of one payload: role (first time), reasoning, text, tool calls."""
        chunks: list[Chunk] = []
        state = self._choices.get(index)
        if state is None:
            state = self._choices[index] = _ChoiceState()
            chunks.append(builder.role(index))
        parts = parts_of(candidate, self._response_id, index, state.tool_calls, self.scope)
        if parts.reasoning:
            chunks.append(builder.chunk({"reasoning_content": "".join(parts.reasoning)}, index=index))
        if parts.text:
            chunks.append(builder.chunk({"content": "".join(parts.text)}, index=index))
            if "logprobsResult" in candidate:
                chunks[-1]["choices"][0]["logprobs"] = logprobs_of(candidate["logprobsResult"])
        for call_id, name, arguments in parts.calls:
            delta = tool_call_delta(state.tool_calls, id=call_id, name=name, arguments=arguments)
            chunks.append(builder.chunk({"tool_calls": [delta]}, index=index))
            state.tool_calls += 1
        if candidate.get("finishReason"):
            state.finish_reason = candidate["finishReason"]
            # Raises now for a failed answer: better mid-stream than a truncated "success".
            finish_reason(state.finish_reason, state.tool_calls > 0, candidate.get("finishMessage"))
        return chunks

    def end(self) -> list[ChatItem]:
        """The finish chunk of every choice and the usage chunk; the stream must have been complete."""
        if self._unread_usage is not None:
            self._usage_metadata = _parse(self._unread_usage[6:]).get("usageMetadata") or self._usage_metadata
        if self._builder is None or not self._choices:
            raise stream_ended_early(KIND)
        if any(state.finish_reason is None for state in self._choices.values()):
            raise stream_ended_early(KIND)
        chunks: list[ChatItem] = [
            self._builder.finish(finish_reason(state.finish_reason, state.tool_calls > 0), index)
            for index, state in sorted(self._choices.items())
        ]
        usage = usage_of(self._usage_metadata)
        if usage is not None:
            chunks.append(self._builder.usage(usage))
        return chunks


# -- the body's framing ----------------------------------------------------------------------------------

_MAX_RAW_ERROR = 64 * 1024


class StreamDecoder:
    """The JSON payloads of a `streamGenerateContent?alt=sse` body (`feed` each read, `flush` at its end).

    Events are `data:` lines (cut out by the shared SSE reader), but when Google fails after the 200 it
    writes a bare, possibly multi-line JSON error object without `data:`. The SSE reader hands over those
    lines (they are no SSE field); they are collected here until they parse, so the error is reported
    instead of silently dropped.
    """

    def __init__(self) -> None:
        self._sse = SSEData(on_other_line=self._raw_line)
        self._raw: list[str] = []
        self._bare: list[Any] = []  # bare JSON objects completed by the last read

    def feed(self, chunk: bytes) -> list[Any]:
        return self._with_bare([_parse(data) for data in self._sse.feed(chunk)])

    def flush(self) -> list[Any]:
        """The payloads the body's end completes; text outside of events that never became an object
        raises."""
        payloads = self._with_bare([_parse(data) for data in self._sse.flush()])
        if self._raw:
            raise bad_upstream_data(KIND, "text outside of server-sent events")
        return payloads

    def _with_bare(self, payloads: list[Any]) -> list[Any]:
        if self._bare:
            payloads += self._bare
            self._bare = []
        return payloads

    def _raw_line(self, line: str) -> None:
        self._raw.append(line)
        text = "\n".join(self._raw)
        if len(text) > _MAX_RAW_ERROR:
            raise bad_upstream_data(KIND, "text outside of server-sent events")
        try:
            payload = loads(text)
        except ValueError:
            return  # not complete yet
        self._raw = []
        self._bare.append(payload)


class TextRunDecoder(StreamDecoder):
    """The chat door's decoder of the same body: the payloads, except that every run of text deltas that
    has the layout of one already parsed (`_TextLayout`) comes as one `TextRun` (`runs.py`)."""

    def __init__(self) -> None:
        super().__init__()
        self._layout: _TextLayout | None = None
        self._tries = 0

    def feed(self, chunk: bytes) -> list[Any]:
        sse = self._sse
        parts = sse.split(chunk)
        if parts is None:  # a stream with lone CRs: event by event
            return self._with_bare([_parse(event.data.encode()) for event in sse.events(chunk)])
        return self._with_bare(list(text_runs(parts, self._text_of, self._payloads)))

    def _text_of(self, part: bytes) -> tuple[int, bytes] | None:
        layout = self._layout
        return None if layout is None else layout.match(part)

    def _payloads(self, part: bytes) -> list[Any]:
        payloads = [_parse(data) for data in event_data([part], self._raw_line)]
        if self._layout is None and self._tries < _TRIES and len(payloads) == 1:
            text, index = _lone_text(payloads[0])  # a few dict lookups: thoughts and calls are no try
            if text is not None and part.startswith(b"data: "):
                self._tries += 1
                self._layout = _TextLayout.learn(part, payloads[0], text, index)
        return payloads


#: How many text deltas a `TextRunDecoder` tries to learn their layout from.
_TRIES = 3


class _TextLayout:
    """The bytes of a stream's text deltas around their text, learnt from one that was parsed.

    Gemini writes every text delta of a stream alike but for the text and the cumulative token counts:

        data: {"candidates": [{"content": {"parts": [{"text": "…"}],"role": "model"},"index": 0}],
               "usageMetadata": {"promptTokenCount": 12,"candidatesTokenCount": 3,…},"modelVersion": "…",…}

    `learn` takes a payload that is one candidate with one text part and nothing else that means anything
    to the translator (no finish, no thought, no signature, no logprobs, no prompt feedback), keeps the
    bytes before its text and a pattern of the bytes after it in which only the numbers in `usageMetadata`
    may differ. A part that matches is then that payload with another text and other counts: the
    translator needs the text, and keeps the last such part to read its counts at the end."""

    __slots__ = ("_tail", "head", "index")

    def __init__(self, head: bytes, tail: re.Pattern[bytes], index: int) -> None:
        self.head = head
        self._tail = tail
        self.index = index

    @classmethod
    def learn(cls, part: bytes, payload: Any, text: str, index: int) -> _TextLayout | None:
        """The layout of `part`, whose `payload` is one candidate (`index`) with one text part (`text`,
        `_lone_text`); None when its bytes do not show the text where a pattern can find it again."""
        at = part.find(b'"text":')
        if at < 0 or part.find(b'"text":', at + 1) >= 0:
            return None
        start = at + 7 + (part[at + 7 : at + 8] == b" ")
        string = _TEXT_RE.match(part, start)
        if string is None or loads(string[0]) != text:
            return None
        tail = part[string.end() :]
        usage = _usage_span(tail, payload.get("usageMetadata"))
        if usage is None:
            pattern = re.escape(tail)
        else:
            before, numbers, after = tail[: usage[0]], tail[usage[0] : usage[1]], tail[usage[1] :]
            counts = b"[0-9]+".join(re.escape(piece) for piece in re.split(rb"[0-9]+", numbers))
            pattern = re.escape(before) + counts + re.escape(after)
        return cls(part[:start], re.compile(b"(" + TEXT + b")" + pattern + rb"\Z"), index)

    def match(self, part: bytes) -> tuple[int, bytes] | None:
        """(candidate index, JSON string) of a part with this layout; None for any other part."""
        if not part.startswith(self.head):
            return None
        match = self._tail.match(part, len(self.head))
        return None if match is None else (self.index, match[1])


_TEXT_RE = re.compile(TEXT)
_BRACES = {ord("{"): 1, ord("}"): -1}  # a byte's change to the nesting depth
_PAYLOAD_KEYS = frozenset(("candidates", "usageMetadata", "modelVersion", "responseId"))
_CANDIDATE_KEYS = frozenset(("content", "index"))
_CONTENT_KEYS = frozenset(("parts", "role"))


def _lone_text(payload: Any) -> tuple[str | None, int]:
    """(text, candidate index) of a payload that is one candidate with one non-empty text part and nothing
    else the translator reads; (None, 0) for any other payload."""
    if not isinstance(payload, dict) or not payload.keys() <= _PAYLOAD_KEYS:
        return None, 0
    candidates = payload.get("candidates")
    if not isinstance(candidates, list) or len(candidates) != 1 or not isinstance(candidates[0], dict):
        return None, 0
    candidate = candidates[0]
    content, index = candidate.get("content"), candidate.get("index", 0)
    if not candidate.keys() <= _CANDIDATE_KEYS or not isinstance(content, dict) or type(index) is not int:
        return None, 0
    parts = content.get("parts")
    if not content.keys() <= _CONTENT_KEYS or not isinstance(parts, list) or len(parts) != 1:
        return None, 0
    part = parts[0]
    if not isinstance(part, dict) or part.keys() != {"text"} or not isinstance(part["text"], str):
        return None, 0
    return (part["text"] or None), index


def _usage_span(tail: bytes, usage: Any) -> tuple[int, int] | None:
    """Where in `tail` the `usageMetadata` object is (found by its braces, confirmed by parsing it)."""
    if not isinstance(usage, dict):
        return None
    at = tail.find(b'"usageMetadata":')
    if at < 0 or tail.find(b'"usageMetadata":', at + 1) >= 0:
        return None
    start = at + 16 + (tail[at + 16 : at + 17] == b" ")
    depth = 0
    for end in range(start, len(tail)):
        depth += _BRACES.get(tail[end], 0)
        if depth == 0:
            break
    else:
        return None
    try:
        same = loads(tail[start : end + 1]) == usage
    except ValueError:
        return None
    return (start, end + 1) if same else None


def _parse(data: bytes) -> Any:
    """An event's JSON; bytes that are not UTF-8 read with the bad ones replaced, as text would be."""
    try:
        return loads(data)
    except ValueError:
        pass
    try:
        return loads(data.decode("utf-8", errors="replace"))
    except ValueError:
        raise bad_upstream_data(KIND, "an event that is not JSON") from None
