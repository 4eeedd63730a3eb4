"""`providers/caching.py`: cache intent read from a chat request, and breakpoints made valid for Claude APIs.

The mapping into each API's blocks is covered by the golden request fixtures (`cache_*.json` under
tests/fixtures/anthropic/request and tests/fixtures/bedrock/request)."""

from __future__ import annotations

from typing import Any

import pytest

from asgi_llm_gateway.providers.caching import (
    MAX_BREAKPOINTS,
    AutoCache,
    Marks,
    auto_cache_policy,
    intent_ttl,
)


@pytest.mark.parametrize(
    ("item", "ttl"),
    [
        ({}, None),
        ({"cache_control": {"type": "ephemeral"}}, "5m"),
        ({"cache_control": {}}, "5m"),
        ({"cache_control": {"type": "ephemeral", "ttl": "1h"}}, "1h"),
        ({"prompt_cache_breakpoint": {"mode": "explicit"}}, "1h"),
        ({"prompt_cache_breakpoint": {"mode": "explicit", "ttl": "12h"}}, "1h"),
        ({"cache_control": None}, None),
    ],
)
def test_intent_ttl(item: dict[str, Any], ttl: str | None) -> None:
    assert intent_ttl(item) == ttl


def placed(marks: Marks, sections: list[list[dict[str, Any]]]) -> list[tuple[int, int, str]]:
    """(section, index, ttl) of each breakpoint `settle` places, in prompt order."""
    out: list[tuple[int, int, str]] = []
    marks.settle(sections, lambda blocks, index, ttl: out.append((sections.index(blocks), index, ttl)))
    return sorted(out)


def test_ttls_never_grow_and_only_the_last_four_stay() -> None:
    blocks = [[{"a": i} for i in range(3)], [{"b": i} for i in range(3)]]
    marks = Marks()
    ttls = ["1h", "1h", "1h", "1h", "5m", "1h"]
    for block, ttl in zip([*blocks[0], *blocks[1]], ttls, strict=True):
        marks.on(block, {"cache_control": {"ttl": ttl}})
    assert MAX_BREAKPOINTS == 4
    assert placed(marks, blocks) == [(0, 2, "1h"), (1, 0, "1h"), (1, 1, "5m"), (1, 2, "5m")]


def test_settle_puts_last_first_so_insertions_keep_indexes_valid() -> None:
    blocks: list[dict[str, Any]] = [{"text": "a"}, {"text": "b"}]
    marks = Marks()
    for block in blocks:
        marks.on(block, {"cache_control": {}})
    marks.settle([blocks], lambda section, index, ttl: section.insert(index + 1, {"cachePoint": ttl}))
    assert blocks == [{"text": "a"}, {"cachePoint": "5m"}, {"text": "b"}, {"cachePoint": "5m"}]


def test_automatic_placement_only_without_client_breakpoints() -> None:
    tools, system, user = [{"t": 1}], [{"s": 1}], [{"u": 1}, {"u": 2}]
    marks = Marks()
    marks.auto(AutoCache(), tools, system, user)
    assert placed(marks, [tools, system, user]) == [(0, 0, "5m"), (1, 0, "5m"), (2, 1, "5m")]
    client = Marks()
    client.on(user[0], {"cache_control": {}})
    client.auto(AutoCache(), tools, system, user)
    assert placed(client, [tools, system, user]) == [(2, 0, "5m")]


def test_auto_cache_policy_and_its_validation() -> None:
    assert auto_cache_policy(True) == AutoCache()
    assert auto_cache_policy(False) is None
    assert auto_cache_policy(AutoCache(tools=False)) == AutoCache(tools=False)
    with pytest.raises(ValueError, match="ttl"):
        AutoCache(ttl="30m")


def test_a_request_without_breakpoints_places_nothing() -> None:
    marks = Marks()
    marks.on({"text": "a"}, {"type": "text", "text": "a"})
    assert not marks
    marks.settle([[{"text": "a"}]], lambda *_: pytest.fail("nothing to place"))
