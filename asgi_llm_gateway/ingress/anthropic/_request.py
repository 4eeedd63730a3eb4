"""A Messages request → the canonical chat request, for every upstream that is not Anthropic. Pure: the
client's body is read, never changed.

Field by field:

| Messages | chat |
| --- | --- |
| `model`, `max_tokens`, `temperature`, `top_p` | the same (`max_tokens: 0`, a cache pre-warm, is a 400) |
| `system` (string or text blocks) | a system message, first |
| `messages` | see `_messages.py` |
| `stop_sequences` | `stop` |
| `metadata.user_id` | `user` |
| `stream` | `stream`, with `stream_options.include_usage` (the stream encoder reports usage at its end) |
| custom `tools` (`input_schema`) | function tools (`parameters`, `strict` kept); a server tool is a 400 |
| `tool_choice` auto / any / tool / none | `auto` / `required` / the named function / `none` |
| `tool_choice.disable_parallel_tool_use` | `parallel_tool_calls: false` |
| `thinking`, `output_config.effort` | `reasoning_effort` (see `reasoning_effort`) |
| `output_config.format` (or the beta's `output_format`) | `response_format` json_schema, strict |

Without `tools`, `tool_choice` is left out: OpenAI refuses a tool choice with no tools. Every other field
stays behind: `DROPPED_FIELDS` names the ones Anthropic defines, and why no other upstream gets them.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ...errors import GatewayError
from ...providers.claude import THINKING_BUDGETS
from ._errors import anthropic_only
from ._messages import chat_messages

__all__ = ["DROPPED_FIELDS", "reasoning_effort", "to_chat"]

#: Messages fields that reach Anthropic upstreams only, with the reason no other upstream gets them.
DROPPED_FIELDS: Mapping[str, str] = MappingProxyType(
    {
        "top_k": "OpenAI chat has no top-k sampling",
        "context_management": "Anthropic edits the context on its side (clears old tool results and "
        "thinking); other upstreams get the conversation as sent",
        "container": "a code-execution container lives at Anthropic",
        "mcp_servers": "the MCP connector: Anthropic itself calls those servers for the model",
        "service_tier": "Anthropic's capacity choice; OpenAI's tiers are other things at other prices",
        "cache_control": "prompt-cache breakpoints (here and on blocks and tools); other upstreams cache "
        "by prefix or not at all",
        "inference_geo": "where Anthropic runs the model",
        "speed": "Anthropic's fast mode",
        "diagnostics": "Anthropic's prompt-cache diagnostics",
        "thinking.display": "whether Anthropic summarizes or omits thinking, which is not returned here",
    }
)

# `tool_choice.type` → chat's `tool_choice` (`tool` names a function, below).
_TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}

# The name `response_format.json_schema` needs and the Messages API has no slot for.
_OUTPUT_NAME = "output"


def to_chat(body: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical chat request for a Messages request the schema accepted (`validate_messages_request`).

    `model` is kept as the client sent it: routing reads it. A count_tokens body (no `max_tokens`)
    translates too, for an upstream that can only count a chat request."""
    chat: dict[str, Any] = {"model": body["model"], "messages": chat_messages(body)}
    max_tokens = body.get("max_tokens")
    if max_tokens == 0:
        raise anthropic_only("max_tokens", "0 (pre-warming the prompt cache)")
    if max_tokens is not None:
        chat["max_tokens"] = max_tokens
    for name in ("temperature", "top_p"):
        if name in body:
            chat[name] = body[name]
    if stop := body.get("stop_sequences"):
        chat["stop"] = list(stop)
    if user := (body.get("metadata") or {}).get("user_id"):
        chat["user"] = user
    if tools := body.get("tools"):
        _add_tools(chat, tools, body.get("tool_choice"))
    if (effort := reasoning_effort(body)) is not None:
        chat["reasoning_effort"] = effort
    output_format = (body.get("output_config") or {}).get("format") or body.get("output_format")
    if output_format:
        schema = {"name": _OUTPUT_NAME, "schema": output_format["schema"], "strict": True}
        chat["response_format"] = {"type": "json_schema", "json_schema": schema}
    if body.get("stream"):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat


def reasoning_effort(body: Mapping[str, Any]) -> str | None:
    """`reasoning_effort` for the request's `thinking` and `output_config.effort`; None leaves the upstream
    at its own default.

    - `thinking.type: "disabled"` → None, whatever the effort: Anthropic's own default, and `none` is a
      value several reasoning models refuse.
    - `output_config.effort` → the same level (the canonical levels include Anthropic's `xhigh` and `max`;
      each provider narrows them to what its models take).
    - else `thinking.type: "enabled"` → the level whose thinking budget the gateway sends Claude
      (`providers.claude.THINKING_BUDGETS`) the request's budget reaches: below medium's 8192 `low`, below
      high's 16384 `medium`, else `high`. So a level survives the round trip through Claude and back.
    - `adaptive` without an effort (the model decides how much to think) → None: the upstream's default is
      the nearest thing. Unknown thinking types, too.
    """
    thinking = body.get("thinking") or {}
    kind = thinking.get("type")
    if kind == "disabled":
        return None
    effort: str | None = (body.get("output_config") or {}).get("effort")
    if effort is not None:
        return effort
    if kind != "enabled":
        return None
    budget = thinking["budget_tokens"]
    if budget >= THINKING_BUDGETS["high"]:
        return "high"
    return "medium" if budget >= THINKING_BUDGETS["medium"] else "low"


def _add_tools(
    chat: dict[str, Any], tools: list[Mapping[str, Any]], choice: Mapping[str, Any] | None
) -> None:
    chat["tools"] = [_function_tool(tool, i) for i, tool in enumerate(tools)]
    if choice is None:
        return
    kind = choice["type"]
    if kind == "tool":
        chat["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        chat["tool_choice"] = _TOOL_CHOICES[kind]
    if choice.get("disable_parallel_tool_use"):
        chat["parallel_tool_calls"] = False


def _function_tool(tool: Mapping[str, Any], i: int) -> dict[str, Any]:
    """A custom tool as a function tool; a server tool (any other `type`) is a 400 that names it."""
    kind = tool.get("type")
    if kind not in (None, "custom"):
        raise GatewayError(
            f"tools[{i}].type: '{kind}' is an Anthropic server tool, and only an Anthropic upstream runs "
            "server tools; this model is served by another provider",
            status=400,
            param=f"tools[{i}].type",
            code="unsupported_parameter",
        )
    function: dict[str, Any] = {"name": tool["name"]}
    if description := tool.get("description"):
        function["description"] = description
    function["parameters"] = tool["input_schema"]
    if "strict" in tool:
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}
