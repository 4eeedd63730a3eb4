"""What the gateway knows about Claude models, and the translation every Claude-shaped API shares.

Anthropic's Messages API and Bedrock's Converse spell things differently but are built alike: alternating
turns with tool results first, a forced tool standing in for structured output where the model has none,
content blocks streamed by index, and usage that counts cache reads and writes apart from the input. Those
pieces live here once; each provider passes its spelling as data (`TurnShape`, `UsageKeys`, a finish table).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from .. import wire
from ..errors import GatewayError
from ..translate import json_schema_of, unsupported
from .base import Chunk, Request

__all__ = [
    "JSON_TOOL",
    "JSON_TOOL_DESCRIPTION",
    "ContentBlocks",
    "JsonAnswer",
    "TurnShape",
    "UsageKeys",
    "add_turn",
    "claude_version",
    "default_max_tokens",
    "finish_reason",
    "finish_turns",
    "json_answer",
    "output_schema",
    "thinking_for",
    "thinking_lost",
    "usage_of",
]

Block = dict[str, Any]
Turn = dict[str, Any]

# Extended-thinking budgets for OpenAI's effort levels; the minimum budget is 1024.
THINKING_BUDGETS = {
    "minimal": 1024,
    "low": 2048,
    "medium": 8192,
    "high": 16384,
    "xhigh": 32768,
    "max": 65536,
}
MIN_THINKING_BUDGET = 1024
# The effort parameter of models with adaptive thinking (`minimal` is closest to `low`).
EFFORTS = {
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "xhigh",
    "max": "max",
}

# (model id prefix, maximum output tokens), first match wins.
_MAX_OUTPUT = (
    ("claude-3-7-", 64000),
    ("claude-3-5-", 8192),
    ("claude-3-", 4096),
    ("claude-opus-4-0", 32000),
    ("claude-opus-4-1", 32000),
    ("claude-opus-4-2025", 32000),
    ("claude-4-opus", 32000),
)
_DEFAULT_MAX_OUTPUT = 64000

# `claude-sonnet-4-5…` (family first) or `claude-3-7-sonnet…` (version first); a longer number is a date.
_FAMILY_FIRST = re.compile(r"claude-(?:opus|sonnet|haiku)-(\d+)(?:-(\d)(?!\d))?")
_VERSION_FIRST = re.compile(r"claude-(\d+)(?:-(\d)(?!\d))?")

# Keywords the structured-output endpoint accepts, per the official SDK's `transform_schema`.
_STRING_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4", "ipv6", "uuid"}
)


def default_max_tokens(model: str) -> int:
    """The model's maximum output, sent when the client sets no limit (Anthropic requires one)."""
    for prefix, limit in _MAX_OUTPUT:
        if model.startswith(prefix):
            return limit
    return _DEFAULT_MAX_OUTPUT


def claude_version(model: str) -> tuple[int, int] | None:
    """(major, minor) of a Claude model name: `claude-sonnet-4-5` → (4, 5), `claude-3-7-sonnet` → (3, 7)."""
    match = _FAMILY_FIRST.match(model) or _VERSION_FIRST.match(model)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2) or 0)


def adaptive_thinking(model: str) -> bool:
    """Claude 4.6 and later think adaptively, steered by an effort level; fixed budgets are deprecated."""
    version = claude_version(model)
    if version is None:
        return model.startswith("claude-mythos")
    return version >= (4, 6)


def thinking_for(effort: str, model: str, max_tokens: int, where: str) -> tuple[dict[str, Any], str | None]:
    """(thinking block, effort level) for `reasoning_effort` on a Claude model. `where` names the upstream
    in the error raised when `max_tokens` leaves no room for the smallest thinking budget."""
    if effort == "none":
        return {"type": "disabled"}, None
    if adaptive_thinking(model):
        return {"type": "adaptive"}, EFFORTS.get(effort, "medium")
    budget = min(THINKING_BUDGETS.get(effort, THINKING_BUDGETS["medium"]), max_tokens - 1)
    if budget < MIN_THINKING_BUDGET:
        raise GatewayError(
            f"reasoning_effort needs a token limit above {MIN_THINKING_BUDGET} on {where}: "
            "thinking tokens count towards max_completion_tokens",
            param="reasoning_effort",
            code="unsupported_value",
        )
    return {"type": "enabled", "budget_tokens": budget}, None


def output_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON Schema reduced to what `output_config.format` accepts, following the official SDK: objects get
    `additionalProperties: false` (any answer valid for it is valid for the original), and keywords the API
    rejects move into `description`, where the model still reads them."""
    rest = dict(schema)
    out: dict[str, Any] = {}
    if (defs := rest.pop("$defs", None)) is not None:
        out["$defs"] = {name: output_schema(sub) for name, sub in defs.items()}
    if (ref := rest.pop("$ref", None)) is not None:
        out["$ref"] = ref
        return out
    type_ = rest.pop("type", None)
    for key in ("anyOf", "oneOf", "allOf"):
        if (variants := rest.pop(key, None)) is not None:
            out["allOf" if key == "allOf" else "anyOf"] = [output_schema(v) for v in variants]
    for key in ("enum", "const"):
        if key in rest:
            out[key] = rest.pop(key)
    if type_ is not None:
        out["type"] = type_
    for key in ("description", "title"):
        if key in rest:
            out[key] = rest.pop(key)
    if type_ == "object":
        out["properties"] = {k: output_schema(v) for k, v in rest.pop("properties", {}).items()}
        rest.pop("additionalProperties", None)
        out["additionalProperties"] = False
        if "required" in rest:
            out["required"] = list(rest.pop("required"))
    elif type_ == "array":
        if "items" in rest:
            out["items"] = output_schema(rest.pop("items"))
        if rest.get("minItems") in (0, 1):
            out["minItems"] = rest.pop("minItems")
    elif type_ == "string" and rest.get("format") in _STRING_FORMATS:
        out["format"] = rest.pop("format")
    rest.pop("strict", None)
    if rest:
        extra = "{" + ", ".join(f"{key}: {value}" for key, value in rest.items()) + "}"
        out["description"] = f"{out['description']}\n\n{extra}" if "description" in out else extra
    return out


# -- turns ---------------------------------------------------------------------------------------------------


class TurnShape(NamedTuple):
    """How one API spells the blocks turn merging needs to know about."""

    #: Whether a block is a tool result: those must open the user turn after the tool calls.
    is_tool_result: Callable[[Block], bool]
    #: The user turn put first when a conversation starts with the assistant: both APIs want a user first.
    lead_in: Block
    #: Whether a block is signed reasoning (thinking, redacted thinking).
    is_reasoning: Callable[[Block], bool]


def add_turn(turns: list[Turn], role: str, blocks: list[Block]) -> None:
    """Add blocks as a new turn, or to the previous turn if it has the same role: roles must alternate."""
    if not blocks:
        return  # empty messages would be rejected; dropping them loses nothing
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def finish_turns(turns: list[Turn], shape: TurnShape) -> list[Turn]:
    """Tool results first in every user turn (they must follow the tool calls directly), and a user turn
    first in the conversation."""
    is_tool_result = shape.is_tool_result
    for turn in turns:
        content = turn["content"]
        if turn["role"] == "user" and len(content) > 1:  # one block is in order
            turn["content"] = [b for b in content if is_tool_result(b)] + [
                b for b in content if not is_tool_result(b)
            ]
    if turns and turns[0]["role"] == "assistant":
        turns.insert(0, {"role": "user", "content": [dict(shape.lead_in)]})
    return turns


def thinking_lost(turns: Sequence[Turn], shape: TurnShape) -> bool:
    """Whether the conversation ends with tool results answering an assistant turn that does not start with
    its signed reasoning. Thinking is left off then: the API wants that reasoning back, and it was lost (a
    client that kept neither `reasoning_details` nor a tool-call id the store knows, another provider's
    answer, a turn made without thinking). See `reasoning.py`."""
    if len(turns) < 2 or not any(shape.is_tool_result(block) for block in turns[-1]["content"]):
        return False
    answer = turns[-2]["content"]
    return turns[-2]["role"] != "assistant" or not answer or not shape.is_reasoning(answer[0])


# -- structured output ---------------------------------------------------------------------------------------

#: The forced tool that serves `response_format` where the model has no native structured output.
JSON_TOOL = "json_output"
JSON_TOOL_DESCRIPTION = "Give the answer as JSON."


class JsonAnswer(NamedTuple):
    """How `response_format` is served: natively (`native`), with `schema` as the client gave it, or through
    the forced JSON tool, with `schema` as that tool's input schema."""

    native: bool
    schema: dict[str, Any] | None


def json_answer(
    request: Request,
    model: str,
    *,
    provider: str,
    native_json: Callable[[str], bool],
    tool_demanded: bool,
    thinking_on: bool,
    tool_names: Iterable[str],
    thinking_scope: str = "",
) -> JsonAnswer | None:
    """The structured-output decision, or None when there is nothing to do: no JSON `response_format`, or
    the client demands a tool call, so there is no text answer to shape.

    `json_schema` is native on the models `native_json` accepts; otherwise, and for `json_object`, the JSON
    tool answers. A forced tool excludes thinking, needs an object schema, and must not clash with a client
    tool named like it: each of those is a 400 (`thinking_scope` ends the thinking message)."""
    spec = json_schema_of(request)
    if spec is None:
        return None
    kind, schema = spec
    if kind == "json_schema" and native_json(model):
        return JsonAnswer(True, schema)
    if tool_demanded:
        return None
    if thinking_on:
        detail = f"{kind} cannot be combined with reasoning_effort{thinking_scope}"
        raise unsupported(provider, "response_format", detail)
    input_schema = schema or {"type": "object"}
    if input_schema.get("type") != "object":
        raise unsupported(
            provider, "response_format.json_schema.schema", "the schema must describe an object"
        )
    if any(name == JSON_TOOL for name in tool_names):
        raise unsupported(provider, "tools", f"a tool named '{JSON_TOOL}' together with response_format")
    return JsonAnswer(False, input_schema)


# -- answers -------------------------------------------------------------------------------------------------


class UsageKeys(NamedTuple):
    """Where one API's usage object keeps its counts."""

    input: str
    output: str
    cache_read: str
    cache_write: str
    #: (details object, count) of the thinking tokens, where the API reports them.
    reasoning: tuple[str, str] | None = None


def usage_of(usage: Mapping[str, Any], keys: UsageKeys) -> dict[str, Any]:
    """OpenAI usage: Claude-shaped APIs count cache reads and writes apart from the input, OpenAI within."""
    read = usage.get(keys.cache_read) or 0
    write = usage.get(keys.cache_write) or 0
    reasoning = None
    if keys.reasoning is not None:
        details = usage.get(keys.reasoning[0]) or {}
        reasoning = details.get(keys.reasoning[1])
    return wire.usage(
        (usage.get(keys.input) or 0) + read + write,
        usage.get(keys.output) or 0,
        cached_tokens=read,
        cache_write_tokens=write,
        reasoning_tokens=reasoning,
    )


def finish_reason(reasons: Mapping[Any, str], stop_reason: Any, tool_calls: bool) -> str:
    """OpenAI's `finish_reason` for a stop reason (`reasons` maps the API's values; others are `stop`).
    A `tool_use` stop without tool calls was answered through the JSON tool: that is a plain stop."""
    if tool_calls:
        return "tool_calls"
    reason = reasons.get(stop_reason, "stop")
    return "stop" if reason == "tool_calls" else reason


# -- streams -------------------------------------------------------------------------------------------------


class _Block:
    """What a stream remembers about an open content block."""

    __slots__ = ("has_input", "input", "kind", "tool_index")

    def __init__(self, kind: str, tool_index: int | None = None, input: Any = None) -> None:
        self.kind = kind  # "tool", "json" (the response_format tool) or "other"
        self.tool_index = tool_index
        self.input = input
        self.has_input = False


class ContentBlocks:
    """The open content blocks of one Claude-shaped stream, by the upstream's block index.

    Tool calls are numbered by their order among tool calls, never by block index (OpenAI clients index
    tool calls from 0). The JSON tool's input is the answer's text, so it streams as `content`. A tool block
    that got no input fragments sends its start input (usually `{}`) when it stops, so every call has valid
    JSON arguments."""

    def __init__(self, chunks: wire.ChunkBuilder, *, json_tool: str | None = None) -> None:
        self._chunks = chunks
        self._json_tool = json_tool
        self._open: dict[int, _Block] = {}
        #: How many tool calls the stream has started.
        self.tool_calls = 0

    def is_open(self, index: int) -> bool:
        return index in self._open

    def open(self, index: int) -> None:
        """Note a block that streams no tool input (text, thinking and the like)."""
        self._open[index] = _Block("other")

    def start_tool(self, index: int, name: Any, input: Any = None) -> int | None:
        """Note a tool block; its tool-call index, or None for the JSON tool, which is no tool call."""
        if name == self._json_tool:
            self._open[index] = _Block("json", input=input)
            return None
        tool_index = self.tool_calls
        self.tool_calls += 1
        self._open[index] = _Block("tool", tool_index, input)
        return tool_index

    def input(self, index: int, fragment: Any) -> list[Chunk]:
        """The chunk for a fragment of an open block's input; empty fragments carry nothing."""
        if not fragment:
            return []
        block = self._open[index]
        block.has_input = True
        return [self._arguments(block, fragment)]

    def stop(self, index: int) -> list[Chunk]:
        """The closing chunk of a tool block that got no input fragments: its start input, as JSON."""
        block = self._open.pop(index, None)
        if block is None or block.kind == "other" or block.has_input:
            return []
        return [self._arguments(block, wire.dumps(block.input or {}).decode())]

    def _arguments(self, block: _Block, fragment: Any) -> Chunk:
        if block.kind == "json":
            return self._chunks.chunk({"content": fragment})
        assert block.tool_index is not None
        return self._chunks.chunk(
            {"tool_calls": [wire.tool_call_delta(block.tool_index, arguments=fragment)]}
        )
