"""Anthropic stream events (SSE) → `chat.completion.chunk` dicts. Pure.

For the chat door, `TextDeltaReader` hands the text deltas of a read over as `TextRun`s, recognised by their
bytes, which the translator writes as content chunks around Anthropic's own strings (`runs.py`)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, cast

from ... import wire
from ...sse import ServerSentEvent, SSEData
from ...wire import TextFrame, loads
from ..base import ChatItem
from ..claude import ContentBlocks
from ..reasoning import Remember, StreamedThoughts
from ..runs import TEXT, TextRun, content_run, text_runs
from ..streams import bad_upstream_data, stream_ended_early
from ._errors import KIND, event_error
from ._response import finish_reason, usage_of

__all__ = ["MESSAGE_EVENTS", "StreamTranslator", "TextDeltaReader", "text_delta_frame"]

# Stream events that belong to a message, so cannot come before `message_start`.
MESSAGE_EVENTS = frozenset(
    {"content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop"}
)


class StreamTranslator:
    """Turns Anthropic stream events into `chat.completion.chunk` dicts, one event at a time.

    The finish and usage chunks are sent on `message_stop`; a stream without it is an error (`end`). With a
    `scope`, each signed thinking block ends with a `reasoning_details` delta sealed for it, and on
    `message_stop` `on_reasoning(tool-call ids, details)` is told what an answer that called tools thought.
    """

    def __init__(
        self,
        model: str,
        *,
        json_tool: str | None = None,
        created: int | None = None,
        secrets: Iterable[str | None] = (),
        scope: str | None = None,
        on_reasoning: Remember | None = None,
    ) -> None:
        self._builder = wire.ChunkBuilder(model, created=created)
        self._secrets = tuple(secrets)
        self._blocks = ContentBlocks(self._builder, json_tool=json_tool)
        self._thoughts = StreamedThoughts(scope, on_reasoning) if scope is not None else None
        self._usage: dict[str, Any] = {}
        self._stop_reason: str | None = None
        self._started = False
        self._done = False

    @property
    def done(self) -> bool:
        """Whether `message_stop` came: the stream is complete."""
        return self._done

    def feed(self, item: ServerSentEvent | TextRun) -> list[ChatItem]:
        """Chunks for one SSE event (`event` is its name, `data` its JSON text), or for a run of text deltas
        the chat door's reader recognised (`TextDeltaReader`)."""
        if type(item) is TextRun:
            return self._text_run(item)
        assert isinstance(item, ServerSentEvent)
        return cast("list[ChatItem]", self._event(item))  # a list of dicts, only read from here on

    def _event(self, item: ServerSentEvent) -> list[dict[str, Any]]:
        event, data = item.event, item.data
        if self._done or event == "ping":
            return []
        try:
            payload = loads(data)
        except ValueError:
            raise bad_upstream_data(KIND, f"event '{event}' is not JSON") from None
        if not isinstance(payload, dict):
            raise bad_upstream_data(KIND, f"event '{event}' is not an object")
        kind = payload.get("type", event)
        if event == "error" or kind == "error":
            raise event_error(payload, self._secrets)
        if kind == "message_start":
            return self._start(payload.get("message") or {})
        if not self._started:
            if kind in MESSAGE_EVENTS:
                raise bad_upstream_data(KIND, f"'{kind}' before message_start")
            return []
        if kind == "content_block_start":
            return self._block_start(payload.get("index", 0), payload.get("content_block") or {})
        if kind == "content_block_delta":
            return self._block_delta(payload.get("index", 0), payload.get("delta") or {})
        if kind == "content_block_stop":
            index = payload.get("index", 0)
            details = self._thoughts.stop(index) if self._thoughts is not None else []
            return self._details_chunk(details) + self._blocks.stop(index)
        if kind == "message_delta":
            self._stop_reason = (payload.get("delta") or {}).get("stop_reason") or self._stop_reason
            self._usage.update({k: v for k, v in (payload.get("usage") or {}).items() if v is not None})
            return []
        if kind == "message_stop":
            self._done = True
            if self._thoughts is not None:
                self._thoughts.finish()
            finish = finish_reason(self._stop_reason, self._blocks.tool_calls > 0)
            return [self._builder.finish(finish), self._builder.usage(usage_of(self._usage))]
        return []  # event types added later are skipped, as Anthropic asks clients to do

    def end(self) -> list[ChatItem]:
        """Call when the upstream closed the stream: a stream that never said `message_stop` failed."""
        if not self._done:
            raise stream_ended_early(KIND)
        return []

    def _start(self, message: Mapping[str, Any]) -> list[dict[str, Any]]:
        if self._started:
            return []
        self._started = True
        if message.get("id"):
            self._builder.id = str(message["id"])
        if message.get("model"):
            self._builder.model = str(message["model"])
        self._usage = dict(message.get("usage") or {})
        return [self._builder.role()]

    def _block_start(self, index: int, block: Mapping[str, Any]) -> list[dict[str, Any]]:
        kind = block.get("type")
        if kind == "tool_use":
            tool_index = self._blocks.start_tool(index, block.get("name"), block.get("input"))
            if tool_index is None:
                return []  # the JSON tool: its input is the answer's text
            if self._thoughts is not None:
                self._thoughts.tool_call(str(block.get("id")))
            delta = wire.tool_call_delta(tool_index, id=str(block.get("id")), name=str(block.get("name")))
            return [self._builder.chunk({"tool_calls": [delta]})]
        self._blocks.open(index)
        if kind == "text":
            return [self._builder.chunk({"content": block["text"]})] if block.get("text") else []
        if kind == "thinking":
            thinking = block.get("thinking")
            if self._thoughts is not None:
                self._thoughts.text(index, thinking or "")
                if block.get("signature"):
                    self._thoughts.signature(index, block["signature"])
            return [self._builder.chunk({"reasoning_content": thinking})] if thinking else []
        if kind == "redacted_thinking" and self._thoughts is not None and isinstance(block.get("data"), str):
            return self._details_chunk(self._thoughts.redacted(block["data"]))
        return []

    def _details_chunk(self, details: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [self._builder.chunk({"reasoning_details": details})] if details else []

    def _text_run(self, run: TextRun) -> list[ChatItem]:
        """What the events of `run` say, each `{"type":"text_delta","text":…}` for block `run.index`."""
        if self._done:
            return []
        if not self._started:
            raise bad_upstream_data(KIND, "'content_block_delta' before message_start")
        self._check_open(run.index)
        return [content_run(self._builder, run.strings)]

    def _check_open(self, index: int) -> None:
        if not self._blocks.is_open(index):
            raise bad_upstream_data(KIND, f"delta for content block {index} before its start")

    def _block_delta(self, index: int, delta: Mapping[str, Any]) -> list[dict[str, Any]]:
        self._check_open(index)
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [self._builder.chunk({"content": delta["text"]})]
        if kind == "thinking_delta" and delta.get("thinking"):
            if self._thoughts is not None:
                self._thoughts.text(index, delta["thinking"])
            return [self._builder.chunk({"reasoning_content": delta["thinking"]})]
        if kind == "signature_delta" and self._thoughts is not None and delta.get("signature"):
            self._thoughts.signature(index, delta["signature"])
            return []
        if kind == "input_json_delta":
            return self._blocks.input(index, delta.get("partial_json"))
        return []  # citations_delta carries nothing for the client; a signature comes out on the block's stop


#: A text delta event as Anthropic writes it: these bytes around the block index and the text's JSON string.
_EVENT = b"event: content_block_delta\ndata: "
_HEAD = b'{"type":"content_block_delta","index":'
_MIDDLE = b',"delta":{"type":"text_delta","text":'
_END = b"}}"
_TEXT_DELTA = re.compile(
    re.escape(_HEAD)
    + rb"(0|[1-9][0-9]{0,8})"
    + re.escape(_MIDDLE)
    + b"("
    + TEXT
    + b")"
    + re.escape(_END)
    + rb"\Z"
)


def text_delta_frame(index: int) -> TextFrame:
    """The whole SSE events `_text_delta` recognises for block `index`, as a frame around their strings:
    what the Messages door relays a run of them as, byte for byte."""
    return TextFrame(_EVENT + _HEAD + b"%d" % index + _MIDDLE, _END + b"\n\n")


def _text_delta(part: bytes) -> tuple[int, bytes] | None:
    """(block index, JSON string) of an event (raw text, `SSEData.split`) that is a non-empty text delta
    written as Anthropic writes it; None for any other event, which is parsed as usual."""
    if not part.startswith(_EVENT):
        return None
    match = _TEXT_DELTA.match(part, len(_EVENT))
    return None if match is None else (int(match[1]), match[2])


class TextDeltaReader:
    """The chat door's reader of an Anthropic stream: each read's events, with every run of text deltas
    as one `TextRun` (`runs.py`) and the other events as `ServerSentEvent`s."""

    __slots__ = ("_sse",)

    def __init__(self) -> None:
        self._sse = SSEData()

    def feed(self, chunk: bytes) -> list[ServerSentEvent | TextRun]:
        sse = self._sse
        parts = sse.split(chunk)
        if parts is None:  # a stream with lone CRs: event by event
            return list(sse.events(chunk))
        return list(text_runs(parts, _text_delta, lambda part: sse.events_of([part])))

    def flush(self) -> list[ServerSentEvent | TextRun]:
        return list(self._sse.flush_events())
