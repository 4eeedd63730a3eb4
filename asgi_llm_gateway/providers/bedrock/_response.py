"""Converse response → `chat.completion`. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ... import wire
from ...errors import GatewayError
from ...wire import dumps
from .. import claude
from ..reasoning import Thought, details_of
from ..streams import bad_upstream_data
from ._errors import KIND

__all__ = ["finish_reason", "to_completion", "usage_of"]

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
_MALFORMED = frozenset({"malformed_model_output", "malformed_tool_use"})

_USAGE = claude.UsageKeys(
    input="inputTokens",
    output="outputTokens",
    cache_read="cacheReadInputTokens",
    cache_write="cacheWriteInputTokens",
)


def usage_of(usage: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI usage from a Converse `usage` (cache reads and writes are counted apart from the input)."""
    return claude.usage_of(usage, _USAGE)


def finish_reason(stop_reason: Any, tool_calls: bool) -> str:
    """`malformed_*` stops are a 502: the answer is unusable, and another target may do better."""
    if stop_reason in _MALFORMED:
        raise GatewayError(
            f"{KIND}: the model produced malformed output (stopReason {stop_reason})",
            status=502,
            code="upstream_bad_response",
        )
    return claude.finish_reason(_FINISH_REASONS, str(stop_reason), tool_calls)


def to_completion(
    response: Mapping[str, Any],
    model: str,
    *,
    tool_names: Mapping[str, str] | None = None,
    json_tool: str | None = None,
    created: int | None = None,
    scope: str | None = None,
) -> dict[str, Any]:
    """Translate a Converse response into a `chat.completion`; with a `scope`, signed and redacted reasoning
    go in `reasoning_details`, sealed for that scope (`reasoning.py`)."""
    output = response.get("output") if isinstance(response, Mapping) else None
    message = output.get("message") if isinstance(output, Mapping) else None
    if not isinstance(message, Mapping) or not isinstance(message.get("content"), list):
        raise bad_upstream_data(KIND, "the response has no output message")
    names = tool_names or {}
    texts: list[str] = []
    reasoning: list[str] = []
    thoughts: list[Thought] = []
    tool_calls: list[dict[str, Any]] = []
    for block in message["content"]:
        if "text" in block:
            texts.append(str(block["text"]))
        elif "toolUse" in block:
            use = block["toolUse"]
            arguments = dumps(use.get("input") or {}).decode()
            if use.get("name") == json_tool:
                texts.append(arguments)
            else:
                name = str(use["name"])
                tool_calls.append(wire.tool_call(str(use["toolUseId"]), names.get(name, name), arguments))
        elif "reasoningContent" in block:
            thought = _thought(block["reasoningContent"])
            reasoning.append(thought.text or "")
            thoughts.append(thought)
        # images, citations and server-side tool results have no OpenAI form
    content = "".join(texts) if texts else (None if tool_calls else "")
    details = details_of(thoughts, scope) if scope is not None and thoughts else None
    thinking = "".join(reasoning) or None
    result = wire.message(
        content, tool_calls=tool_calls, reasoning_content=thinking, reasoning_details=details
    )
    finish = finish_reason(response.get("stopReason"), bool(tool_calls))
    return wire.completion(
        model, [wire.choice(result, finish)], usage_of(response.get("usage") or {}), created=created
    )


def _thought(content: Mapping[str, Any]) -> Thought:
    """A `reasoningContent` block: `reasoningText` (text, and a signature on Claude) or `redactedContent`."""
    if isinstance(content.get("redactedContent"), str):
        return Thought(data=content["redactedContent"])
    text = content.get("reasoningText") or {}
    return Thought(text=str(text.get("text", "")), signature=text.get("signature"))
