"""Prompt caching through the gateway: OpenAI SDK → gateway → the Anthropic, Bedrock and Gemini fakes.

Each fake runs a real prefix cache (`tests/fakes/prompt_cache.py`) and keeps the totals of the cache reads
and writes it reported; the usage the client gets must add up to exactly those: `prompt_tokens` includes
reads and writes, `prompt_tokens_details.cached_tokens` is the reads, `cache_write_tokens` (a field of the
openai SDK's own `PromptTokensDetails`) the writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest

from tests.fakes.prompt_cache import PromptCache
from tests.support.upstreams import gateway_over_every_upstream

CLAUDE = "claude/claude-haiku-4-5"
BEDROCK = "bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0"
GEMINI = "gemini/gemini-2.5-flash"
LONG_SYSTEM = "You are a careful assistant. " * 12  # 60 words: past the Gemini fake's implicit-cache minimum


KEY = "sk-gateway-caching"


@dataclass
class Stack:
    client: openai.OpenAI
    fakes: dict[str, Any]

    def cache(self, provider: str) -> PromptCache:
        cache: PromptCache = self.fakes[provider].cache
        return cache


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with (
        gateway_over_every_upstream({KEY: "developer"}, {}) as served,
        openai.OpenAI(base_url=served.url + "/v1", api_key=KEY, max_retries=0) as client,
    ):
        yield Stack(client, served.fakes)


def usage_of(stack: Stack, model: str, messages: list[Any], stream: bool, **extra: Any) -> Any:
    """The usage of one call, streamed (with `include_usage`) or not."""
    if not stream:
        completion = stack.client.chat.completions.create(model=model, messages=messages, **extra)
        return completion.usage
    chunks = list(
        stack.client.chat.completions.create(
            model=model, messages=messages, stream=True, stream_options={"include_usage": True}, **extra
        )
    )
    return chunks[-1].usage


def conversation(turn: str) -> list[Any]:
    return [
        {"role": "system", "content": LONG_SYSTEM},
        {"role": "user", "content": "Remember the number seven."},
        {"role": "assistant", "content": "I will remember seven."},
        {"role": "user", "content": turn},
    ]


def sums(usages: list[Any]) -> tuple[int, int]:
    """(cache reads, cache writes) summed over the usages the client saw."""
    details = [u.prompt_tokens_details for u in usages]
    reads = sum(d.cached_tokens or 0 for d in details if d is not None)
    writes = sum(d.cache_write_tokens or 0 for d in details if d is not None)
    return reads, writes


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize(
    ("provider", "model", "prompts"),
    [
        ("claude", CLAUDE, ["one CACHED", "two CACHED"]),
        ("bedrock", "bedrock/fake.cached", ["one", "two"]),
        ("gemini", GEMINI, ["one", "two"]),
    ],
)
def test_usage_sums_match_the_fakes_cache_counters(
    stack: Stack, provider: str, model: str, prompts: list[str], stream: bool
) -> None:
    cache = stack.cache(provider)
    before = (cache.reads, cache.writes)
    usages = [usage_of(stack, model, conversation(prompt), stream) for prompt in prompts]
    reads, writes = sums(usages)
    assert reads > 0
    assert (reads, writes) == (cache.reads - before[0], cache.writes - before[1])
    for usage in usages:
        details = usage.prompt_tokens_details
        cached = details.cached_tokens or 0
        assert usage.prompt_tokens >= cached + (details.cache_write_tokens or 0)
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_gemini_implicit_cache_is_within_prompt_tokens(stack: Stack) -> None:
    """Gemini's `cachedContentTokenCount` is part of `promptTokenCount`: nothing is added on top."""
    first = usage_of(stack, GEMINI, conversation("first question"), False)
    second = usage_of(stack, GEMINI, conversation("second question"), False)
    assert first.prompt_tokens == second.prompt_tokens
    assert second.prompt_tokens_details.cached_tokens == first.prompt_tokens - 2 > 0
