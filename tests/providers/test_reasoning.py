"""`providers/reasoning.py`: sealed reasoning details, and the store for clients that drop them.

The translation into each API's blocks is covered by the golden fixtures (`reasoning_*`, `*_sealed`), the
round trip through real clients by tests/e2e/test_reasoning_e2e.py."""

from __future__ import annotations

from typing import Any

import pytest

from asgi_llm_gateway.providers.reasoning import ReasoningStore, Thought, details_of, replays, thoughts_of
from asgi_llm_gateway.providers.sealing import sealed_for

SCOPE = "anthropic-abc/claude-x"


def test_details_round_trip_only_for_their_scope() -> None:
    thoughts = [Thought(text="why", signature="c2ln"), Thought(data="cmVk"), Thought(text="unsigned")]
    details = details_of(thoughts, SCOPE)
    assert [d["type"] for d in details] == [
        "reasoning.text",
        "reasoning.encrypted",
    ]  # unsigned: nothing to replay
    assert all(sealed_for(d.get("signature") or d.get("data")) == SCOPE for d in details)
    assert thoughts_of(details, SCOPE) == thoughts[:2]
    assert thoughts_of(details, "anthropic-abc/claude-y") == []  # another model
    assert thoughts_of(details, "bedrock-abc/claude-x") == []  # another provider
    assert (
        thoughts_of([{"type": "reasoning.text", "text": "t", "signature": "c2ln"}], SCOPE) == []
    )  # unsealed
    assert thoughts_of("not a list", SCOPE) == [] and thoughts_of([None, 3], SCOPE) == []


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_store_is_bounded_and_forgets_after_its_ttl() -> None:
    clock = Clock()
    store = ReasoningStore(max_entries=2, ttl=10, clock=clock)
    details: list[dict[str, Any]] = [{"type": "reasoning.text"}]
    store.remember(["a", "b"], details)
    store.remember(["c"], details)
    assert len(store) == 2 and store.recall("a") is None and store.recall("c") == details
    clock.now = 10
    assert store.recall("c") is None and len(store) == 1  # expired entries go when met
    store.remember(["d"], [])
    assert store.recall("d") is None  # nothing to keep
    assert store.recall(None) is None
    with pytest.raises(ValueError):
        ReasoningStore(max_entries=0)


def test_replays_cost_one_lookup_without_thinking_and_fall_back_to_the_store() -> None:
    details = details_of([Thought(text="why", signature="c2ln")], SCOPE)
    call = {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    messages: list[Any] = [{"role": "user", "content": "go"}, {"role": "assistant", "tool_calls": [call]}]
    store = ReasoningStore()
    store.remember_completion(
        {"choices": [{"message": {"tool_calls": [call], "reasoning_details": details}}]}
    )
    assert replays({"messages": messages}, SCOPE, store) is None
    assert replays({"messages": messages, "reasoning_effort": "none"}, SCOPE, store) is None
    found = replays({"messages": messages, "reasoning_effort": "low"}, SCOPE, store)
    assert found == {1: [Thought(text="why", signature="c2ln")]}
    assert replays({"messages": messages, "reasoning_effort": "low"}, SCOPE, None) == {}
