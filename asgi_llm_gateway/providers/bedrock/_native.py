"""Anthropic Messages requests passed to Claude on Bedrock as they are, through InvokeModel: the body minus
what Bedrock takes elsewhere or refuses, `anthropic_version` and the anthropic-beta values Bedrock accepts;
CountTokens inputs; and the Anthropic events inside InvokeModelWithResponseStream's frames. Pure.

What reaches Bedrock goes through the tables below: a value or field not in them is dropped, never
forwarded, because InvokeModel answers anything it does not know with a 400 ("invalid beta flag",
"extraneous key [...] is not permitted").
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ...eventstream import Frame
from ...wire import dumps, loads
from ..anthropic._native import NativeEvents, beta_values
from ..streams import bad_upstream_data
from ._errors import KIND
from ._stream import frame_event

__all__ = [
    "ANTHROPIC_VERSION",
    "BETAS",
    "CACHE_CONTROL_KEYS",
    "EDIT_BETAS",
    "FIELDS",
    "NativeStreamTranslator",
    "bedrock_betas",
    "converse_count_input",
    "invoke_body",
    "invoke_count_input",
]

#: The only `anthropic_version` InvokeModel documents for Claude (it replaces the `anthropic-version` header).
ANTHROPIC_VERSION = "bedrock-2023-05-31"

# The anthropic-beta values InvokeModel accepts for Claude (sent as the body's `anthropic_beta` list), and
# what each client value becomes there. Anything else is dropped. Sources:
#   [AWS]  Amazon Bedrock user guide, "Anthropic Claude Messages API": "Request and Response" (the
#          `anthropic_beta` field, computer use), "Tool use", "Extended thinking" and "Differences in thinking
#          across model versions" (interleaved thinking: "supported with a beta header" on Claude 4).
#   [LLM]  LiteLLM's per-provider beta table, `litellm/anthropic_beta_headers_config.json`, section "bedrock"
#          (InvokeModel), 2026; it maps the Claude API's tool-search value onto Bedrock's.
#   [CC]   Claude Code's beta constants: tool search is `advanced-tool-use-2025-11-20` on the Claude API,
#          `tool-search-tool-2025-10-19` on Vertex AI and Bedrock.
# Left out on purpose, where the sources disagree or a value is model-specific:
# token-efficient-tools-2025-02-19 and output-128k-2025-02-19 (Claude 3.7 only per [AWS], unsupported per
# [LLM]), dev-full-thinking-2025-05-14 (an allow-listed developer flag). Never on Bedrock per [LLM]:
# claude-code-20250219, oauth-2025-04-20, prompt-caching-scope-2026-01-05, fast-mode-2026-02-01,
# files-api-2025-04-14, mcp-client-*, code-execution-*, web-search-*, web-fetch-*, skills-2025-10-02,
# structured-outputs-2025-11-13 (structured output needs no beta there).
BETAS: Mapping[str, str] = {
    "computer-use-2024-10-22": "computer-use-2024-10-22",  # [AWS]
    "computer-use-2025-01-24": "computer-use-2025-01-24",  # [AWS] [LLM]
    "computer-use-2025-11-24": "computer-use-2025-11-24",  # [LLM]
    "interleaved-thinking-2025-05-14": "interleaved-thinking-2025-05-14",  # [AWS]
    "context-1m-2025-08-07": "context-1m-2025-08-07",  # [AWS] [LLM]
    "context-management-2025-06-27": "context-management-2025-06-27",  # [LLM]
    "compact-2026-01-12": "compact-2026-01-12",  # [LLM]
    "effort-2025-11-24": "effort-2025-11-24",  # [LLM]
    "fine-grained-tool-streaming-2025-05-14": "fine-grained-tool-streaming-2025-05-14",  # [LLM]
    "tool-search-tool-2025-10-19": "tool-search-tool-2025-10-19",  # [LLM] [CC]
    "advanced-tool-use-2025-11-20": "tool-search-tool-2025-10-19",  # [LLM] [CC]
    "thinking-binding-controls-2026-08-01": "thinking-binding-controls-2026-08-01",  # [LLM]
    "thinking-display-updates-2026-08-18": "thinking-display-updates-2026-08-18",  # [LLM]
    "mid-conversation-output-config-2026-07-01": "mid-conversation-output-config-2026-07-01",  # [LLM]
    "mid-conversation-tool-changes-2026-07-01": "mid-conversation-tool-changes-2026-07-01",  # [LLM]
    "dangerous-tool-use-2026-09-03": "dangerous-tool-use-2026-09-03",  # [LLM]
}

# The top-level fields InvokeModel takes in a Claude Messages body, each with the anthropic-beta values one of
# which it needs (empty: none). Sources: [AWS] "Request and Response" (anthropic_version, anthropic_beta,
# max_tokens, system, messages, temperature, top_p, top_k, tools, tool_choice, stop_sequences; thinking in
# "Extended thinking", output_config in "Get validated JSON results"), and [LLM]'s InvokeModel allow-list
# (`BedrockInvokeAnthropicMessagesRequest`: the same plus metadata, output_config and context_management,
# the last only with its beta). Dropped, as not in the table: `model` and `stream` (the URL and the operation
# carry them), `service_tier` (Bedrock's tiers are a header, with other values), `container` and
# `mcp_servers` (no code execution or MCP connector on Bedrock), `speed`, `inference_geo`, `diagnostics`,
# `user_profile_id`, `workspace_id` (Claude API only) and top-level `cache_control` (block-level
# `cache_control` is kept).
FIELDS: Mapping[str, frozenset[str]] = {
    "max_tokens": frozenset(),
    "messages": frozenset(),
    "system": frozenset(),
    "stop_sequences": frozenset(),
    "temperature": frozenset(),
    "top_p": frozenset(),
    "top_k": frozenset(),
    "tools": frozenset(),
    "tool_choice": frozenset(),
    "thinking": frozenset(),
    "metadata": frozenset(),
    "output_config": frozenset(),
    "context_management": frozenset({"context-management-2025-06-27", "compact-2026-01-12"}),
}

# `context_management.edits` types, by the beta each needs: an edit whose beta does not reach Bedrock is
# dropped (and `context_management` with it when no edit is left). Claude API docs (context editing,
# compaction) and [LLM].
EDIT_BETAS: Mapping[str, str] = {
    "clear_tool_uses_20250919": "context-management-2025-06-27",
    "clear_thinking_20251015": "context-management-2025-06-27",
    "compact_20260112": "compact-2026-01-12",
}

#: The `cache_control` keys Bedrock takes ([LLM]): `scope` belongs to prompt-caching-scope, not on Bedrock.
CACHE_CONTROL_KEYS = frozenset({"type", "ttl"})

# Bedrock's usage summary in the last event, no part of Anthropic's protocol.
_BEDROCK_METRICS = "amazon-bedrock-invocationMetrics"


def bedrock_betas(beta: Iterable[str]) -> list[str]:
    """The client's anthropic-beta values as Bedrock knows them; the ones it does not are dropped."""
    return list(dict.fromkeys(BETAS[value] for value in beta_values(beta) if value in BETAS))


def invoke_body(body: Mapping[str, Any], beta: Sequence[str], *, count: bool = False) -> dict[str, Any]:
    """The InvokeModel body for a native Messages request: the fields in `FIELDS` (each only with its beta),
    `anthropic_version`, and `anthropic_beta` when any value survives. `count` (a CountTokens body, whose
    client request has no `max_tokens`) adds the `max_tokens` InvokeModel requires. The client's body is
    never changed."""
    betas = bedrock_betas(beta)
    native: dict[str, Any] = {"anthropic_version": ANTHROPIC_VERSION}
    if betas:
        native["anthropic_beta"] = betas
    for key, value in body.items():
        needs = FIELDS.get(key)
        if needs is None or (needs and needs.isdisjoint(betas)):
            continue
        native[key] = value
    if isinstance(native.get("messages"), list):
        system, messages = _fold_system_turns(native.get("system"), native["messages"])
        native["messages"] = messages
        if system is not None:
            native["system"] = system
    if "context_management" in native:
        kept = _context_management(native.pop("context_management"), betas)
        if kept is not None:
            native["context_management"] = kept
    for key in ("system", "messages", "tools"):
        if isinstance(native.get(key), list):
            native[key] = _without_cache_scope(native[key], nested=key == "messages")
    if count and "max_tokens" not in native:
        native["max_tokens"] = _count_max_tokens(native.get("thinking"))
    return native


def _fold_system_turns(system: Any, messages: list[Any]) -> tuple[Any, list[Any]]:
    """(system, messages) without `role: "system"` turns, which `bedrock-2023-05-31` does not have: their
    text joins the top-level `system` in order, as the chat translation does with system messages, and the
    turns that then meet (one role twice) are merged (in a valid history a turn of tool results can only be
    the first of the two). Unchanged without any."""
    if not any(isinstance(m, Mapping) and m.get("role") == "system" for m in messages):
        return system, messages
    blocks = _blocks(system)
    kept: list[Any] = []
    for message in messages:
        if not isinstance(message, Mapping):
            kept.append(message)
        elif message.get("role") == "system":
            blocks += _blocks(message.get("content"))
        elif kept and isinstance(kept[-1], Mapping) and kept[-1].get("role") == message.get("role"):
            content = _blocks(kept[-1].get("content")) + _blocks(message.get("content"))
            kept[-1] = {**kept[-1], "content": content}
        else:
            kept.append(message)
    return blocks or None, kept


def _blocks(content: Any) -> list[Any]:
    """Content as a list of blocks (a string is one text block; nothing is none)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return list(content) if isinstance(content, list) else []


def _context_management(value: Any, betas: Sequence[str]) -> Any:
    """`context_management` with only the edits whose beta reaches Bedrock; None when none is left."""
    if not isinstance(value, Mapping) or not isinstance(value.get("edits"), list):
        return value  # not the documented shape: Bedrock says what is wrong with it
    edits = [
        edit
        for edit in value["edits"]
        if isinstance(edit, Mapping) and EDIT_BETAS.get(str(edit.get("type"))) in betas
    ]
    return {**value, "edits": edits} if edits else None


def _without_cache_scope(blocks: list[Any], *, nested: bool) -> list[Any]:
    """`blocks` (system or tool definitions, or with `nested` messages and their content) with
    `cache_control` cut down to `CACHE_CONTROL_KEYS`; a list is copied only where something changes."""
    changed = False
    result: list[Any] = []
    for block in blocks:
        new = block
        if isinstance(block, Mapping):
            if nested and isinstance(block.get("content"), list):
                content = _without_cache_scope(block["content"], nested=True)
                if content is not block["content"]:
                    new = {**block, "content": content}
            control = block.get("cache_control")
            if isinstance(control, Mapping) and not CACHE_CONTROL_KEYS.issuperset(control):
                kept = {key: value for key, value in control.items() if key in CACHE_CONTROL_KEYS}
                new = {**new, "cache_control": kept}
        changed = changed or new is not block
        result.append(new)
    return result if changed else blocks


def _count_max_tokens(thinking: Any) -> int:
    """A `max_tokens` for a body that is only counted: above a thinking budget, which must stay below it."""
    budget = thinking.get("budget_tokens") if isinstance(thinking, Mapping) else None
    return budget + 1 if isinstance(budget, int) and not isinstance(budget, bool) else 1


def invoke_count_input(body: Mapping[str, Any]) -> dict[str, Any]:
    """CountTokens' input for an InvokeModel body. `body` is a blob in the service model, so in the JSON
    protocol it travels base64-encoded (what botocore's serializer sends for `invokeModel.body`)."""
    return {"input": {"invokeModel": {"body": base64.b64encode(dumps(body)).decode("ascii")}}}


# The members of Converse's request that CountTokens' `converse` input takes (`ConverseTokensRequest`).
_CONVERSE_COUNT_KEYS = ("messages", "system", "toolConfig", "additionalModelRequestFields")


def converse_count_input(converse: Mapping[str, Any]) -> dict[str, Any]:
    """CountTokens' input for a Converse body: the members `ConverseTokensRequest` has."""
    return {"input": {"converse": {key: converse[key] for key in _CONVERSE_COUNT_KEYS if key in converse}}}


class NativeStreamTranslator:
    """InvokeModelWithResponseStream frames → the Anthropic events inside them (a `StreamTranslator` whose
    "chunks" are native events). Each `chunk` frame carries one event, JSON in base64 `bytes`; exception and
    error frames raise (`frame_event`); the events are checked like Anthropic's own (`NativeEvents`)."""

    def __init__(self, *, secrets: Iterable[str | None] = ()) -> None:
        self._secrets = tuple(secrets)
        self._events = NativeEvents(kind=KIND, secrets=self._secrets)

    @property
    def done(self) -> bool:
        return self._events.done

    def feed(self, item: Frame) -> list[dict[str, Any] | bytes]:
        event, payload = frame_event(item, self._secrets)
        if event != "chunk" or self._events.done:
            return []
        try:
            data = loads(base64.b64decode(payload["bytes"], validate=True))
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise bad_upstream_data(KIND, "a chunk holds no JSON event") from None
        if isinstance(data, dict) and _BEDROCK_METRICS in data:
            data = {key: value for key, value in data.items() if key != _BEDROCK_METRICS}
        return self._events.event(data)

    def end(self) -> list[dict[str, Any] | bytes]:
        return self._events.end()
