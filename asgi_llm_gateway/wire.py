"""OpenAI wire shapes: ids, `chat.completion` and `chat.completion.chunk` builders, JSON and SSE encoding.

Providers build their results with these helpers so that every response has exactly OpenAI's shape,
whatever upstream served it.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Callable
from typing import Any, NamedTuple

__all__ = [
    "SSE_DONE",
    "ChunkBuilder",
    "TextFrame",
    "completion",
    "completion_id",
    "dumps",
    "loads",
    "message",
    "sse_event",
    "tool_call",
    "tool_call_delta",
    "usage",
]

#: Compact JSON as bytes.
dumps: Callable[[Any], bytes]
#: Parse JSON (bytes or text); raises ValueError on bad input (NaN, Infinity and numbers past the float
#: range included).
loads: Callable[[bytes | str], Any]

try:  # optional accelerator, see the `fast` extra
    import orjson

    # orjson's own functions, not wrappers around them: one Python frame less for every chunk of a stream
    dumps = orjson.dumps
    loads = orjson.loads

except ImportError:  # pragma: no cover - exercised when orjson is absent
    _encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)

    def _dumps(obj: Any) -> bytes:
        return _encoder.encode(obj).encode()

    def _reject_constant(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    def _finite_float(text: str) -> float:
        value = float(text)
        if value in (math.inf, -math.inf):  # `1e999`: orjson refuses it, json would make it `inf`
            raise ValueError(f"{text} is past the range of a JSON number")
        return value

    def _loads(data: bytes | str) -> Any:
        """As orjson: NaN, Infinity and numbers past the float range are errors."""
        return json.loads(data, parse_constant=_reject_constant, parse_float=_finite_float)

    dumps, loads = _dumps, _loads


SSE_DONE = b"data: [DONE]\n\n"


def sse_event(obj: Any) -> bytes:
    """One `data:` event. JSON never contains a raw newline, so one line is always enough."""
    return b"data: " + dumps(obj) + b"\n\n"


def completion_id() -> str:
    return "chatcmpl-" + secrets.token_hex(12)


def tool_call_id() -> str:
    return "call_" + secrets.token_hex(12)


def usage(
    prompt_tokens: int,
    completion_tokens: int,
    *,
    cached_tokens: int | None = None,
    cache_write_tokens: int | None = None,
    reasoning_tokens: int | None = None,
) -> dict[str, Any]:
    """An OpenAI usage object; cached tokens are part of prompt_tokens, reasoning part of completion."""
    result: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    prompt_details: dict[str, int] = {}
    if cached_tokens is not None:
        prompt_details["cached_tokens"] = cached_tokens
    if cache_write_tokens:
        prompt_details["cache_write_tokens"] = cache_write_tokens
    if prompt_details:
        result["prompt_tokens_details"] = prompt_details
    if reasoning_tokens is not None:
        result["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
    return result


def tool_call(id: str, name: str, arguments: str) -> dict[str, Any]:
    """A complete tool call as it appears in `message.tool_calls` (arguments is a JSON string)."""
    return {"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}


def tool_call_delta(
    index: int, *, id: str | None = None, name: str | None = None, arguments: str = ""
) -> dict[str, Any]:
    """A streamed tool-call fragment: id, type and name only in the first fragment of call `index`."""
    if id is not None:
        return {
            "index": index,
            "id": id,
            "type": "function",
            "function": {"name": name or "", "arguments": arguments},
        }
    return {"index": index, "function": {"arguments": arguments}}


def message(
    content: str | None,
    *,
    tool_calls: list[dict[str, Any]] | None = None,
    reasoning_content: str | None = None,
    refusal: str | None = None,
    reasoning_details: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An assistant message. `reasoning_content` is the de-facto extension DeepSeek, vLLM and others use;
    `reasoning_details` (OpenRouter's) carries signed reasoning the client sends back (docs/reasoning.md)."""
    result: dict[str, Any] = {"role": "assistant", "content": content, "refusal": refusal}
    if tool_calls:
        result["tool_calls"] = tool_calls
    if reasoning_content:
        result["reasoning_content"] = reasoning_content
    if reasoning_details:
        result["reasoning_details"] = reasoning_details
    return result


def completion(
    model: str,
    choices: list[dict[str, Any]],
    usage: dict[str, Any] | None,
    *,
    id: str | None = None,
    created: int | None = None,
) -> dict[str, Any]:
    """A `chat.completion`. Each choice is `{"index", "message", "finish_reason", "logprobs"}`."""
    result: dict[str, Any] = {
        "id": id or completion_id(),
        "object": "chat.completion",
        "created": created if created is not None else int(time.time()),
        "model": model,
        "choices": choices,
    }
    if usage is not None:
        result["usage"] = usage
    return result


def choice(
    message: dict[str, Any], finish_reason: str, index: int = 0, logprobs: Any = None
) -> dict[str, Any]:
    return {"index": index, "message": message, "finish_reason": finish_reason, "logprobs": logprobs}


class TextFrame(NamedTuple):
    """The bytes that every event of a text run shares, around the two parts that differ: each event is
    `head` + its JSON string + `tail`, and with pads (OpenAI's `obfuscation` value) `head` + string + `tail`
    + pad + `end`. A run kept as its frame and strings is written out once, in one join, and a door that
    changes the constant parts (the chat door's `model`) changes them once per frame, not once per event."""

    head: bytes
    tail: bytes
    #: After the pad; empty when the events have none.
    end: bytes = b""

    def write(self, texts: list[bytes], pads: list[bytes] | None, sep: bytes) -> bytes:
        """The events holding `texts` (and `pads`), joined by `sep`."""
        head, tail, end = self
        if pads is None:
            last = tail + end
            return head + (last + sep + head).join(texts) + last
        # Interleaved by slice assignment, in C: a loop over the events cost twice as much. An extended
        # slice takes only as many as it has places, so `pads` must be as many as `texts`, as with zip.
        count = len(texts)
        if not count:
            return end
        pieces = [tail] * (4 * count)  # text, tail, pad, between; over and over
        pieces[0::4] = texts
        pieces[2::4] = pads
        pieces[3::4] = [end + sep + head] * count
        pieces[-1] = end
        return head + b"".join(pieces)


class ChunkBuilder:
    """Builds the chunks of one stream: same `id`, `created` and `model` on every chunk."""

    __slots__ = ("_frame", "created", "id", "model")

    def __init__(self, model: str, *, id: str | None = None, created: int | None = None) -> None:
        self.model = model
        self.id = id or completion_id()
        self.created = created if created is not None else int(time.time())
        self._frame: tuple[tuple[str, str, int, int], TextFrame] | None = None

    def content_frame(self, index: int = 0) -> TextFrame:
        """The bytes of `dumps(self.chunk({"content": text}, index=index))` before and after the JSON string
        of `text`: a content chunk written around a string the upstream already encoded (`runs.py`). Kept
        for the stream, and made again if the stream's `id` or `model` changed since."""
        key = (self.id, self.model, self.created, index)
        frame = self._frame
        if frame is None or frame[0] != key:
            # `"content":""` can only be the delta's: inside the id or the model its quotes are escaped
            head, _, tail = dumps(self.chunk({"content": ""}, index=index)).partition(b'"content":""')
            frame = self._frame = (key, TextFrame(head + b'"content":', tail))
        return frame[1]

    def chunk(
        self, delta: dict[str, Any], *, index: int = 0, finish_reason: str | None = None
    ) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": index, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
        }

    def role(self, index: int = 0) -> dict[str, Any]:
        """The first chunk of a choice."""
        return self.chunk({"role": "assistant", "content": ""}, index=index)

    def finish(self, finish_reason: str, index: int = 0) -> dict[str, Any]:
        """The last chunk of a choice."""
        return self.chunk({}, index=index, finish_reason=finish_reason)

    def usage(self, usage: dict[str, Any]) -> dict[str, Any]:
        """The `include_usage` chunk: no choices, only usage."""
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": usage,
        }
