"""Messages API `message` → `chat.completion`. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ... import wire
from ...wire import dumps
from .. import claude
from ..reasoning import Thought, details_of
from ..streams import bad_upstream_data
from ._errors import KIND

__all__ = ["finish_reason", "to_completion", "usage_of"]

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

_USAGE = claude.UsageKeys(
    input="input_tokens",
    output="output_tokens",
    cache_read="cache_read_input_tokens",
    cache_write="cache_creation_input_tokens",
    reasoning=("output_tokens_details", "thinking_tokens"),
)


def usage_of(usage: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI usage from an Anthropic `usage` (cache reads and writes are counted apart from the input)."""
    return claude.usage_of(usage, _USAGE)


def finish_reason(stop_reason: Any, tool_calls: bool) -> str:
    return claude.finish_reason(_FINISH_REASONS, stop_reason or "end_turn", tool_calls)


def to_completion(
    message: Mapping[str, Any],
    *,
    json_tool: str | None = None,
    created: int | None = None,
    scope: str | None = None,
) -> dict[str, Any]:
    """Translate a Messages API `message` into a `chat.completion`; with a `scope`, its signed thinking
    and redacted thinking go in `reasoning_details`, sealed for that scope (`reasoning.py`)."""
    if not isinstance(message, Mapping) or not isinstance(message.get("content"), list):
        raise bad_upstream_data(KIND, "the response has no content list")
    texts: list[str] = []
    reasoning: list[str] = []
    thoughts: list[Thought] = []
    tool_calls: list[dict[str, Any]] = []
    for block in message["content"]:
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "thinking":
            reasoning.append(block.get("thinking", ""))
            thoughts.append(Thought(text=block.get("thinking", ""), signature=block.get("signature")))
        elif kind == "redacted_thinking" and isinstance(block.get("data"), str):
            thoughts.append(Thought(data=block["data"]))
        elif kind == "tool_use" and block.get("name") == json_tool:
            texts.append(dumps(block.get("input") or {}).decode())
        elif kind == "tool_use":
            tool_calls.append(
                wire.tool_call(block["id"], block["name"], dumps(block.get("input") or {}).decode())
            )
        # server-tool blocks have no OpenAI form
    content = "".join(texts) if texts else (None if tool_calls else "")
    details = details_of(thoughts, scope) if scope is not None and thoughts else None
    result = wire.message(
        content,
        tool_calls=tool_calls,
        reasoning_content="".join(reasoning) or None,
        reasoning_details=details,
    )
    finish = finish_reason(message.get("stop_reason"), bool(tool_calls))
    return wire.completion(
        str(message.get("model", "")),
        [wire.choice(result, finish)],
        usage_of(message.get("usage") or {}),
        id=str(message.get("id") or wire.completion_id()),
        created=created,
    )
