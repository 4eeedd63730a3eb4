"""ConverseStream event-stream frames → `chat.completion.chunk` dicts. Pure: the provider reads the bytes,
the decoder in `eventstream.py` cuts them into frames, and the translator reads each frame's event.

For the chat door, `chat_items` hands the text deltas of a read over as `TextRun`s, recognised by their
bytes, which the translator writes as content chunks around Bedrock's own strings (`runs.py`)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, cast

from ... import wire
from ...errors import GatewayError, redact
from ...eventstream import Frame
from ...wire import loads
from ..base import ChatItem
from ..claude import ContentBlocks
from ..reasoning import Remember, StreamedThoughts
from ..runs import TEXT, TextRun, content_run, text_runs
from ..streams import bad_upstream_data, stream_ended_early
from ._errors import KIND, bedrock_error, exception_status
from ._response import finish_reason, usage_of

__all__ = ["StreamTranslator", "chat_items", "frame_event"]


def frame_event(frame: Frame, secrets: Iterable[str | None] = ()) -> tuple[str, dict[str, Any]]:
    """(event type, payload) of an event frame; exception and error frames raise their `GatewayError`."""
    headers = frame.headers
    message_type = headers.get(":message-type")
    if message_type == "error":
        code = headers.get(":error-code") or "error"
        message = headers.get(":error-message") or frame.payload.decode("utf-8", "replace")
        raise GatewayError(
            redact(f"{KIND}: {code}: {message}", secrets), status=502, code="upstream_stream_error"
        )
    try:
        payload = loads(frame.payload) if frame.payload else {}
    except ValueError:
        raise bad_upstream_data(KIND, "an event payload is not JSON") from None
    if not isinstance(payload, dict):
        raise bad_upstream_data(KIND, "an event payload is not an object")
    if message_type == "exception":
        name = str(headers.get(":exception-type") or "")
        error_type = name[:1].upper() + name[1:]
        message = str(payload.get("message") or payload.get("Message") or "error")
        if payload.get("originalMessage"):
            message += f" (model said: {payload['originalMessage']})"
        status = exception_status(error_type)
        raise bedrock_error(error_type or None, status, message, secrets=secrets)
    if message_type != "event" or not headers.get(":event-type"):
        raise bad_upstream_data(KIND, f"unexpected event-stream message type {message_type!r}")
    return str(headers[":event-type"]), payload


class StreamTranslator:
    """ConverseStream frames → `chat.completion.chunk`s.

    Each frame is read as its event (`frame_event`); exception and error frames raise, without `secrets`.
    The finish chunk is held back until `metadata` (which comes after `messageStop`), and is sent together
    with the usage chunk, so that a stream cut before either is an error, never a false success. With a
    `scope`, signed and redacted reasoning come out as `reasoning_details` deltas sealed for it, and
    `on_reasoning` is told what an answer that called tools thought (`reasoning.StreamedThoughts`).
    """

    def __init__(
        self,
        model: str,
        *,
        tool_names: Mapping[str, str] | None = None,
        json_tool: str | None = None,
        id: str | None = None,
        created: int | None = None,
        secrets: Iterable[str | None] = (),
        scope: str | None = None,
        on_reasoning: Remember | None = None,
    ) -> None:
        self.chunks = wire.ChunkBuilder(model, id=id, created=created)
        self._thoughts = StreamedThoughts(scope, on_reasoning) if scope is not None else None
        self.tool_names = tool_names or {}
        self.json_tool = json_tool
        self._secrets = tuple(secrets)
        self._done = False
        self._started = False
        self._blocks = ContentBlocks(self.chunks, json_tool=json_tool)
        self._stop_reason: str | None = None

    @property
    def done(self) -> bool:
        """Whether `metadata` came: the stream is complete."""
        return self._done

    def feed(self, item: Frame | TextRun) -> list[ChatItem]:
        """The chunks for one event-stream frame, or for a run of text deltas (`chat_items`)."""
        if type(item) is TextRun:
            return self._text_run(item)
        assert isinstance(item, Frame)
        return cast("list[ChatItem]", self._frame(item))  # a list of dicts, only read from here on

    def _frame(self, item: Frame) -> list[dict[str, Any]]:
        event, payload = frame_event(item, self._secrets)
        if self._done:
            return []
        out: list[dict[str, Any]] = []
        if not self._started and event in ("messageStart", "contentBlockStart", "contentBlockDelta"):
            self._started = True
            out.append(self.chunks.role())
        try:
            if event == "contentBlockStart":
                out.extend(self._block_start(int(payload["contentBlockIndex"]), payload.get("start") or {}))
            elif event == "contentBlockDelta":
                out.extend(self._block_delta(int(payload["contentBlockIndex"]), payload.get("delta") or {}))
            elif event == "contentBlockStop":
                index = int(payload["contentBlockIndex"])
                details = self._thoughts.stop(index) if self._thoughts is not None else []
                out.extend(self._details(details) + self._blocks.stop(index))
            elif event == "messageStop":
                self._stop_reason = str(payload.get("stopReason") or "end_turn")
            elif event == "metadata":
                out.extend(self._finish(payload.get("usage") or {}))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise bad_upstream_data(KIND, f"unexpected {event} event ({type(exc).__name__})") from None
        return out  # messageStart (handled above) and unknown events add nothing

    def end(self) -> list[ChatItem]:
        """Called when the body ends: a stream without `messageStop` and `metadata` did not complete."""
        if not self._done:
            raise stream_ended_early(KIND)
        return []

    def _text_run(self, run: TextRun) -> list[ChatItem]:
        """What the frames of `run` say, each `{"contentBlockIndex":…,"delta":{"text":…}}`."""
        if self._done:
            return []
        out: list[ChatItem] = []
        if not self._started:
            self._started = True
            out.append(self.chunks.role())
        out.append(content_run(self.chunks, run.strings))
        return out

    def _block_start(self, index: int, start: Mapping[str, Any]) -> list[dict[str, Any]]:
        use = start.get("toolUse")
        if use is None:
            return []
        name = str(use["name"])
        tool_index = self._blocks.start_tool(index, name)
        if tool_index is None:
            return []  # the JSON tool: its input is the answer's text
        if self._thoughts is not None:
            self._thoughts.tool_call(str(use["toolUseId"]))
        fragment = wire.tool_call_delta(
            tool_index, id=str(use["toolUseId"]), name=self.tool_names.get(name, name)
        )
        return [self.chunks.chunk({"tool_calls": [fragment]})]

    def _block_delta(self, index: int, delta: Mapping[str, Any]) -> list[dict[str, Any]]:
        if "text" in delta:
            return [self.chunks.chunk({"content": str(delta["text"])})] if delta["text"] else []
        if "toolUse" in delta:
            if not self._blocks.is_open(index):
                raise bad_upstream_data(KIND, "tool input for a block that was never started")
            return self._blocks.input(index, str(delta["toolUse"]["input"]))
        if "reasoningContent" in delta:
            return self._reasoning(index, delta["reasoningContent"])
        return []  # citations have no OpenAI form

    def _reasoning(self, index: int, delta: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Text streams as `reasoning_content`; its signature closes it on the block's stop; redacted
        reasoning is one detail (all kept by `StreamedThoughts` only when sealing is on)."""
        text, thoughts = delta.get("text"), self._thoughts
        if thoughts is not None:
            if text:
                thoughts.text(index, str(text))
            if delta.get("signature"):
                thoughts.signature(index, str(delta["signature"]))
            if isinstance(delta.get("redactedContent"), str):
                return self._details(thoughts.redacted(delta["redactedContent"]))
        return [self.chunks.chunk({"reasoning_content": str(text)})] if text else []

    def _details(self, details: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [self.chunks.chunk({"reasoning_details": details})] if details else []

    def _finish(self, usage: Mapping[str, Any]) -> list[dict[str, Any]]:
        if self._stop_reason is None:
            raise bad_upstream_data(KIND, "metadata arrived before messageStop")
        self._done = True
        if self._thoughts is not None:
            self._thoughts.finish()
        finish = finish_reason(self._stop_reason, self._blocks.tool_calls > 0)
        return [self.chunks.finish(finish), self.chunks.usage(usage_of(usage))]


#: A text delta's payload as Bedrock writes it (`p` pads events to hide their length).
_TEXT_DELTA = re.compile(
    rb'\{"contentBlockIndex":(0|[1-9][0-9]{0,8}),"delta":\{"text":('
    + TEXT
    + rb')\}(?:,"p":"[A-Za-z0-9]*")?\}\Z'
)


def _text_delta(frame: Frame) -> tuple[int, bytes] | None:
    """(block index, JSON string) of a frame that is a non-empty text delta written as Bedrock writes it;
    None for any other frame, which is read as usual."""
    headers = frame.headers
    if headers.get(":event-type") != "contentBlockDelta" or headers.get(":message-type") != "event":
        return None
    match = _TEXT_DELTA.match(frame.payload)
    return None if match is None else (int(match[1]), match[2])


def chat_items(frames: Iterable[Frame]) -> Iterator[Frame | TextRun]:
    """A read's frames for the chat door: every run of text deltas as one `TextRun` (`runs.py`)."""
    return text_runs(frames, _text_delta, _alone)


def _alone(frame: Frame) -> tuple[Frame]:
    return (frame,)
