"""Anthropic stream events (SSE) → `chat.completion.chunk` dicts. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ... import wire
from ...sse import ServerSentEvent
from ...wire import dumps, loads
from ..streams import bad_upstream_data, stream_ended_early
from ._errors import KIND, event_error
from ._response import finish_reason, usage_of

__all__ = ["StreamTranslator"]

# Stream events that belong to a message, so cannot come before `message_start`.
_MESSAGE_EVENTS = frozenset(
    {"content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop"}
)


class _Block:
    """What the translator remembers about an open content block."""

    __slots__ = ("has_input", "input", "kind", "tool_index")

    def __init__(self, kind: str, tool_index: int | None = None, input: Any = None) -> None:
        self.kind = kind  # "text", "thinking", "tool", "json" (the response_format tool) or "other"
        self.tool_index = tool_index
        self.input = input
        self.has_input = False


class StreamTranslator:
    """Turns Anthropic stream events into `chat.completion.chunk` dicts, one event at a time.

    Tool calls are numbered by their order among tool calls, never by Anthropic's content-block index. The
    finish and usage chunks are sent on `message_stop`; a stream without it is an error (`end`).
    """

    def __init__(
        self,
        model: str,
        *,
        json_tool: str | None = None,
        created: int | None = None,
        secrets: Sequence[str | None] = (),
    ) -> None:
        self._builder = wire.ChunkBuilder(model, created=created)
        self._json_tool = json_tool
        self._secrets = secrets
        self._blocks: dict[int, _Block] = {}
        self._tool_calls = 0
        self._usage: dict[str, Any] = {}
        self._stop_reason: str | None = None
        self._started = False
        self.done = False

    def feed(self, item: ServerSentEvent) -> list[dict[str, Any]]:
        """Chunks for one SSE event (`event` is its name, `data` its JSON text)."""
        event, data = item.event, item.data
        if self.done or event == "ping":
            return []
        try:
            payload = loads(data)
        except ValueError:
            raise bad_upstream_data(KIND, f"event '{event}' is not JSON") from None
        if not isinstance(payload, dict):
            raise bad_upstream_data(KIND, f"event '{event}' is not an object")
        kind = payload.get("type", event)
        if event == "error" or kind == "error":
            raise event_error(payload, self._secrets)
        if kind == "message_start":
            return self._start(payload.get("message") or {})
        if not self._started:
            if kind in _MESSAGE_EVENTS:
                raise bad_upstream_data(KIND, f"'{kind}' before message_start")
            return []
        if kind == "content_block_start":
            return self._block_start(payload.get("index", 0), payload.get("content_block") or {})
        if kind == "content_block_delta":
            return self._block_delta(payload.get("index", 0), payload.get("delta") or {})
        if kind == "content_block_stop":
            return self._block_stop(payload.get("index", 0))
        if kind == "message_delta":
            self._stop_reason = (payload.get("delta") or {}).get("stop_reason") or self._stop_reason
            self._usage.update({k: v for k, v in (payload.get("usage") or {}).items() if v is not None})
            return []
        if kind == "message_stop":
            self.done = True
            finish = finish_reason(self._stop_reason, self._tool_calls > 0)
            return [self._builder.finish(finish), self._builder.usage(usage_of(self._usage))]
        return []  # event types added later are skipped, as Anthropic asks clients to do

    def end(self) -> list[dict[str, Any]]:
        """Call when the upstream closed the stream: a stream that never said `message_stop` failed."""
        if not self.done:
            raise stream_ended_early(KIND)
        return []

    def _start(self, message: Mapping[str, Any]) -> list[dict[str, Any]]:
        if self._started:
            return []
        self._started = True
        if message.get("id"):
            self._builder.id = str(message["id"])
        if message.get("model"):
            self._builder.model = str(message["model"])
        self._usage = dict(message.get("usage") or {})
        return [self._builder.role()]

    def _block_start(self, index: int, block: Mapping[str, Any]) -> list[dict[str, Any]]:
        kind = block.get("type")
        if kind == "tool_use" and block.get("name") == self._json_tool:
            self._blocks[index] = _Block("json", input=block.get("input"))
            return []
        if kind == "tool_use":
            tool_index = self._tool_calls
            self._tool_calls += 1
            self._blocks[index] = _Block("tool", tool_index, block.get("input"))
            delta = wire.tool_call_delta(tool_index, id=str(block.get("id")), name=str(block.get("name")))
            return [self._builder.chunk({"tool_calls": [delta]})]
        if kind == "text":
            self._blocks[index] = _Block("text")
            return [self._builder.chunk({"content": block["text"]})] if block.get("text") else []
        if kind == "thinking":
            self._blocks[index] = _Block("thinking")
            thinking = block.get("thinking")
            return [self._builder.chunk({"reasoning_content": thinking})] if thinking else []
        self._blocks[index] = _Block("other")
        return []

    def _block_delta(self, index: int, delta: Mapping[str, Any]) -> list[dict[str, Any]]:
        block = self._blocks.get(index)
        if block is None:
            raise bad_upstream_data(KIND, f"delta for content block {index} before its start")
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [self._builder.chunk({"content": delta["text"]})]
        if kind == "thinking_delta" and delta.get("thinking"):
            return [self._builder.chunk({"reasoning_content": delta["thinking"]})]
        if kind == "input_json_delta" and delta.get("partial_json"):
            block.has_input = True
            return [self._arguments(block, delta["partial_json"])]
        return []  # signature_delta, citations_delta and empty fragments carry nothing for the client

    def _block_stop(self, index: int) -> list[dict[str, Any]]:
        block = self._blocks.pop(index, None)
        if block is None or block.kind not in ("tool", "json") or block.has_input:
            return []
        # No argument fragments: the input is the one in content_block_start, usually {}.
        return [self._arguments(block, dumps(block.input or {}).decode())]

    def _arguments(self, block: _Block, fragment: str) -> dict[str, Any]:
        if block.kind == "json":
            return self._builder.chunk({"content": fragment})
        assert block.tool_index is not None
        return self._builder.chunk(
            {"tool_calls": [wire.tool_call_delta(block.tool_index, arguments=fragment)]}
        )
