"""A fake OpenAI chat-completions upstream that holds its answers until the test releases them, and counts
the requests whose client went away while held: the slow upstream behind background-response tests.

`POST /v1/chat/completions` (Bearer `KEY`) answers `held: <last user text>` the way OpenAI does, as JSON or
as an event stream (the stream's first chunk, the role, is sent at once; the rest waits). A request whose
last user text contains `[hold]` waits until `release` is set; one containing `[fail]` is answered 500 in
OpenAI's error envelope. While it waits the handler listens for `http.disconnect`: `closed` counts the
requests whose client (the gateway) closed the connection before the answer.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

KEY = "sk-held-upstream-0001"

Scope = MutableMapping[str, Any]


@dataclass
class HeldUpstream:
    #: Set to answer the held requests (and every later one at once).
    release: threading.Event = field(default_factory=threading.Event)
    #: Request bodies, in arrival order.
    requests: list[dict[str, Any]] = field(default_factory=list)
    #: Requests whose client closed the connection while the answer was held.
    closed: int = 0
    #: Requests answered to the end.
    answered: int = 0
    #: Requests being held right now.
    holding: int = 0

    def reset(self) -> None:
        self.release = threading.Event()
        self.requests.clear()
        self.closed = self.answered = self.holding = 0

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = dict(scope["headers"])
        if scope["path"] != "/v1/chat/completions" or scope["method"] != "POST":
            await _json(send, 404, _error("Not found", "invalid_request_error"))
            return
        if headers.get(b"authorization") != f"Bearer {KEY}".encode():
            await _json(send, 401, _error("Incorrect API key provided.", "invalid_request_error"))
            return
        body = json.loads(await _body(receive))
        self.requests.append(body)
        text = _last_user_text(body)
        if "[fail]" in text:
            await _json(send, 500, _error("The upstream failed.", "server_error"))
            return
        answer = f"held: {text}"
        if body.get("stream"):
            await self._stream(body, answer, "[hold]" in text, receive, send)
            return
        if "[hold]" in text and not await self._hold(receive):
            return
        await _json(send, 200, _completion(body["model"], answer))
        self.answered += 1

    async def _hold(self, receive: Any) -> bool:
        """Wait for `release`; False if the client went away first."""
        self.holding += 1
        disconnected = asyncio.ensure_future(_disconnect(receive))
        try:
            while not self.release.is_set():
                if disconnected.done():
                    self.closed += 1
                    return False
                await asyncio.sleep(0.01)
            return True
        finally:
            self.holding -= 1
            disconnected.cancel()

    async def _stream(self, body: dict[str, Any], answer: str, hold: bool, receive: Any, send: Any) -> None:
        model = body["model"]
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await _event(send, _chunk(model, {"role": "assistant", "content": ""}, None))
        if hold and not await self._hold(receive):
            return
        await _event(send, _chunk(model, {"content": answer}, None))
        await _event(send, _chunk(model, {}, "stop"))
        usage = {"id": "chatcmpl-held", "object": "chat.completion.chunk", "created": 0, "model": model}
        await _event(send, {**usage, "choices": [], "usage": _USAGE})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})
        self.answered += 1


_USAGE = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}


def _completion(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-held",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": _USAGE,
    }


def _chunk(model: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {
        "id": "chatcmpl-held",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [choice],
    }


def _error(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return "".join(part.get("text", "") for part in content or [] if isinstance(part, dict))
    return ""


async def _body(receive: Any) -> bytes:
    parts = []
    while True:
        message = await receive()
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(parts)


async def _disconnect(receive: Any) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _json(send: Any, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


async def _event(send: Any, chunk: dict[str, Any]) -> None:
    data = b"data: " + json.dumps(chunk).encode() + b"\n\n"
    await send({"type": "http.response.body", "body": data, "more_body": True})
