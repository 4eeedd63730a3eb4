"""A bounded memo: what the hot path derives once per model, URL or route and then only looks up.

Keys come from configuration or from client-supplied strings that were checked first (model ids), so there
are few of them; the bound only keeps a client that cycles through many ids from growing the memo: when it
is full it starts again, which costs one rebuild per key and nothing else.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TypeVar

__all__ = ["LIMIT", "remember"]

Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value")

#: The most entries a memo holds (one per model and operation, usually).
LIMIT = 256


def remember(memo: dict[Key, Value], key: Key, value: Value) -> Value:
    """`memo[key] = value`, in a memo that never holds more than `LIMIT` entries; returns `value`."""
    if len(memo) >= LIMIT:
        memo.clear()
    memo[key] = value
    return value
