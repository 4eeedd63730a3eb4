"""`relay`: an upstream's canonical chunk batches → the client, as server-sent events in one door's format.

The door passes a `StreamEncoder` (OpenAI chunks, Anthropic `message_*` events, Responses `response.*`
events, …); the relay owns what every door needs: one send per batch, the idle watchdog, recording the
usage, and the end-of-stream checks — a stream that stops before every choice finished, goes quiet, or
breaks mid-way ends with the encoder's error event, never as a silent success.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

import anyio

from ..asgi import Send, send_body
from ..errors import GatewayError
from ..providers.base import ChatItem, VerbatimChunk
from ..providers.streams import stream_ended_early
from ..routing import Target
from ..transport import on_asyncio
from ..watch import Spawn
from .attempts import provider_bug, timed_out
from .call import Call

__all__ = ["SSE_HEADERS", "ChunkProgress", "StreamEncoder", "StreamProgress", "relay"]

logger = logging.getLogger("asgi_llm_gateway")

SSE_HEADERS = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
)


class StreamProgress(Protocol):
    """What a stream's items say so far: whether it is complete. It records the usage on the call."""

    def see(self, batch: list[Any]) -> None: ...

    @property
    def complete(self) -> bool: ...


class StreamEncoder(Protocol):
    """Canonical chunks → one door's event bytes."""

    def encode(self, chunks: list[Any]) -> bytes:
        """The events for one batch of chunks (b"" when there is nothing to send)."""

    def close(self, failure: GatewayError | None) -> bytes:
        """The stream's last bytes: the door's end marker, or its error event for `failure`."""


async def relay(
    call: Call,
    target: Target,
    first: list[Any],
    batches: AsyncIterator[list[Any]],
    encoder: StreamEncoder,
    send: Send,
    *,
    idle_timeout: float,
    spawn: Spawn,
    headers: Sequence[tuple[bytes, bytes]] = (),
    progress: StreamProgress | None = None,
) -> GatewayError | None:
    """Start a 200 event stream and relay every batch; returns the error that ended it, if any.

    By default the items are canonical chunks: the usage chunk (`choices: []`) is recorded on `call` and
    still given to the encoder, which decides whether the client sees it, and the stream is complete once
    every choice finished. A door that relays an upstream's native events passes its own `progress`."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [*SSE_HEADERS, *headers],
        }
    )
    idle = _IdleWatch(idle_timeout)
    progress = progress or ChunkProgress(call)
    batch: list[Any] | None = first
    failure: GatewayError | None = None
    see, encode, monotonic = progress.see, encoder.encode, time.monotonic  # the loop runs once per batch
    try:
        with anyio.CancelScope() as idle.scope:
            idle.start(spawn)
            try:
                while batch is not None:
                    see(batch)
                    events = encode(batch)
                    if events:
                        await send({"type": "http.response.body", "body": events, "more_body": True})
                    batch = await anext(batches, None)
                    idle.last = monotonic()
            finally:
                idle.stop()  # no await since the loop: it cannot have expired since
        if idle.expired:
            failure = timed_out(target, f"no chunk for {idle.timeout:g} s")
        elif not progress.complete:
            failure = stream_ended_early(target.provider.kind)
    except GatewayError as error:
        failure = error
    except Exception as exc:
        failure = provider_bug(target, exc)
    if failure is not None:
        logger.warning("stream %s failed: %s", call.request_id, failure.message)
    await send_body(send, encoder.close(failure), more=False)
    return failure


class ChunkProgress:
    """What canonical chunks say so far: which choices are still open, whether any finished, the usage.
    A `VerbatimChunk` is a content chunk of an open choice (it never finishes one or carries usage)."""

    __slots__ = ("call", "finished", "open_choices")

    def __init__(self, call: Call) -> None:
        self.call = call
        self.open_choices: set[int] = set()
        self.finished = False

    def see(self, batch: list[ChatItem]) -> None:
        for chunk in batch:
            if isinstance(chunk, VerbatimChunk):
                self.open_choices.add(chunk.index)
                continue
            choices = chunk.get("choices")
            if not choices:
                if chunk.get("usage") is not None:
                    self.call.usage = chunk["usage"]
                continue
            for choice in choices:
                if choice.get("finish_reason"):
                    self.open_choices.discard(choice["index"])
                    self.finished = True
                else:
                    self.open_choices.add(choice["index"])

    @property
    def complete(self) -> bool:
        """Every choice that started has finished (a stream with no finish at all is cut short)."""
        return self.finished and not self.open_choices


class _IdleWatch:
    """Ends a stream whose upstream goes quiet for `timeout` seconds, by cancelling `scope`.

    The relay loop only records the time of each batch (`last`), which costs next to nothing; the watch
    looks at it when its time comes and re-arms itself for what is left. On asyncio it is a timer of the
    loop's (a helper task cost a task, its first step and its cancellation per stream); elsewhere (trio) a
    helper task that sleeps. `stop` ends it either way, without cancelling a scope (anyio's `cancel()`
    formats the task's repr, some 10 µs a stream)."""

    __slots__ = ("_timer", "expired", "finished", "last", "scope", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.last = time.monotonic()
        self.expired = False
        self.finished = False
        self.scope: anyio.CancelScope | None = None
        self._timer: asyncio.TimerHandle | None = None

    def start(self, spawn: Spawn) -> None:
        if on_asyncio():
            self._timer = asyncio.get_running_loop().call_later(self.timeout, self._look)
        else:
            spawn(self.run)

    def stop(self) -> None:
        self.finished = True
        if self._timer is not None:
            self._timer.cancel()

    def _look(self) -> None:
        """The timer's callback: end the stream, or wait for the rest of the timeout since the last batch."""
        if self.finished:
            return
        remaining = self.last + self.timeout - time.monotonic()
        if remaining > 0:
            self._timer = asyncio.get_running_loop().call_later(remaining, self._look)
            return
        self.expired = True
        assert self.scope is not None
        self.scope.cancel()

    async def run(self) -> None:
        assert self.scope is not None
        while not self.finished and not self.scope.cancel_called:
            remaining = self.last + self.timeout - time.monotonic()
            if remaining <= 0:
                self.expired = True
                self.scope.cancel()
                return
            await anyio.sleep(remaining)
