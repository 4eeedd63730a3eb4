"""Canonical `chat.completion.chunk`s → Anthropic's stream events: the `/v1/messages` door's `StreamEncoder`.

The sequence is Anthropic's: `message_start` (usage 0 until the usage chunk arrives) and one `ping`; per
content block `content_block_start`, its deltas (`text_delta`, `input_json_delta`), `content_block_stop`;
then `message_delta` with the stop reason and the usage, and `message_stop`. A failure ends the stream with
an `error` event instead, never with a `message_stop` that would pass it off as a complete answer.

A new block starts whenever the kind changes (text, tool call) or a new tool call begins (a new `index`, or
another `id` at the same index); block indexes count blocks. A call whose first fragment has no id gets a
`toolu_` one, and keeps it should the upstream name an id later. Reasoning deltas are dropped (see
`_response.py`), and so is every choice but the first (a Messages request asks for one).

Upstreams stream tool calls one after the other; one that went back to an earlier call would have its
fragment sent to that call's block by index, where the SDKs' accumulators (keyed by index) put it.

Per chunk the work is a few dict lookups and one `dumps` of the new text: each open block keeps its delta
event's bytes up to the payload, so a delta is that prefix, the JSON string, and a fixed suffix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from ...errors import GatewayError
from ...providers.anthropic import tool_use_id
from ...providers.base import ChatItem, VerbatimChunk
from ...wire import dumps
from ._errors import error_event
from ._response import message_id, new_tool_use_id, stop_reason, usage_of

__all__ = ["MessagesStreamEncoder"]

_PING = b'event: ping\ndata: {"type":"ping"}\n\n'
_STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
_DELTA_END = b"}}\n\n"
_TEXT_BLOCK = b'{"type":"text","text":""}'
_TEXT = "text"  # the open block's key when it is text; a tool call's key is its index


class MessagesStreamEncoder:
    """Canonical chunks → Anthropic SSE bytes (`event: <type>\\ndata: <json>\\n\\n`)."""

    __slots__ = (
        "_blocks",
        "_finish",
        "_model",
        "_open",
        "_prefix",
        "_refused",
        "_started",
        "_tools",
        "_usage",
    )

    def __init__(self, model: str) -> None:
        self._model = model  # the model the client asked for
        self._started = False
        self._blocks = 0  # blocks started so far; the open one, if any, is the last
        self._open: str | int | None = None  # _TEXT, a tool call index, or None
        self._prefix = b""  # the open block's delta event, up to its payload
        self._tools: dict[int, tuple[Any, bytes]] = {}  # tool call index → (its id, its delta prefix)
        self._finish: str | None = None
        self._refused = False
        self._usage: Mapping[str, Any] | None = None

    def encode(self, chunks: list[ChatItem]) -> bytes:
        out: list[bytes] = []
        if not self._started:
            out.append(self._start())
        for chunk in chunks:
            if type(chunk) is VerbatimChunk:
                if chunk.index == 0:
                    out.append(self._verbatim(chunk))
                continue
            assert isinstance(chunk, dict)
            if (usage := chunk.get("usage")) is not None:
                self._usage = usage
            choices = chunk.get("choices")
            if not choices or choices[0].get("index", 0) != 0:
                continue
            choice = choices[0]
            delta = choice.get("delta") or {}
            if text := delta.get("content"):
                out.append(self._text(text))
            if refusal := delta.get("refusal"):
                self._refused = True
                out.append(self._text(refusal))
            for call in delta.get("tool_calls") or ():
                self._tool_call(call, out)
            if finish := choice.get("finish_reason"):
                self._finish = finish
        return b"".join(out)

    def close(self, failure: GatewayError | None) -> bytes:
        if failure is not None:
            return error_event(failure)
        out = [] if self._started else [self._start()]
        if self._open is not None:
            out.append(_block_stop(self._blocks - 1))
        reason = stop_reason(self._finish, bool(self._tools), self._refused)
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": None},
            "usage": usage_of(self._usage),
        }
        out.append(b"event: message_delta\ndata: " + dumps(delta) + b"\n\n")
        out.append(_STOP)
        return b"".join(out)

    def _start(self) -> bytes:
        self._started = True
        message: dict[str, Any] = {
            "id": message_id(),
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage_of(None),
        }
        event = {"type": "message_start", "message": message}
        return b"event: message_start\ndata: " + dumps(event) + b"\n\n" + _PING

    def _text(self, text: str) -> bytes:
        if self._open == _TEXT:
            return self._prefix + dumps(text) + _DELTA_END
        return self._text_strings([dumps(text)])

    def _text_strings(self, strings: list[bytes]) -> bytes:
        """Text deltas, each around a JSON string of the text."""
        head = b"" if self._open == _TEXT else self._switch(_TEXT, _TEXT_BLOCK, b'"text_delta","text":')
        prefix = self._prefix
        return head + prefix + (_DELTA_END + prefix).join(strings) + _DELTA_END

    def _verbatim(self, chunk: VerbatimChunk) -> bytes:
        """Content chunks already in the chat door's bytes: their strings (`texts`) become text deltas as
        they are; without them, the chunks are parsed and read as any other."""
        strings = chunk.text_strings()
        if strings is None:
            return self.encode(cast("list[ChatItem]", chunk.chunks()))
        return self._text_strings(strings) if strings else b""

    def _tool_call(self, call: Mapping[str, Any], out: list[bytes]) -> None:
        index: int = call.get("index", 0)
        call_id = call.get("id")
        known = self._tools.get(index)
        function = call.get("function") or {}
        if known is None or (call_id and known[0] and call_id != known[0]):
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": tool_use_id(call_id) if call_id else new_tool_use_id(),
                "name": function.get("name") or "",
                "input": {},
            }
            out.append(self._switch(index, dumps(block), b'"input_json_delta","partial_json":'))
            self._tools[index] = (call_id, self._prefix)
            prefix = self._prefix
        else:
            prefix = known[1]
        if arguments := function.get("arguments"):
            out.append(prefix + dumps(arguments) + _DELTA_END)

    def _switch(self, key: str | int, block: bytes, delta_head: bytes) -> bytes:
        """Stop the open block, if any, and start the next one; returns those events."""
        stop = _block_stop(self._blocks - 1) if self._open is not None else b""
        index = b"%d" % self._blocks
        self._blocks += 1
        self._open = key
        self._prefix = (
            b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
            + index
            + b',"delta":{"type":'
            + delta_head
        )
        start = (
            b'event: content_block_start\ndata: {"type":"content_block_start","index":'
            + index
            + b',"content_block":'
            + block
            + b"}\n\n"
        )
        return stop + start


def _block_stop(index: int) -> bytes:
    return b'event: content_block_stop\ndata: {"type":"content_block_stop","index":%d}\n\n' % index
