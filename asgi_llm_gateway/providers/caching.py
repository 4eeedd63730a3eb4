"""Prompt-cache breakpoints: the client's cache intent on a chat request, placed where each API wants it.

A chat request says where to cache in one of two spellings, on a content part, on a whole message (its last
block), or on a tool:

    chat request                                    TTL   Anthropic                  Bedrock
    `cache_control: {"type": "ephemeral"}`          5m    `cache_control` on the     a `{"cachePoint":
      (the de facto extension)                            block: `{"type":           {"type": "default"}}`
    `cache_control: {..., "ttl": "1h"}`             1h    "ephemeral", "ttl"?}`      block after it, with
    `prompt_cache_breakpoint: {"mode": "explicit",  1h    (`ttl` only when 1h:       `"ttl": "1h"` when 1h
      "ttl": "30m" | "12h"}` (OpenAI's own)               5m is the default)

OpenAI's TTLs are minimum lifetimes, so they become the shortest Claude TTL that lasts as long, capped at 1h.

Translators mark the blocks they build (`Marks.on`, one key lookup per part, message and tool); after the
turns are final, `Marks.settle` lists the breakpoints in prompt order (tools, system, messages: the order
both APIs cache in) and makes them valid where the client's were not: a TTL never grows along the prompt
(a 1h breakpoint after a 5m one is clamped to 5m; both APIs reject it, and a breakpoint on a mid-conversation
system message moves up into `system`, where the client could not see the order), and at most
`MAX_BREAKPOINTS` stay (the last ones: they cover the longest prefixes).

`AutoCache` places breakpoints for clients that send none (after the tools, after the system prompt, on the
last user turn); a provider takes it as its `auto_cache` constructor argument, off by default.

OpenAI caches by itself (`prompt_cache_key`, `prompt_cache_retention` pass through to OpenAI and are dropped
for the compatible upstreams that refuse them: the `Quirks` table); Gemini caches implicitly, so nothing is
sent there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_BREAKPOINTS", "AutoCache", "Marks", "auto_cache_policy", "intent_ttl"]

Block = dict[str, Any]

#: Both Anthropic and Bedrock take at most four breakpoints per request.
MAX_BREAKPOINTS = 4
DEFAULT_TTL = "5m"
_TTL_RANK = {"5m": 0, "1h": 1}
# OpenAI's TTLs are minimum lifetimes: the shortest Claude TTL that lasts as long, capped at 1h.
_OPENAI_TTLS = {"30m": "1h", "12h": "1h"}


def intent_ttl(item: Mapping[str, Any]) -> str | None:
    """The TTL of the breakpoint a part, message or tool asks for, or None when it asks for none."""
    control = item.get("cache_control")
    if type(control) is dict:  # JSON objects: a type check is cheaper than an ABC's
        ttl = control.get("ttl")
        return ttl if ttl in _TTL_RANK else DEFAULT_TTL
    point = item.get("prompt_cache_breakpoint")
    if type(point) is dict:
        return _OPENAI_TTLS.get(point.get("ttl") or "30m", "1h")
    return None


@dataclass(frozen=True, slots=True)
class AutoCache:
    """Where the gateway puts breakpoints when a request has none of its own; each is optional."""

    #: After the last tool definition.
    tools: bool = True
    #: After the last system block.
    system: bool = True
    #: On the last block of the last user turn (tool results included): the whole conversation so far.
    last_user_turn: bool = True
    #: "5m" or "1h".
    ttl: str = DEFAULT_TTL

    def __post_init__(self) -> None:
        if self.ttl not in _TTL_RANK:
            raise ValueError(f"AutoCache.ttl must be '5m' or '1h', not {self.ttl!r}")


def auto_cache_policy(value: AutoCache | bool | None) -> AutoCache | None:
    """A provider's `auto_cache` argument: True places every default breakpoint (a config file's way)."""
    if value is True:
        return AutoCache()
    return value or None


class Marks:
    """The breakpoints one translation asked for, by the native blocks they follow."""

    __slots__ = ("_ttls",)

    def __init__(self) -> None:
        # By id, with the block itself kept alive so that its id cannot be reused by another block.
        self._ttls: dict[int, tuple[Block, str]] = {}

    def __bool__(self) -> bool:
        return bool(self._ttls)

    def on(self, block: Block, source: Mapping[str, Any]) -> Block:
        """`block`, marked when `source` (the part or tool it was built from) asks for a breakpoint."""
        if "cache_control" in source or "prompt_cache_breakpoint" in source:
            ttl = intent_ttl(source)
            if ttl is not None:
                self._ttls[id(block)] = (block, ttl)
        return block

    def on_last(self, blocks: Sequence[Block], message: Mapping[str, Any]) -> None:
        """Mark the last of a message's blocks when the message itself asks for a breakpoint."""
        if blocks and ("cache_control" in message or "prompt_cache_breakpoint" in message):
            ttl = intent_ttl(message)
            if ttl is not None:
                self._ttls[id(blocks[-1])] = (blocks[-1], ttl)

    def on_message(self, blocks: Sequence[Block], message: Mapping[str, Any]) -> None:
        """Mark the last of a message's blocks when the message, or one of its parts, asks for a
        breakpoint: for messages whose parts become one block (system, tool results, assistant text).
        Key lookups only, for the many messages that ask for nothing."""
        if not blocks:
            return
        if "cache_control" in message or "prompt_cache_breakpoint" in message:
            ttl = intent_ttl(message)
        else:
            content = message.get("content")
            if type(content) is not list:
                return
            ttl = None
            for part in content:
                if type(part) is dict and ("cache_control" in part or "prompt_cache_breakpoint" in part):
                    ttl = intent_ttl(part) or ttl
        if ttl is not None:
            self._ttls[id(blocks[-1])] = (blocks[-1], ttl)

    def auto(
        self,
        policy: AutoCache | None,
        tools: Sequence[Block],
        system: Sequence[Block],
        last_user: Sequence[Block],
    ) -> None:
        """Apply `policy` when the client marked nothing."""
        if policy is None or self._ttls:
            return
        wanted = ((policy.tools, tools), (policy.system, system), (policy.last_user_turn, last_user))
        for on, blocks in wanted:
            if on and blocks:
                self._ttls[id(blocks[-1])] = (blocks[-1], policy.ttl)

    def settle(self, sections: Sequence[list[Block]], put: Callable[[list[Block], int, str], None]) -> None:
        """Call `put(list, index, ttl)` for each breakpoint to place, last first (so that `put` may insert
        after the block), with TTLs clamped and at most `MAX_BREAKPOINTS` kept. `sections` are the native
        block lists in prompt order."""
        if not self._ttls:
            return
        found: list[tuple[list[Block], int, str]] = []
        for blocks in sections:
            for index, block in enumerate(blocks):
                marked = self._ttls.get(id(block))
                if marked is not None:
                    found.append((blocks, index, marked[1]))
        ceiling = "1h"
        placed: list[tuple[list[Block], int, str]] = []
        for blocks, index, ttl in found[-MAX_BREAKPOINTS:]:
            if _TTL_RANK[ttl] < _TTL_RANK[ceiling]:
                ceiling = ttl  # a TTL never grows along the prompt
            placed.append((blocks, index, ceiling))
        for blocks, index, ttl in reversed(placed):
            put(blocks, index, ttl)
