"""Bedrock model ids and the names Converse accepts: the model's vendor, and tool names and `toolUseId`s
rewritten deterministically into Converse's patterns (calls and results must agree)."""

from __future__ import annotations

import hashlib
import re

from ..claude import claude_version

__all__ = [
    "base_model_id",
    "bedrock_name",
    "is_claude",
    "model_family",
    "model_name",
    "native_json",
    "tool_name",
    "tool_use_id",
]

_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_TOOL_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
_TOOL_USE_ID = re.compile(r"[a-zA-Z0-9_.:-]{1,64}")

# The model vendors this module knows an additional field for; ids are `[region.]vendor.model[:version]`.
_VENDORS = frozenset(
    {"anthropic", "amazon", "openai", "meta", "mistral", "cohere", "ai21", "deepseek", "qwen"}
)


def model_name(model: str) -> str:
    """The model part of an id, without ARN prefix, inference-profile region or version suffix."""
    name = model.rsplit("/", 1)[-1]
    parts = name.split(".")
    for i, part in enumerate(parts[:2]):
        if part in _VENDORS:
            return ".".join(parts[i + 1 :])
    return name


def model_family(model: str) -> str | None:
    """The vendor of a model id (`us.anthropic.claude-…` → `anthropic`), or None for an opaque id."""
    parts = model.rsplit("/", 1)[-1].split(".")
    return next((part for part in parts[:2] if part in _VENDORS), None)


def is_claude(model: str) -> bool:
    return model_family(model) == "anthropic"


def base_model_id(model: str) -> str | None:
    """The foundation-model id under a cross-region inference profile (`us.anthropic.claude-…` or its ARN →
    `anthropic.claude-…`); None when `model` names no such profile."""
    parts = model.rsplit("/", 1)[-1].split(".")
    if len(parts) > 2 and parts[0] not in _VENDORS and parts[1] in _VENDORS:
        return ".".join(parts[1:])
    return None


def native_json(model: str) -> bool:
    """Whether Converse's `outputConfig.textFormat` is served; for Claude only from 4.5 on."""
    if not is_claude(model):
        return True
    version = claude_version(model_name(model))
    return version is None or version >= (4, 5)


def _digest(text: str, size: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:size]


def tool_name(name: str) -> str:
    """A tool name Converse accepts; a rewritten name gets a hash suffix so that it stays unique."""
    if _TOOL_NAME.fullmatch(name):
        return name
    return f"{_TOOL_NAME_UNSAFE.sub('_', name)[:55]}_{_digest(name, 8)}"


def tool_use_id(openai_id: str) -> str:
    """A `toolUseId` Converse accepts; the same rewrite is used for calls and their results."""
    if _TOOL_USE_ID.fullmatch(openai_id):
        return openai_id
    return f"{_TOOL_NAME_UNSAFE.sub('_', openai_id)[:40]}_{_digest(openai_id, 16)}"


def bedrock_name(name: str, names: dict[str, str]) -> str:
    """`tool_name(name)`, noting in `names` a rewritten name's original, which answers must show."""
    native = tool_name(name)
    if native != name:
        names[native] = name
    return native
