"""Canonical `chat.completion.chunk`s → Responses stream events: the `/v1/responses` door's `StreamEncoder`.

Every event is `event: <type>\\ndata: <json>\\n\\n`, its JSON carrying `type` and a `sequence_number` that
counts up from 0. The sequence:

1. `response.created`, `response.in_progress`: the skeleton the endpoint built (`_response.skeleton`).
2. Per output item, in the order the upstream's deltas arrive, `response.output_item.added`, then
   - a `message` (content, refusal): per part `response.content_part.added`, `response.output_text.delta`
     (or `response.refusal.delta`), `response.output_text.done` (`.refusal.done`),
     `response.content_part.done`;
   - a `reasoning` item (`reasoning_content`): one summary part, `response.reasoning_summary_part.added`,
     `response.reasoning_summary_text.delta`, `…text.done`, `…part.done` (see `_response.py` for why a
     summary);
   - a `function_call` (a tool call, by its `index`): `response.function_call_arguments.delta` per
     fragment, `response.function_call_arguments.done` with the whole arguments and the name, also when
     they came in one final fragment or not at all;
   - a `custom_tool_call` (a call of a custom tool's function, see `_custom.py`):
     `response.custom_tool_call_input.delta` per piece of `input` decoded for sure from the arguments so
     far (`InputDecoder`: none for a fragment that ends inside an escape, until its rest comes), then, at
     the end, one more with what only the whole arguments told (`input_of`: all of it when they did not
     begin `{"input": "`), and `response.custom_tool_call_input.done` with the whole input. The deltas add
     up to the input, but for arguments that JSON reads otherwise than they streamed (a second `input`
     key): then `done` and the item carry the input JSON reads;
   and `response.output_item.done` with the finished item.
3. `response.completed` (or `response.incomplete` when the finish was `length` or `content_filter`):
   the same id, the whole `output`, and `usage` from the canonical usage chunk. A failure ends the stream
   with `response.failed` instead: `error {code, message}` (`_response.failure_error`) and the output so
   far, never a stream that just stops, nor a `response.completed` that passes it off as whole.

An item stays open until another kind begins: text after reasoning closes the reasoning item; a tool call
closes the open message; tool calls stay open side by side (a fragment for an earlier call, by index,
still reaches that call) until text, reasoning or the end closes them, in order. A call whose first
fragment has no id gets a `call_…` one and keeps it, since `call_id` may not change once sent. Every choice
but the first is ignored (a Responses request asks for one). `encoder.response` is the final response
object once `close` ran (`status` `failed` after a failure), for the endpoint to store.

Per chunk the work is a few dict lookups and one `dumps` of the new text: each open part keeps its delta
event's bytes up to the payload, and the sequence number is the only thing written after it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, cast

from ...errors import GatewayError
from ...providers.base import ChatItem, VerbatimChunk
from ...wire import dumps, loads
from ._custom import InputDecoder, input_of
from ._events import Call, EventWriter, Part, delta_prefix
from ._response import (
    call_item,
    failure_error,
    item_id,
    message_item,
    output_text,
    refusal_part,
    status_of,
    usage_of,
)
from ._tools import tool_names

__all__ = ["ResponsesStreamEncoder"]

_TEXT, _REFUSAL, _REASONING = "text", "refusal", "reasoning"


class ResponsesStreamEncoder(EventWriter):
    """Canonical chunks → Responses SSE bytes; `skeleton` is the in-progress response (`_response.skeleton`,
    or `to_response` of an empty completion with `status: in_progress`)."""

    __slots__ = (
        "_calls",
        "_count",
        "_done",
        "_finish",
        "_id",
        "_item",
        "_item_index",
        "_names",
        "_part",
        "_skeleton",
        "_started",
        "_usage",
        "response",
    )

    def __init__(self, skeleton: dict[str, Any]) -> None:
        self._skeleton = skeleton
        self._id: str = skeleton["id"]
        self._names = tool_names(skeleton.get("tools"))
        super().__init__()
        self._started = False
        self._count = 0  # output items opened so far: the next one's output_index
        self._done: dict[int, dict[str, Any]] = {}  # finished items by output_index
        self._item: dict[str, Any] | None = None  # the open message or reasoning item, parts so far
        self._item_index = 0
        self._part: Part | None = None  # its open part
        self._calls: dict[int, Call] = {}  # open function calls by tool call index
        self._finish: str | None = None
        self._usage: Mapping[str, Any] | None = None
        #: The final response, once `close` ran.
        self.response: dict[str, Any] | None = None

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
            if reasoning := delta.get("reasoning_content"):
                out.append(self._text(_REASONING, reasoning))
            if text := delta.get("content"):
                out.append(self._text(_TEXT, text))
            if refusal := delta.get("refusal"):
                out.append(self._text(_REFUSAL, refusal))
            for call in delta.get("tool_calls") or ():
                self._tool_call(call, out)
            if finish := choice.get("finish_reason"):
                self._finish = finish
        return b"".join(out)

    def close(self, failure: GatewayError | None) -> bytes:
        out = [] if self._started else [self._start()]
        response = dict(self._skeleton)
        response["usage"] = usage_of(self._usage)
        if failure is not None:
            response.update(status="failed", error=failure_error(failure), output=self._snapshot())
            kind = "response.failed"
        else:
            status, details = status_of(self._finish)
            self._close_all(out, "incomplete" if details else "completed")
            output = [self._done[index] for index in sorted(self._done)]
            response.update(status=status, incomplete_details=details, output=output)
            kind = f"response.{status}"
        self.response = response
        out.append(self._event(kind, {"response": response}))
        return b"".join(out)

    # -- events ---------------------------------------------------------------------------------------------

    def _start(self) -> bytes:
        self._started = True
        created = self._event("response.created", {"response": self._skeleton})
        return created + self._event("response.in_progress", {"response": self._skeleton})

    def _added(self, item: dict[str, Any], out: list[bytes]) -> int:
        """Announce a new output item; returns its output_index."""
        index = self._count
        self._count = index + 1
        out.append(self._event("response.output_item.added", {"output_index": index, "item": item}))
        return index

    def _finished(self, item: dict[str, Any], index: int, out: list[bytes]) -> None:
        self._done[index] = item
        out.append(self._event("response.output_item.done", {"output_index": index, "item": item}))

    # -- text: message parts and reasoning summaries -------------------------------------------------------

    def _text(self, kind: str, text: str) -> bytes:
        part = self._part
        if part is not None and part.kind == kind:
            part.texts.append(text)
            return self._delta(part.prefix, text)
        out: list[bytes] = []
        part = self._open_part(kind, out)
        part.texts.append(text)
        out.append(self._delta(part.prefix, text))
        return b"".join(out)

    def _verbatim(self, chunk: VerbatimChunk) -> bytes:
        """Content chunks already in the chat door's bytes: their strings (`texts`) become text deltas as
        they are, and the part's text gets them all decoded at once; without them, the chunks are parsed and
        read as any other."""
        strings = chunk.text_strings()
        if strings is None:
            return self.encode(cast("list[ChatItem]", chunk.chunks()))
        if not strings:
            return b""
        out: list[bytes] = []
        part = self._part
        if part is None or part.kind != _TEXT:
            part = self._open_part(_TEXT, out)
        # JSON strings joined inside one pair of quotes are the JSON string of the joined texts
        part.texts.append(loads(b'"' + b"".join([string[1:-1] for string in strings]) + b'"'))
        out.append(self._deltas(part.prefix, strings))
        return b"".join(out)

    def _open_part(self, kind: str, out: list[bytes]) -> Part:
        """Open a part of `kind`: in the open message when both are message parts, else in a new item."""
        item = self._item
        if item is not None and (kind == _REASONING or item["type"] == _REASONING):
            self._close_item(out, "completed")
            item = None
        elif item is not None:
            self._close_part(out)
        if item is None:
            self._close_calls(out, "completed")
            item = self._open_item(kind, out)
        fields: dict[str, Any] = {"item_id": item["id"], "output_index": self._item_index}
        if kind == _REASONING:
            fields["summary_index"] = index = 0
            part = {"type": "summary_text", "text": ""}
            out.append(self._event("response.reasoning_summary_part.added", {**fields, "part": part}))
            prefix = delta_prefix("response.reasoning_summary_text.delta", fields)
        else:
            fields["content_index"] = index = len(item["content"])
            part = output_text("") if kind == _TEXT else refusal_part("")
            out.append(self._event("response.content_part.added", {**fields, "part": part}))
            if kind == _TEXT:
                prefix = delta_prefix("response.output_text.delta", {**fields, "logprobs": []})
            else:
                prefix = delta_prefix("response.refusal.delta", fields)
        self._part = Part(kind, index, prefix)
        return self._part

    def _open_item(self, kind: str, out: list[bytes]) -> dict[str, Any]:
        index = self._count
        if kind == _REASONING:
            item = {"id": item_id("rs", self._id, index), "type": "reasoning", "summary": []}
        else:
            item = message_item(item_id("msg", self._id, index), "in_progress", [])
        self._item_index = self._added(item, out)  # serialized there: the item may change from here on
        self._item = item
        return item

    def _close_part(self, out: list[bytes]) -> None:
        part, item = self._part, self._item
        if part is None or item is None:
            return
        self._part = None
        text = "".join(part.texts)
        fields = {"item_id": item["id"], "output_index": self._item_index}
        if part.kind == _REASONING:
            fields["summary_index"] = part.index
            summary = {"type": "summary_text", "text": text}
            out.append(self._event("response.reasoning_summary_text.done", {**fields, "text": text}))
            out.append(self._event("response.reasoning_summary_part.done", {**fields, "part": summary}))
            item["summary"].append(summary)
            return
        fields["content_index"] = part.index
        if part.kind == _TEXT:
            done = output_text(text)
            out.append(self._event("response.output_text.done", {**fields, "text": text, "logprobs": []}))
        else:
            done = refusal_part(text)
            out.append(self._event("response.refusal.done", {**fields, "refusal": text}))
        out.append(self._event("response.content_part.done", {**fields, "part": done}))
        item["content"].append(done)

    def _close_item(self, out: list[bytes], status: str) -> None:
        item = self._item
        if item is None:
            return
        self._close_part(out)
        self._item = None
        if item["type"] == "message":
            item["status"] = status
        self._finished(item, self._item_index, out)

    # -- function calls ------------------------------------------------------------------------------------

    def _tool_call(self, call: Mapping[str, Any], out: list[bytes]) -> None:
        index: int = call.get("index", 0)
        upstream_id = call.get("id")
        function = call.get("function") or {}
        known = self._calls.get(index)
        if known is not None and upstream_id and known.upstream_id and upstream_id != known.upstream_id:
            self._close_call(index, out, "completed")  # another call at the same index
            known = None
        if known is None:
            self._close_item(out, "completed")
            output_index = self._count
            call_id = upstream_id or item_id("call", self._id, output_index)
            name = function.get("name") or ""
            item = call_item(self._id, output_index, call_id, name, self._names)
            self._added(item, out)
            fields = {"item_id": item["id"], "output_index": output_index}
            custom = item["type"] == "custom_tool_call"
            kind = "custom_tool_call_input" if custom else "function_call_arguments"
            prefix = delta_prefix(f"response.{kind}.delta", fields)
            decoder = InputDecoder() if custom else None
            known = self._calls[index] = Call(dict(item), output_index, upstream_id, prefix, decoder)
        elif upstream_id and not known.upstream_id:
            known.upstream_id = upstream_id  # named late: the call keeps the id the client already has
        if arguments := function.get("arguments"):
            if not isinstance(arguments, str):
                arguments = dumps(arguments).decode()
            known.arguments.append(arguments)
            if known.decoder is None:
                out.append(self._delta(known.prefix, arguments))
            elif text := known.decoder.feed(arguments):
                known.streamed.append(text)
                out.append(self._delta(known.prefix, text))

    def _close_call(self, index: int, out: list[bytes], status: str) -> None:
        call = self._calls.pop(index)
        item = call.item
        arguments = "".join(call.arguments)
        item["status"] = status
        fields = {"item_id": item["id"], "output_index": call.index}
        if call.decoder is None:
            item["arguments"] = arguments
            done = {**fields, "name": item["name"], "arguments": arguments}
            out.append(self._event("response.function_call_arguments.done", done))
        else:
            item["input"] = text = input_of(arguments)
            streamed = "".join(call.streamed)
            if len(text) > len(streamed) and text.startswith(streamed):
                out.append(self._delta(call.prefix, text[len(streamed) :]))
            out.append(self._event("response.custom_tool_call_input.done", {**fields, "input": text}))
        self._finished(item, call.index, out)

    def _close_calls(self, out: list[bytes], status: str) -> None:
        for index in list(self._calls):
            self._close_call(index, out, status)

    def _close_all(self, out: list[bytes], last_status: str) -> None:
        """Close every open item, in output order; the last one gets `last_status` (the item a length limit
        cut short is `incomplete`), the others `completed`."""
        if self._item is not None:
            self._close_item(out, last_status)
            return
        calls = sorted(self._calls, key=lambda index: self._calls[index].index)
        for position, index in enumerate(calls):
            self._close_call(index, out, last_status if position == len(calls) - 1 else "completed")

    def _snapshot(self) -> list[dict[str, Any]]:
        """The output so far for a failed response: open items as they stand, `incomplete`."""
        items = dict(self._done)
        if self._item is not None:
            item = copy.deepcopy(self._item)
            part = self._part
            if part is not None and part.kind == _REASONING:
                item["summary"].append({"type": "summary_text", "text": "".join(part.texts)})
            elif part is not None:
                text = "".join(part.texts)
                item["content"].append(output_text(text) if part.kind == _TEXT else refusal_part(text))
            if item["type"] == "message":
                item["status"] = "incomplete"
            items[self._item_index] = item
        for call in self._calls.values():
            if call.decoder is None:
                so_far = {"arguments": "".join(call.arguments)}
            else:
                so_far = {"input": "".join(call.streamed)}
            items[call.index] = {**call.item, **so_far, "status": "incomplete"}
        return [items[index] for index in sorted(items)]
