"""A mock LLM upstream fast enough never to be the bottleneck: raw asyncio protocol + httptools + uvloop.

It answers every native format the gateway speaks, with canned bodies built once and cached:

    POST /v1/chat/completions                         OpenAI (JSON, or SSE when "stream": true)
    POST /v1/messages                                 Anthropic Messages (JSON, or SSE when "stream": true)
    POST /v1beta/models/{m}:generateContent           Gemini JSON
    POST /v1beta/models/{m}:streamGenerateContent     Gemini SSE (alt=sse)
    POST /model/{id}/converse                         Bedrock Converse JSON
    POST /model/{id}/converse-stream                  Bedrock ConverseStream (vnd.amazon.eventstream)
    POST /v1/responses                                OpenAI Responses (JSON, or SSE when "stream": true)
    POST /v1/embeddings                               OpenAI embeddings (floats, or base64 when asked)

A streamed answer has N content chunks, N taken from the request's token limit (`max_tokens`,
`max_output_tokens`, `generationConfig.maxOutputTokens`, `inferenceConfig.maxTokens`) so one mock serves
every run; the load generator picks N through the request body it sends. Events are written one at a time
`--chunk-interval-ms` apart (as a real model does, so that each event reaches the gateway in its own read),
except when the request's temperature is 0 (`temperature`, `generationConfig.temperature`,
`inferenceConfig.temperature`): then the whole stream goes out in one write.

An embeddings answer has one canned vector per input (`DIMENSIONS` floats, or the request's `dimensions`),
the same for every input, encoded as the request's `encoding_format` asks (base64: little-endian float32).

Run: python bench/mock_upstream.py --port 9001 [--chunk-interval-ms 1]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import struct
import zlib
from typing import Any

import httptools

try:
    import orjson

    def _loads(data: bytes) -> Any:
        return orjson.loads(data)

    def _dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)
except ImportError:  # pragma: no cover

    def _loads(data: bytes) -> Any:
        return json.loads(data)

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()


DEFAULT_CHUNKS = 16
TOKEN = "tok "  # the text of one content chunk
CREATED = 1700000000


# -- canned bodies ---------------------------------------------------------------------------------------


def openai_json(n: int) -> bytes:
    return _dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": CREATED,
            "model": "gpt-bench",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": TOKEN * n,
                        "refusal": None,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": n, "total_tokens": 12 + n},
            "service_tier": "default",
            "system_fingerprint": "fp_bench",
        }
    )


def openai_sse(n: int) -> list[bytes]:
    """As OpenAI writes a stream whose request asked for usage (the gateway always asks): every chunk has
    `usage: null` until the usage chunk, and an `obfuscation` field that pads its length."""
    base = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": "gpt-bench",
        "service_tier": "default",
        "system_fingerprint": "fp_bench",
    }

    def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        chunk = {**base, "choices": [choice], "usage": None, "obfuscation": "Zk3q"}
        return b"data: " + _dumps(chunk) + b"\n\n"

    events = [event({"role": "assistant", "content": ""})]
    events += [event({"content": TOKEN}) for _ in range(n)]
    events.append(event({}, "stop"))
    usage = {"prompt_tokens": 12, "completion_tokens": n, "total_tokens": 12 + n}
    events.append(b"data: " + _dumps({**base, "choices": [], "usage": usage}) + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


def anthropic_json(n: int) -> bytes:
    return _dumps(
        {
            "id": "msg_bench",
            "type": "message",
            "role": "assistant",
            "model": "claude-bench",
            "content": [{"type": "text", "text": TOKEN * n}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 12, "output_tokens": n},
        }
    )


def anthropic_sse(n: int) -> list[bytes]:
    def event(name: str, payload: dict[str, Any]) -> bytes:
        return b"event: " + name.encode() + b"\ndata: " + _dumps({"type": name, **payload}) + b"\n\n"

    message: dict[str, Any] = {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": "claude-bench",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 1},
    }
    events = [
        event("message_start", {"message": message}),
        event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
    ]
    events += [
        event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": TOKEN}})
        for _ in range(n)
    ]
    events.append(event("content_block_stop", {"index": 0}))
    events.append(
        event(
            "message_delta",
            {"delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": n}},
        )
    )
    events.append(event("message_stop", {}))
    return events


def _gemini_usage(n: int) -> dict[str, Any]:
    return {"promptTokenCount": 12, "candidatesTokenCount": n, "totalTokenCount": 12 + n}


def gemini_json(n: int) -> bytes:
    return _dumps(
        {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": TOKEN * n}]},
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": _gemini_usage(n),
            "modelVersion": "gemini-bench",
            "responseId": "resp_bench",
        }
    )


def gemini_sse(n: int) -> list[bytes]:
    events = []
    for i in range(max(n, 1)):
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": TOKEN}]}, "index": 0}
        if i == max(n, 1) - 1:
            candidate["finishReason"] = "STOP"
        body = {
            "candidates": [candidate],
            "usageMetadata": _gemini_usage(i + 1),
            "modelVersion": "gemini-bench",
            "responseId": "resp_bench",
        }
        events.append(b"data: " + _dumps(body) + b"\r\n\r\n")  # Google's servers end SSE lines with CRLF
    return events


def _bedrock_usage(n: int) -> dict[str, Any]:
    return {"inputTokens": 12, "outputTokens": n, "totalTokens": 12 + n}


def bedrock_json(n: int) -> bytes:
    return _dumps(
        {
            "output": {"message": {"role": "assistant", "content": [{"text": TOKEN * n}]}},
            "stopReason": "end_turn",
            "usage": _bedrock_usage(n),
            "metrics": {"latencyMs": 1},
        }
    )


def _string_header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack(">B", len(raw_name)) + raw_name + struct.pack(">BH", 7, len(raw_value)) + raw_value


def eventstream_frame(event_type: str, payload: bytes) -> bytes:
    """One `application/vnd.amazon.eventstream` frame (big-endian lengths, CRC-32 of prelude and message)."""
    headers = (
        _string_header(":event-type", event_type)
        + _string_header(":content-type", "application/json")
        + _string_header(":message-type", "event")
    )
    total = 12 + len(headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", zlib.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + headers + payload
    return message + struct.pack(">I", zlib.crc32(message) & 0xFFFFFFFF)


def bedrock_stream(n: int) -> list[bytes]:
    def frame(event_type: str, payload: dict[str, Any]) -> bytes:
        return eventstream_frame(event_type, _dumps({**payload, "p": "abcdefghij"}))

    events = [frame("messageStart", {"role": "assistant"})]
    events += [
        frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": TOKEN}}) for _ in range(n)
    ]
    events.append(frame("contentBlockStop", {"contentBlockIndex": 0}))
    events.append(frame("messageStop", {"stopReason": "end_turn"}))
    events.append(frame("metadata", {"usage": _bedrock_usage(n), "metrics": {"latencyMs": 1}}))
    return events


def _responses_usage(n: int) -> dict[str, Any]:
    return {
        "input_tokens": 12,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": n,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 12 + n,
    }


def _responses_message(text: str, status: str) -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}] if text else []
    return {"id": "msg_bench", "type": "message", "status": status, "role": "assistant", "content": content}


def _response(
    n: int, status: str, output: list[dict[str, Any]], usage: dict[str, Any] | None
) -> dict[str, Any]:
    """A Responses `response` object as OpenAI writes it; the fields a request could set are the bench's."""
    return {
        "id": "resp_bench",
        "object": "response",
        "created_at": CREATED,
        "status": status,
        "background": False,
        "completed_at": CREATED if status == "completed" else None,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": n,
        "max_tool_calls": None,
        "model": "gpt-bench",
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": False,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_logprobs": 0,
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": {},
    }


def responses_json(n: int) -> bytes:
    return _dumps(
        _response(n, "completed", [_responses_message(TOKEN * n, "completed")], _responses_usage(n))
    )


def responses_sse(n: int) -> list[bytes]:
    """As OpenAI streams a response: `event:` lines, `sequence_number` from 0, `response.created` ...
    `response.completed`, an `obfuscation` pad on each text delta."""
    events: list[bytes] = []

    def emit(kind: str, **fields: Any) -> None:
        payload = {"type": kind, "sequence_number": len(events), **fields}
        events.append(b"event: " + kind.encode() + b"\ndata: " + _dumps(payload) + b"\n\n")

    text = TOKEN * n
    where = {"item_id": "msg_bench", "output_index": 0, "content_index": 0}
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    started = _response(n, "in_progress", [], None)
    emit("response.created", response=started)
    emit("response.in_progress", response=started)
    emit("response.output_item.added", output_index=0, item=_responses_message("", "in_progress"))
    emit("response.content_part.added", **where, part={**part, "text": ""})
    for _ in range(n):
        emit("response.output_text.delta", **where, delta=TOKEN, logprobs=[], obfuscation="Zk3q")
    emit("response.output_text.done", **where, text=text, logprobs=[])
    emit("response.content_part.done", **where, part=part)
    message = _responses_message(text, "completed")
    emit("response.output_item.done", output_index=0, item=message)
    emit("response.completed", response=_response(n, "completed", [message], _responses_usage(n)))
    return events


DIMENSIONS = 256  # floats per canned embedding, unless the request asks for `dimensions`
EMBEDDING_TOKENS = 8  # prompt tokens counted per input


def embedding_vector(dimensions: int) -> list[float]:
    """The canned vector: small values exact in float32, so floats and base64 carry the same numbers."""
    return [((i % 17) - 8) / 64 for i in range(dimensions)]


def embeddings_json(count: int, dimensions: int, base64_encoded: bool) -> bytes:
    """OpenAI's embeddings answer: `count` copies of the canned vector, as floats or as base64 of
    little-endian float32 (what `encoding_format: base64` gets)."""
    vector = embedding_vector(dimensions)
    embedding: Any = vector
    if base64_encoded:
        embedding = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
    tokens = EMBEDDING_TOKENS * count
    return _dumps(
        {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": embedding} for i in range(count)],
            "model": "text-embedding-bench",
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


def embeddings_shape(body: dict[str, Any]) -> tuple[int, int, bool]:
    """(inputs, dimensions, base64) of an embeddings request: a string or one token array is one input."""
    given = body.get("input")
    count = 1
    if isinstance(given, list) and given and not isinstance(given[0], int):
        count = len(given)
    dimensions = body.get("dimensions")
    if not isinstance(dimensions, int) or dimensions <= 0:
        dimensions = DIMENSIONS
    return count, dimensions, body.get("encoding_format") == "base64"


_SSE = b"text/event-stream; charset=utf-8"
_EVENTSTREAM = b"application/vnd.amazon.eventstream"
_JSON = b"application/json"

EMBEDDINGS = "embeddings"  # a route of its own shape: answered by `Responses.embeddings`

#: kind -> (builder of the JSON body, builder of the stream events, stream content type)
FORMATS = {
    "openai": (openai_json, openai_sse, _SSE),
    "anthropic": (anthropic_json, anthropic_sse, _SSE),
    "gemini": (gemini_json, gemini_sse, _SSE),
    "bedrock": (bedrock_json, bedrock_stream, _EVENTSTREAM),
    "responses": (responses_json, responses_sse, _SSE),
}


def route(path: bytes) -> tuple[str, bool | None] | None:
    """(format, stream) for a request path; stream None means "as the body says"."""
    if path.endswith(b"/chat/completions"):
        return "openai", None
    if path.endswith(b"/v1/messages"):
        return "anthropic", None
    if b":streamGenerateContent" in path:
        return "gemini", True
    if b":generateContent" in path:
        return "gemini", False
    if path.endswith(b"/converse-stream"):
        return "bedrock", True
    if path.endswith(b"/converse"):
        return "bedrock", False
    if path.endswith(b"/responses"):
        return "responses", None
    if path.endswith(b"/embeddings"):
        return EMBEDDINGS, False
    return None


def paced(body: dict[str, Any]) -> bool:
    """Whether to space the events out: everything but temperature 0 (the bench's "burst" switch)."""
    for value in (
        body.get("temperature"),
        (body.get("generationConfig") or {}).get("temperature"),
        (body.get("inferenceConfig") or {}).get("temperature"),
    ):
        if value is not None:
            return bool(value)
    return True


def chunk_count(body: dict[str, Any]) -> int:
    for value in (
        body.get("max_tokens"),
        body.get("max_completion_tokens"),
        body.get("max_output_tokens"),
        (body.get("generationConfig") or {}).get("maxOutputTokens"),
        (body.get("inferenceConfig") or {}).get("maxTokens"),
    ):
        if isinstance(value, int) and value >= 0:
            return value
    return DEFAULT_CHUNKS


# -- the server --------------------------------------------------------------------------------------------


def _json_response(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%b" % (
        len(body),
        body,
    )


class Responses:
    """Canned responses, built on first use. Lives on the server, not in the module."""

    def __init__(self) -> None:
        self._json: dict[tuple[str, int], bytes] = {}
        self._stream: dict[tuple[str, int], tuple[bytes, list[bytes]]] = {}
        self._embeddings: dict[tuple[int, int, bool], bytes] = {}

    def json(self, kind: str, n: int) -> bytes:
        key = (kind, n)
        response = self._json.get(key)
        if response is None:
            response = self._json[key] = _json_response(FORMATS[kind][0](n))
        return response

    def embeddings(self, shape: tuple[int, int, bool]) -> bytes:
        """The embeddings answer for (inputs, dimensions, base64), built on first use."""
        response = self._embeddings.get(shape)
        if response is None:
            response = self._embeddings[shape] = _json_response(embeddings_json(*shape))
        return response

    def stream(self, kind: str, n: int) -> tuple[bytes, list[bytes]]:
        """(head, chunked-encoded events); the last element ends with the terminating chunk."""
        key = (kind, n)
        cached = self._stream.get(key)
        if cached is None:
            _, build, content_type = FORMATS[kind]
            head = (
                b"HTTP/1.1 200 OK\r\ncontent-type: "
                + content_type
                + b"\r\ntransfer-encoding: chunked\r\n\r\n"
            )
            framed = [b"%x\r\n%b\r\n" % (len(event), event) for event in build(n)]
            framed[-1] += b"0\r\n\r\n"
            cached = self._stream[key] = (head, framed)
        return cached


_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
_BAD = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


class MockProtocol(asyncio.Protocol):
    def __init__(self, responses: Responses, interval: float) -> None:
        self.responses = responses
        self.interval = interval
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []
        self.pending: list[tuple[bytes, bytes]] = []
        self.writer: asyncio.Task[None] | None = None

    # transport callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.writer is not None:
            self.writer.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.write(_BAD)
                self.transport.close()

    # parser callbacks
    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        url, body = self.url, b"".join(self.body)
        self.url, self.body = b"", []
        if self.writer is not None and not self.writer.done():
            self.pending.append((url, body))  # a pipelined request waits for the stream before it
        else:
            self.respond(url, body)

    def respond(self, url: bytes, raw: bytes) -> None:
        transport = self.transport
        if transport is None:
            return
        path = url.split(b"?", 1)[0]
        found = route(path)
        if found is None:
            transport.write(_NOT_FOUND)
            return
        kind, stream = found
        try:
            body = _loads(raw) if raw else {}
        except ValueError:
            transport.write(_BAD)
            return
        if kind == EMBEDDINGS:
            transport.write(self.responses.embeddings(embeddings_shape(body)))
            return
        n = chunk_count(body)
        if stream is None:
            stream = bool(body.get("stream"))
        if not stream:
            transport.write(self.responses.json(kind, n))
            return
        head, events = self.responses.stream(kind, n)
        if self.interval <= 0 or not paced(body):
            transport.write(head + b"".join(events))
            return
        self.writer = asyncio.get_running_loop().create_task(self.trickle(head, events))

    async def trickle(self, head: bytes, events: list[bytes]) -> None:
        """Write the events one at a time, like a model generating tokens."""
        assert self.transport is not None
        self.transport.write(head + events[0])
        for event in events[1:]:
            await asyncio.sleep(self.interval)
            if self.transport is None or self.transport.is_closing():
                return
            self.transport.write(event)
        while self.pending and self.transport is not None:
            url, body = self.pending.pop(0)
            self.respond(url, body)
            if (
                self.writer is not None
                and not self.writer.done()
                and self.writer is not asyncio.current_task()
            ):
                return


async def serve(host: str, port: int, interval_ms: float) -> None:
    responses = Responses()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: MockProtocol(responses, interval_ms / 1000), host, port, backlog=4096, reuse_address=True
    )
    print(f"mock upstream on http://{host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--chunk-interval-ms", type=float, default=0.0)
    args = parser.parse_args()
    try:
        import uvloop

        run: Any = uvloop.run
    except ImportError:  # pragma: no cover
        run = asyncio.run
    with contextlib.suppress(KeyboardInterrupt):
        run(serve(args.host, args.port, args.chunk_interval_ms))


if __name__ == "__main__":
    main()
