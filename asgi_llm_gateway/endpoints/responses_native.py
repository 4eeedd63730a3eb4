"""Relaying an OpenAI upstream's own Responses events to the client, untouched but for the model name.

With a provider that speaks the Responses API natively (`Provider.speaks_responses`), the `/v1/responses`
door does not translate: events keep their `sequence_number`s and ids. The stream is complete once
`response.completed` or `response.incomplete` arrived; that event's `response` is what the gateway stores.
Only the `response` objects the events carry change: their `model` is the gateway's name for it, and a
background response keeps the gateway's own `id` (the one it answered and stored before the upstream was
asked) and `background: true` (the upstream is asked synchronously).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import wire
from ..errors import GatewayError
from ..pipeline.call import Call
from ..providers.base import EventRun
from ..wire import dumps

__all__ = ["NativeResponseEvents", "NativeResponseProgress", "chat_usage"]

_FINAL = frozenset({"response.completed", "response.incomplete"})
_WITH_RESPONSE = frozenset({"response.created", "response.in_progress", *_FINAL, "response.failed"})


class NativeResponseEvents:
    """Native event dicts → `event: <type>` / `data: <json>` SSE bytes (this door's `StreamEncoder`); the
    `response` objects they carry get `fields` (at least `model`)."""

    __slots__ = ("fields", "sequence")

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self.fields = fields
        self.sequence = -1  # the last sequence number sent, so an error event can follow it

    def encode(self, events: list[dict[str, Any] | EventRun]) -> bytes:
        out = []
        for event in events:
            if isinstance(event, EventRun):  # text deltas as the upstream wrote them
                self.sequence = event.last
                out.append(event.data)
                continue
            kind = event.get("type", "")
            if kind in _WITH_RESPONSE and isinstance(event.get("response"), dict):
                event["response"].update(self.fields)
            sequence = event.get("sequence_number")
            if isinstance(sequence, int):
                self.sequence = sequence
            out.append(b"event: " + kind.encode() + b"\ndata: " + dumps(event) + b"\n\n")
        return out[0] if len(out) == 1 else b"".join(out)

    def close(self, failure: GatewayError | None) -> bytes:
        if failure is None:
            return b""
        event = {
            "type": "error",
            "sequence_number": self.sequence + 1,
            "code": failure.code,
            "message": failure.message,
            "param": failure.param,
        }
        return b"event: error\ndata: " + dumps(event) + b"\n\n"


class NativeResponseProgress:
    """Whether the native stream reached its final event; keeps the final response and records its usage."""

    __slots__ = ("call", "complete", "response")

    def __init__(self, call: Call) -> None:
        self.call = call
        self.complete = False
        self.response: dict[str, Any] | None = None

    def see(self, events: list[dict[str, Any] | EventRun]) -> None:
        for event in events:
            if isinstance(event, EventRun):
                continue
            if event.get("type") in _FINAL and isinstance(event.get("response"), dict):
                self.complete = True
                self.response = event["response"]
                self.call.usage = chat_usage(self.response.get("usage"))


def chat_usage(usage: Any) -> dict[str, Any] | None:
    """A Responses `usage` object in chat-completions terms, for usage records."""
    if not isinstance(usage, dict):
        return None
    return wire.usage(
        usage.get("input_tokens") or 0,
        usage.get("output_tokens") or 0,
        cached_tokens=(usage.get("input_tokens_details") or {}).get("cached_tokens"),
        reasoning_tokens=(usage.get("output_tokens_details") or {}).get("reasoning_tokens"),
    )
