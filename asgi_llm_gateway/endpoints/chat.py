"""`POST /v1/chat/completions`: the canonical door.

    auth ─▶ read + validate ─▶ plan targets ─▶ hooks: request_started, admit
         ─▶ attempts(complete | open stream) ─▶ JSON answer | relay(ChatEncoder) ─▶ settle (hooks, usage)

The request is already canonical (OpenAI chat), so there is no ingress translation beyond rewriting the
deprecated `functions` form into tools (and the answer back, see `legacy.py`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import TYPE_CHECKING, Any

from ..asgi import send_json
from ..errors import GatewayError
from ..legacy import as_function_call_chunk, as_function_call_completion, uses_functions, with_tools
from ..pipeline.attempts import WithinTotalTimeout
from ..pipeline.call import Call
from ..policy import Policy
from ..providers.base import ChatItem, Chunk, Request, VerbatimChunk, model_member
from ..routing import Plan, Target
from ..schemas import validate_chat_request
from ..watch import Spawn
from ..wire import SSE_DONE, TextFrame, sse_event
from . import Exchange, OpenAIErrors
from .door import Door, first_batch, read_request

if TYPE_CHECKING:
    pass

__all__ = ["ChatEncoder", "ChatEndpoint"]

#: What an OpenAI chunk holds when usage was asked for, on every chunk but the usage one.
USAGE_NULL = b',"usage":null'

Opened = tuple[AsyncIterator[list[ChatItem]], list[ChatItem]]


class ChatEndpoint(OpenAIErrors, Door):
    methods = frozenset({"POST"})

    async def __call__(self, exchange: Exchange) -> None:
        principal, body, model, plan, started = await read_request(
            self.gateway, exchange, validate_chat_request
        )
        legacy_answer = False
        if uses_functions(body):  # deprecated function calling: every provider gets tools
            legacy_answer = body.get("functions") is not None
            body = with_tools(body)
        call = Call(exchange.request_id, "chat.completions", principal, model, body, started)
        await self.serve(
            call,
            exchange,
            partial(self._complete, call, plan, exchange, legacy_answer),
            partial(self._stream, call, plan, exchange, legacy_answer),
        )

    async def _complete(self, call: Call, plan: Plan, exchange: Exchange, legacy_answer: bool) -> None:
        outcome = await self.attempt(call, plan, exchange, partial(_complete_once, call.body))
        if outcome is None:
            return
        result = outcome.result
        result["model"] = outcome.target.name
        if legacy_answer:
            as_function_call_completion(result)
        call.usage = result.get("usage")
        await send_json(exchange.send, 200, result, call.headers())
        await self.gateway.settle(call, 200)

    async def _stream(
        self, call: Call, plan: Plan, exchange: Exchange, legacy_answer: bool, spawn: Spawn
    ) -> None:
        attempt = partial(_open_stream_once, call.body)
        outcome = await self.attempt(call, plan, exchange, attempt, keep_slot=True)
        if outcome is None:
            return
        batches, first = outcome.result
        include_usage = bool((call.body.get("stream_options") or {}).get("include_usage"))
        encoder = ChatEncoder(outcome.target.name, include_usage, legacy_answer)
        await self.relay(call, outcome, first, batches, encoder, exchange, spawn)


async def _complete_once(body: Request, target: Target, policy: Policy) -> dict[str, Any]:
    async with WithinTotalTimeout(target, policy):
        return await target.provider.complete(body, target.model)


async def _open_stream_once(body: Request, target: Target, policy: Policy) -> Opened:
    batches = target.provider.chat_batches(body, target.model)
    return batches, await first_batch(batches, target, policy)


class ChatEncoder:
    """Canonical chunks → OpenAI `chat.completion.chunk` events, as the client asked for them: the usage
    chunk only with `stream_options.include_usage` (and then `usage: null` on every other chunk), and the
    deprecated `function_call` shape for clients that sent `functions`.

    A `VerbatimChunk` (content chunks already in this format: as an OpenAI-family upstream wrote them, or
    as a translator wrote them around the upstream's strings) goes out as the bytes it came in, with
    `"model":` naming the target instead of the upstream's model and `"usage":null` added or taken out as
    the client asked, instead of a parse and an encode: a framed run has its frame rewritten once and is
    written in one join, any other such chunk takes two byte replacements. A chunk written in another
    spacing, where a replacement finds nothing, is parsed and encoded as any other."""

    __slots__ = ("_frames", "_member", "_upstream", "include_usage", "legacy_answer", "model")

    def __init__(self, model: str, include_usage: bool, legacy_answer: bool) -> None:
        self.model = model
        self.include_usage = include_usage
        self.legacy_answer = legacy_answer
        self._member = model_member(model)  # `"model":"<target>"`
        self._upstream = ("", b"")  # the last upstream model seen, and its member
        #: The last framed run's frame, and the frame this door writes its events in (None: it cannot).
        self._frames: tuple[TextFrame | None, TextFrame | None] = (None, None)

    def encode(self, chunks: list[ChatItem]) -> bytes:
        event, verbatim = self._event, self._verbatim
        if len(chunks) == 1:  # the common case of a paced stream, without the list
            chunk = chunks[0]
            return verbatim(chunk) if isinstance(chunk, VerbatimChunk) else event(chunk)
        return b"".join([verbatim(c) if isinstance(c, VerbatimChunk) else event(c) for c in chunks])

    def _event(self, chunk: Chunk) -> bytes:
        chunk["model"] = self.model
        if not chunk.get("choices"):
            if self.include_usage and chunk.get("usage") is not None:
                return sse_event(chunk)
            return b""
        if self.include_usage:
            chunk["usage"] = None
        elif "usage" in chunk:
            del chunk["usage"]
        if self.legacy_answer:
            as_function_call_chunk(chunk)
        return sse_event(chunk)

    def _verbatim(self, chunk: VerbatimChunk) -> bytes:
        frame = chunk.frame
        if frame is not None:  # a run kept as its frame: the events written around its strings, in one join
            if frame is not self._frames[0]:
                self._frames = (frame, self._client_frame(chunk, frame))
            client = self._frames[1]
            if client is not None and chunk.texts is not None:
                return client.write(chunk.texts, chunk.pads, b"")
        data, count = chunk.data, chunk.count
        if chunk.model != self.model:
            if chunk.model != self._upstream[0]:
                self._upstream = (chunk.model, model_member(chunk.model))
            upstream = self._upstream[1]
            if count == 1 and data.find(upstream) < 0:  # a run has it once in every event (`runs`)
                return self._parsed(chunk)
            data = data.replace(upstream, self._member)
        if chunk.usage_null != self.include_usage:
            if self.include_usage:
                if not data.endswith(b"}"):  # then neither does any event of the run: they end alike
                    return self._parsed(chunk)
                data = data.replace(b"}\n\ndata: ", USAGE_NULL + b"}\n\ndata: ")[:-1] + USAGE_NULL + b"}"
            elif count == 1 and data.find(USAGE_NULL) < 0:
                return self._parsed(chunk)
            else:
                data = data.replace(USAGE_NULL, b"")
        return b"data: " + data + b"\n\n"

    def _client_frame(self, chunk: VerbatimChunk, frame: TextFrame) -> TextFrame | None:
        """`frame` as this door writes it: whole SSE events, `model` naming the target, `"usage":null` as the
        client asked. None when a change is not in the constant parts exactly once; then the run's joined
        data takes the replacements. Replacing in the parts is the same as replacing in the events: each
        member starts with a quote, a string holds no quote but its two, a pad none, the head ends with
        `"content":` and the tail starts after the string, so no member lies in or across a string or pad."""
        head, tail, end = frame
        if chunk.model != self.model:
            upstream = model_member(chunk.model)
            if head.count(upstream) != 1 or upstream in tail or upstream in end:
                return None
            head = head.replace(upstream, self._member)
        if chunk.usage_null != self.include_usage:
            if not self.include_usage:
                if (head + tail + end).count(USAGE_NULL) != 1:
                    return None
                head, tail, end = (
                    head.replace(USAGE_NULL, b""),
                    tail.replace(USAGE_NULL, b""),
                    end.replace(USAGE_NULL, b""),
                )
            elif end:
                if not end.endswith(b"}"):
                    return None
                end = end[:-1] + USAGE_NULL + b"}"
            else:
                if not tail.endswith(b"}"):
                    return None
                tail = tail[:-1] + USAGE_NULL + b"}"
        return TextFrame(b"data: " + head, tail, end + b"\n\n")

    def _parsed(self, chunk: VerbatimChunk) -> bytes:
        """The chunk's events parsed and encoded as any other: written in a way a replacement cannot trust."""
        return b"".join([self._event(parsed) for parsed in chunk.chunks()])

    def close(self, failure: GatewayError | None) -> bytes:
        return sse_event(failure.to_dict()) if failure is not None else SSE_DONE
