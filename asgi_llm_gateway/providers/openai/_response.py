"""An OpenAI-compatible upstream's answers → canonical ones: `chat.completion`s and their chunks.

Both shapes share the same repairs (reasoning field, finish reasons, tool-call shape, cached-token usage),
so both live here; `_stream.py` only frames the chunks. Normalisation is in place: the native dict is the
gateway's own, freshly parsed.
"""

from __future__ import annotations

from typing import Any

from ...errors import GatewayError
from ...wire import dumps, tool_call_id
from ..streams import bad_upstream_data

__all__ = ["normalize_chunk", "to_completion"]

_FINISH_REASONS = {"model_length": "length", "eos": "stop", "end_turn": "stop"}
_KNOWN_FINISH = {"stop", "length", "tool_calls", "content_filter", "function_call"}


def _finish_reason(value: Any, provider: str) -> str | None:
    if value is None:
        return None
    if value == "error":
        raise GatewayError(
            f"{provider}: the upstream model failed while generating", status=502, code="upstream_error"
        )
    value = _FINISH_REASONS.get(value, value)
    return value if value in _KNOWN_FINISH else "stop"


def _flatten_content(content: Any, target: dict[str, Any]) -> None:
    """Mistral's reasoning models answer content as a list of chunks: text joins, thinking moves aside."""
    if not isinstance(content, list):
        return
    texts: list[str] = []
    thoughts: list[str] = []
    for part in content:
        if part.get("type") == "thinking":
            for inner in part.get("thinking") or ():
                if isinstance(inner, dict) and inner.get("type") == "text":
                    thoughts.append(inner.get("text", ""))
        elif part.get("type") == "text":
            texts.append(part.get("text", ""))
    target["content"] = "".join(texts) if texts or not thoughts else None
    if thoughts:
        target["reasoning_content"] = (target.get("reasoning_content") or "") + "".join(thoughts)


def _normalize_message(message: dict[str, Any]) -> None:
    if "reasoning" in message and "reasoning_content" not in message:
        reasoning = message.pop("reasoning")
        if isinstance(reasoning, str):
            message["reasoning_content"] = reasoning
    _flatten_content(message.get("content"), message)


def _normalize_tool_calls(calls: Any, provider: str) -> None:
    """`message.tool_calls` in OpenAI's exact shape, in place: `id`, `type`, `function: {name, arguments}`.

    Mistral omits `type` and numbers each call with an `index` (a chunk-only field); the SDKs then see
    `type=None` and their tool loops stop (openai-node's `runTools`, the Vercel AI SDK). Unconditional
    rather than a quirk: a call already in shape costs a few dict lookups, only answers with tool calls pay
    them, and a compatible server that deviates the same way is fixed without anyone listing it.
    """
    if not isinstance(calls, list):
        raise bad_upstream_data(provider, "tool_calls that are not a list")
    for call in calls:
        if not isinstance(call, dict):
            raise bad_upstream_data(provider, "a tool call that is not an object")
        call.pop("index", None)
        if not call.get("id") or not isinstance(call["id"], str):
            call["id"] = tool_call_id()
        if call.get("type") is None:
            call["type"] = "function"
        if call["type"] != "function":
            continue  # OpenAI's own `custom` tool calls pass through as they are
        function = call.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise bad_upstream_data(provider, "a tool call without a function name")
        arguments = function.get("arguments")
        if not isinstance(arguments, str):  # absent, or an object instead of its JSON text
            function["arguments"] = "{}" if arguments is None else dumps(arguments).decode()


def _normalize_tool_call_deltas(deltas: Any) -> None:
    """Streamed tool-call fragments as OpenAI sends them, in place: `index` stays (chunks require it), and
    the fragment that opens a call (the one with its `id`) says `type: "function"`."""
    for delta in deltas if isinstance(deltas, list) else ():
        if isinstance(delta, dict) and delta.get("id") is not None and delta.get("type") is None:
            delta["type"] = "function"


def _normalize_usage(usage: dict[str, Any]) -> dict[str, Any]:
    hit = usage.get("prompt_cache_hit_tokens")
    if hit is not None:  # DeepSeek
        details = dict(usage.get("prompt_tokens_details") or {})
        details.setdefault("cached_tokens", hit)
        usage = {**usage, "prompt_tokens_details": details}
    return usage


def to_completion(native: Any, provider: str) -> dict[str, Any]:
    """An upstream `chat.completion`, made canonical (reasoning field, finish reasons, usage)."""
    if not isinstance(native, dict) or not isinstance(native.get("choices"), list):
        raise bad_upstream_data(provider, "a chat.completion without choices")
    for choice in native["choices"]:
        message = choice.get("message")
        if not isinstance(message, dict):
            raise bad_upstream_data(provider, "a choice without a message")
        _normalize_message(message)
        choice["finish_reason"] = _finish_reason(choice.get("finish_reason"), provider) or "stop"
        if message.get("tool_calls"):
            _normalize_tool_calls(message["tool_calls"], provider)
            choice["finish_reason"] = "tool_calls"
        choice.setdefault("logprobs", None)
    native["object"] = "chat.completion"
    for key in ("prompt_filter_results", "x_groq"):
        native.pop(key, None)
    if isinstance(native.get("usage"), dict):
        native["usage"] = _normalize_usage(native["usage"])
    return native


def normalize_chunk(chunk: Any, provider: str) -> dict[str, Any] | None:
    """An upstream `chat.completion.chunk`, made canonical; None for chunks with nothing to say."""
    if not isinstance(chunk, dict):
        raise bad_upstream_data(provider, "a stream event that is not a JSON object")
    if chunk.get("error"):
        error = chunk["error"]
        message = error.get("message") if isinstance(error, dict) else str(error)
        raise GatewayError(f"{provider}: {message}", status=502, code="upstream_error")
    extra = chunk.pop("x_groq", None)
    if isinstance(extra, dict):
        if extra.get("error"):
            raise GatewayError(f"{provider}: {extra['error']}", status=502, code="upstream_error")
        if extra.get("usage") and not chunk.get("usage"):
            chunk["usage"] = extra["usage"]
    choices = chunk.get("choices")
    if not isinstance(choices, list):
        raise bad_upstream_data(provider, "a chunk without choices")
    usage = chunk.get("usage")
    if isinstance(usage, dict):
        chunk["usage"] = _normalize_usage(usage)
    if not choices:
        return chunk if isinstance(usage, dict) else None  # Azure's prompt-filter chunks carry nothing
    for choice in choices:
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            raise bad_upstream_data(provider, "a chunk choice without a delta")
        _normalize_message(delta)
        if delta.get("tool_calls"):
            _normalize_tool_call_deltas(delta["tool_calls"])
        choice["finish_reason"] = _finish_reason(choice.get("finish_reason"), provider)
        choice.pop("content_filter_results", None)
    chunk.pop("prompt_filter_results", None)
    chunk["object"] = "chat.completion.chunk"
    return chunk
