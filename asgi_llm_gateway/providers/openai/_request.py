"""OpenAI request → the body an OpenAI-compatible upstream accepts, as its `Quirks` row says. Pure."""

from __future__ import annotations

import hashlib
import string
from collections.abc import Mapping
from typing import Any

from ...translate import unsupported
from ..base import Request
from ._quirks import Quirks

__all__ = ["short_tool_id", "to_native"]


def to_native(request: Request, model: str, quirks: Quirks, *, provider: str, stream: bool) -> dict[str, Any]:
    """The upstream body for `request`. Pure: the client's request is never modified."""
    body: dict[str, Any] = {}
    for key, value in request.items():
        if key in quirks.drop:
            continue
        if key in quirks.reject and value not in (None, False):
            raise unsupported(provider, key)
        key = quirks.renames.get(key, key)
        if quirks.fields is not None and key not in quirks.fields:
            continue
        body[key] = value
    body["model"] = model
    if (
        not quirks.cache_control
        and "tools" in body
        and any("cache_control" in t for t in body["tools"] or ())
    ):
        body["tools"] = [_without_cache_control(tool) for tool in body["tools"]]
    if quirks.max_n is not None and (request.get("n") or 1) > quirks.max_n:
        raise unsupported(provider, "n", f"at most {quirks.max_n} choice(s)")
    reasoning_model = bool(quirks.reasoning_model_prefixes) and model.startswith(
        quirks.reasoning_model_prefixes
    )
    if reasoning_model and "max_tokens" in body and "max_completion_tokens" not in body:
        body["max_completion_tokens"] = body.pop("max_tokens")
    if body.get("tool_choice") == "required":
        body["tool_choice"] = quirks.required_tool_choice
    if stream:
        body["stream"] = True
        if quirks.stream_usage_option:
            # Always ask for usage so the gateway can meter; it forwards the usage chunk only if asked.
            body["stream_options"] = {**(request.get("stream_options") or {}), "include_usage": True}
    else:
        body.pop("stream", None)
        body.pop("stream_options", None)
    if _messages_need_rewrite(quirks):
        body["messages"] = [_message(m, i, quirks, provider) for i, m in enumerate(request["messages"])]
    return body


def _messages_need_rewrite(quirks: Quirks) -> bool:
    return (
        quirks.developer_as_system
        or not quirks.keep_reasoning_content
        or quirks.message_keys is not None
        or quirks.short_tool_ids
        or quirks.text_only
    )


def _message(message: Mapping[str, Any], index: int, quirks: Quirks, provider: str) -> Mapping[str, Any]:
    """The message as the upstream wants it; the client's own dict when nothing changes (no copy)."""
    if quirks.text_only and isinstance(message.get("content"), list):
        for part_index, part in enumerate(message["content"]):
            if part.get("type") != "text":
                raise unsupported(
                    provider, f"messages[{index}].content[{part_index}].type", f"'{part.get('type')}' parts"
                )
    content = message.get("content")
    strip_cache = not quirks.cache_control and (
        "cache_control" in message or (type(content) is list and _parts_have_cache_control(content))
    )
    if (
        not (quirks.developer_as_system and message.get("role") == "developer")
        and (quirks.keep_reasoning_content or "reasoning_content" not in message)
        and "reasoning_details" not in message
        and not strip_cache
        and quirks.message_keys is None
        and not quirks.short_tool_ids
    ):
        return message
    out = dict(message)
    # Another provider's signed reasoning (docs/reasoning.md): no OpenAI-family upstream can use it.
    out.pop("reasoning_details", None)
    if strip_cache:
        out = _without_cache_control(out)
        if isinstance(out.get("content"), list):
            out["content"] = [_without_cache_control(part) for part in out["content"]]
    if quirks.developer_as_system and out.get("role") == "developer":
        out["role"] = "system"
    if not quirks.keep_reasoning_content:
        out.pop("reasoning_content", None)
    if quirks.message_keys is not None:
        for key in [k for k in out if k not in quirks.message_keys]:
            del out[key]
        if out.get("role") == "user":
            out.pop("name", None)
    if quirks.short_tool_ids:
        if out.get("tool_calls"):
            out["tool_calls"] = [
                {**call, "id": short_tool_id(call.get("id", ""))} for call in out["tool_calls"]
            ]
        if "tool_call_id" in out:
            out["tool_call_id"] = short_tool_id(out["tool_call_id"])
    return out


def _parts_have_cache_control(parts: list[Any]) -> bool:
    return any(type(part) is dict and "cache_control" in part for part in parts)


def _without_cache_control(item: Any) -> Any:
    if type(item) is not dict or "cache_control" not in item:
        return item
    return {key: value for key, value in item.items() if key != "cache_control"}


_ALPHANUMERIC = string.ascii_letters + string.digits


def short_tool_id(original: str) -> str:
    """A 9-character alphanumeric id, derived deterministically so that a call and its result still match."""
    if len(original) == 9 and original.isalnum() and original.isascii():
        return original
    number = int.from_bytes(hashlib.sha256(original.encode()).digest()[:8], "big")
    chars = []
    for _ in range(9):
        number, digit = divmod(number, 62)
        chars.append(_ALPHANUMERIC[digit])
    return "".join(chars)
