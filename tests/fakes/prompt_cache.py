"""The prompt cache the fakes share: a prefix is written the first time a breakpoint ends it, read later.

Anthropic and Bedrock cache the prompt up to each explicit breakpoint (`cache_control`, `cachePoint`); a
request reads the longest prefix already cached and writes the rest, up to its last breakpoint. Gemini caches
implicitly: it reports the reads of a repeated prefix and bills no writes. Each fake keeps one `PromptCache`
and reports what `use` returns in its usage, so `reads` and `writes` are the totals a client should see summed
in the gateway's usage.

Tokens are words here, as everywhere in the fakes; a prefix is keyed by the model and the JSON of everything
before the breakpoint, so any change before a breakpoint misses, as on the real services.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Breakpoint", "PromptCache", "prefix_key"]


def prefix_key(model: str, prefix: Any) -> str:
    """The cache key of a prompt prefix (any JSON value) on one model."""
    return hashlib.sha256(json.dumps([model, prefix], sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Breakpoint:
    """The end of a cacheable prefix: its key and how many prompt tokens it holds."""

    key: str
    tokens: int


@dataclass
class PromptCache:
    """Cached prefixes and the totals reported: `reads` (cache hits) and `writes` (cache creation)."""

    reads: int = 0
    writes: int = 0
    _prefixes: set[str] = field(default_factory=set)

    def use(self, breakpoints: Sequence[Breakpoint], *, bill_writes: bool = True) -> tuple[int, int]:
        """(tokens read, tokens written) for one request: the longest cached prefix is read, the rest up to
        the last breakpoint written; every prefix is cached afterwards."""
        read = max((point.tokens for point in breakpoints if point.key in self._prefixes), default=0)
        last = max((point.tokens for point in breakpoints), default=0)
        written = max(last - read, 0) if bill_writes else 0
        self._prefixes.update(point.key for point in breakpoints)
        return self.report(read, written)

    def report(self, read: int, written: int) -> tuple[int, int]:
        """Count reads and writes a fake reports without breakpoints (its scripted cache hits)."""
        self.reads += read
        self.writes += written
        return read, written
