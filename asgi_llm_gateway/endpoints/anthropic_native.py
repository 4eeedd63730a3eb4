"""Relaying an Anthropic upstream's own Messages events to an Anthropic client, untouched.

With a provider that speaks Messages natively (`Provider.speaks_messages`), the `/v1/messages` door does
not translate at all: thinking blocks and their signatures, `cache_control`, citations and server-tool
blocks reach the client exactly as the upstream sent them. Only `message.model` is set to the target that
answered, as on every door. The stream is complete once `message_stop` arrived; the usage is read from
`message_start` and `message_delta` (Anthropic reports it in both, the later counts winning).
"""

from __future__ import annotations

from typing import Any

from ..errors import GatewayError
from ..ingress.anthropic import error_event
from ..pipeline.call import Call
from ..providers.anthropic import usage_of
from ..wire import dumps

__all__ = ["NativeEvents", "NativeProgress"]


class NativeEvents:
    """Native event dicts → `event: <type>` / `data: <json>` SSE bytes (the `StreamEncoder` of this door)."""

    __slots__ = ("model",)

    def __init__(self, model: str) -> None:
        self.model = model

    def encode(self, events: list[dict[str, Any] | bytes]) -> bytes:
        out = []
        for event in events:
            if isinstance(event, bytes):  # text deltas as the upstream wrote them
                out.append(event)
                continue
            kind = event.get("type", "")
            if kind == "message_start" and isinstance(event.get("message"), dict):
                event["message"]["model"] = self.model
            out.append(b"event: " + kind.encode() + b"\ndata: " + dumps(event) + b"\n\n")
        return out[0] if len(out) == 1 else b"".join(out)

    def close(self, failure: GatewayError | None) -> bytes:
        return error_event(failure) if failure is not None else b""


class NativeProgress:
    """Whether the native stream reached `message_stop`; records its usage on the call."""

    __slots__ = ("call", "complete", "usage")

    def __init__(self, call: Call) -> None:
        self.call = call
        self.complete = False
        self.usage: dict[str, Any] = {}

    def see(self, events: list[dict[str, Any] | bytes]) -> None:
        for event in events:
            if isinstance(event, bytes):
                continue
            kind = event.get("type")
            if kind == "message_start":
                self._count((event.get("message") or {}).get("usage"))
            elif kind == "message_delta":
                self._count(event.get("usage"))
            elif kind == "message_stop":
                self.complete = True

    def _count(self, usage: Any) -> None:
        if isinstance(usage, dict):
            self.usage.update((key, value) for key, value in usage.items() if value is not None)
            self.call.usage = usage_of(self.usage)
