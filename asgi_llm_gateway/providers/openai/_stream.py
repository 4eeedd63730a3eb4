"""An OpenAI-compatible upstream's server-sent events → canonical chunks, up to `data: [DONE]`."""

from __future__ import annotations

from typing import Any

from ...sse import ServerSentEvent
from ...wire import loads
from ..streams import bad_upstream_data
from ._response import normalize_chunk

__all__ = ["StreamTranslator", "split_usage"]


class StreamTranslator:
    """An OpenAI-style upstream's stream events → normalised chunks, up to `data: [DONE]`.

    The family's `StreamTranslator` (the protocol in `providers/base.py`): `done` turns true at `[DONE]`."""

    __slots__ = ("done", "kind")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.done = False

    def feed(self, event: ServerSentEvent) -> list[dict[str, Any]]:
        data = event.data
        if self.done or not data.strip():
            return []
        if data.startswith("[DONE]"):
            self.done = True
            return []
        try:
            parsed = loads(data)
        except ValueError:
            raise bad_upstream_data(self.kind, "a stream event that is not JSON") from None
        chunk = normalize_chunk(parsed, self.kind)
        return split_usage(chunk) if chunk is not None else []

    def end(self) -> list[dict[str, Any]]:
        """Nothing to add: the relay itself fails a stream whose choices never finished."""
        return []


def split_usage(chunk: dict[str, Any]) -> list[dict[str, Any]]:
    """OpenAI sends usage in its own chunk with `choices: []`; some upstreams attach it to the last one."""
    usage = chunk.get("usage")
    if not chunk["choices"] or not isinstance(usage, dict):
        return [chunk]
    content = {**chunk, "usage": None}
    return [content, {**chunk, "choices": [], "usage": usage}]
