"""A canonical `chat.completion` → an Anthropic `message`; the stop reason and usage the stream shares.

Decisions where the APIs differ:

- `stop_reason` is `tool_use` whenever the answer holds tool calls, whatever `finish_reason` says: an agent
  runs its tools only on `tool_use` (some upstreams say `stop` for a tool turn). Else `length` →
  `max_tokens`, `content_filter` (and an OpenAI `refusal` with no content) → `refusal`, anything else →
  `end_turn`. `stop_sequence` is always null: a chat answer does not say which stop sequence ended it.
- Tool call arguments that are not a JSON object (cut off by the token limit, or plainly broken) become
  `input: {}`: a tool_use input must be an object, and the client's own validation of the tool's
  arguments then tells the model what is missing, where a 502 would lose the whole turn.
- Tool call ids go through `tool_use_id` (Anthropic ids allow `[a-zA-Z0-9_-]` only), so the history the
  client sends back is valid for an Anthropic upstream too; an upstream that gave no id gets a `toolu_` one.
- Reasoning (`reasoning_content`) is not returned as a thinking block: a thinking block needs Anthropic's
  signature, and the client would send an unsigned one back, which an Anthropic upstream rejects.
- Usage: Anthropic counts cache reads and writes apart from `input_tokens`, OpenAI within
  `prompt_tokens`; the cache write count comes from `prompt_tokens_details.cache_write_tokens` (the
  gateway's Claude-shaped providers report it there), else 0.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from ...providers.anthropic import tool_use_id
from ...translate import answer_text
from ...wire import loads

__all__ = ["from_completion", "message_id", "new_tool_use_id", "stop_reason", "usage_of"]


def from_completion(completion: Mapping[str, Any], model: str) -> dict[str, Any]:
    """The Anthropic `message` for a `chat.completion`; `model` is the model the client asked for. Only the
    first choice counts: a Messages request asks for one."""
    choices: list[Mapping[str, Any]] = completion.get("choices") or [{}]
    choice = choices[0]
    message = choice.get("message") or {}
    text = answer_text(message.get("content"))
    refusal = message.get("refusal")
    content: list[dict[str, Any]] = []
    if text or refusal:
        content.append({"type": "text", "text": text or refusal})
    calls = message.get("tool_calls") or ()
    content.extend(_tool_use(call) for call in calls)
    return {
        "id": message_id(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason"), bool(calls), bool(refusal and not text)),
        "stop_sequence": None,
        "usage": usage_of(completion.get("usage")),
    }


def stop_reason(finish_reason: str | None, tool_calls: bool, refused: bool = False) -> str:
    """The Messages `stop_reason` for a chat `finish_reason` (see the module docstring)."""
    if tool_calls:
        return "tool_use"
    if finish_reason == "length":
        return "max_tokens"
    if finish_reason == "content_filter" or refused:
        return "refusal"
    return "end_turn"


def usage_of(usage: Mapping[str, Any] | None) -> dict[str, int]:
    """Messages usage for chat usage (zeros when there is none)."""
    if not usage:
        usage = {}
    details = usage.get("prompt_tokens_details") or {}
    read = details.get("cached_tokens") or 0
    write = details.get("cache_write_tokens") or 0
    return {
        "input_tokens": max((usage.get("prompt_tokens") or 0) - read - write, 0),
        "cache_creation_input_tokens": write,
        "cache_read_input_tokens": read,
        "output_tokens": usage.get("completion_tokens") or 0,
    }


def message_id() -> str:
    return "msg_" + secrets.token_hex(12)


def new_tool_use_id() -> str:
    return "toolu_" + secrets.token_hex(12)


def _tool_use(call: Mapping[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    return {
        "type": "tool_use",
        "id": tool_use_id(call["id"]) if call.get("id") else new_tool_use_id(),
        "name": function.get("name") or "",
        "input": _input(function.get("arguments")),
    }


def _input(arguments: Any) -> dict[str, Any]:
    """The arguments as an object; `{}` when they are not a JSON object (see the module docstring)."""
    if isinstance(arguments, dict):
        return arguments
    try:
        value = loads(arguments) if arguments else {}
    except (ValueError, TypeError):  # TypeError: not text at all (the stdlib parser's word for it)
        return {}
    return value if isinstance(value, dict) else {}
