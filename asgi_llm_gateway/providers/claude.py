"""What the gateway knows about Claude models, wherever they are served (Anthropic's API, Bedrock).

Both providers ask the same questions of a Claude model id: its largest output, whether it thinks
adaptively or by budget, and how to reduce a JSON Schema to what its structured output accepts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..errors import GatewayError

__all__ = ["claude_version", "default_max_tokens", "output_schema", "thinking_for"]

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
