"""Prompt caching through the gateway: OpenAI SDK → gateway → the Anthropic, Bedrock and Gemini fakes.

Each fake runs a real prefix cache (`tests/fakes/prompt_cache.py`) and keeps the totals of the cache reads
and writes it reported; the usage the client gets must add up to exactly those: `prompt_tokens` includes
reads and writes, `prompt_tokens_details.cached_tokens` is the reads, `cache_write_tokens` (a field of the
openai SDK's own `PromptTokensDetails`) the writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from asgi_llm_gateway import Gateway
from asgi_llm_gateway.policy import Policy
from asgi_llm_gateway.providers import AnthropicProvider
from asgi_llm_gateway.providers.caching import AutoCache
from tests.e2e.openai_client_stack import Stack, openai_stack
from tests.fakes import anthropic as fake_anthropic
from tests.support.server import serve

CLAUDE = "claude/claude-haiku-4-5"
BEDROCK = "bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0"
GEMINI = "gemini/gemini-2.5-flash"
LONG_SYSTEM = "You are a careful assistant. " * 12  # 60 words: past the Gemini fake's implicit-cache minimum


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with openai_stack() as served:
        yield served


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


# -- breakpoints -------------------------------------------------------------------------------------------

EPHEMERAL: Any = {"type": "ephemeral"}
ONE_HOUR: Any = {"type": "ephemeral", "ttl": "1h"}
BEDROCK_CLAUDE = "bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0"


def cached_conversation(turn: str) -> list[Any]:
    """A system prompt cached for an hour, a first exchange cached for five minutes, then `turn`."""
    return [
        {"role": "system", "content": [{"type": "text", "text": LONG_SYSTEM, "cache_control": ONE_HOUR}]},
        {"role": "user", "content": "Remember the number seven."},
        {"role": "assistant", "content": "I will remember seven.", "cache_control": EPHEMERAL},
        {"role": "user", "content": turn},
    ]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize(
    ("provider", "model", "system", "answer"),
    [
        (
            "claude",
            CLAUDE,
            [{"type": "text", "text": LONG_SYSTEM, "cache_control": ONE_HOUR}],
            [{"type": "text", "text": "I will remember seven.", "cache_control": EPHEMERAL}],
        ),
        (
            "bedrock",
            BEDROCK_CLAUDE,
            [{"text": LONG_SYSTEM}, {"cachePoint": {"type": "default", "ttl": "1h"}}],
            [{"text": "I will remember seven."}, {"cachePoint": {"type": "default"}}],
        ),
    ],
    ids=["anthropic", "bedrock"],
)
def test_breakpoints_reach_the_api_and_hit_its_cache(
    stack: Stack, provider: str, model: str, system: Any, answer: Any, stream: bool
) -> None:
    cache = stack.cache(provider)
    before = (cache.reads, cache.writes)
    first = usage_of(stack, model, cached_conversation(f"first {stream}"), stream)
    body = stack.last(provider)
    assert (body["system"], body["messages"][1]["content"]) == (system, answer)
    second = usage_of(stack, model, cached_conversation(f"second {stream}"), stream)
    assert first.prompt_tokens == second.prompt_tokens  # the same prompt but for the last turn's one word
    # Everything up to the last breakpoint, read or written by the first call, is read by the second.
    seen = first.prompt_tokens_details
    assert second.prompt_tokens_details.cached_tokens == (seen.cached_tokens or 0) + (
        seen.cache_write_tokens or 0
    )
    assert second.prompt_tokens_details.cached_tokens > 0
    assert not second.prompt_tokens_details.cache_write_tokens
    assert sums([first, second]) == (cache.reads - before[0], cache.writes - before[1])


@pytest.mark.parametrize(("provider", "model"), [("claude", CLAUDE), ("bedrock", BEDROCK_CLAUDE)])
def test_a_longer_ttl_after_a_shorter_one_is_clamped(stack: Stack, provider: str, model: str) -> None:
    """Both APIs refuse a 1h breakpoint after a 5m one (the fakes too): the gateway clamps it to 5m."""
    messages: list[Any] = [
        {"role": "user", "content": [{"type": "text", "text": "A document.", "cache_control": EPHEMERAL}]},
        {"role": "assistant", "content": "Read it."},
        {"role": "user", "content": "Summarise it.", "cache_control": ONE_HOUR},
    ]
    completion = stack.client.chat.completions.create(model=model, messages=messages)
    assert completion.choices[0].message.content
    text = str(stack.last(provider))
    assert "'ttl': '1h'" not in text and text.count("cache") == 2


def test_gemini_gets_no_cache_fields_and_caches_implicitly(stack: Stack) -> None:
    first = usage_of(stack, GEMINI, cached_conversation("gemini first"), False)
    body = stack.last("gemini")
    assert "cache" not in str(body).lower()
    second = usage_of(stack, GEMINI, cached_conversation("gemini second"), False)
    assert second.prompt_tokens_details.cached_tokens == first.prompt_tokens - 2 > 0


def test_automatic_placement_is_off_by_default(stack: Stack) -> None:
    stack.client.chat.completions.create(model=CLAUDE, messages=conversation("no breakpoints"))
    assert "cache_control" not in str(stack.last("claude"))


@pytest.mark.parametrize("auto_cache", [True, AutoCache(tools=False, system=False, ttl="1h")])
def test_automatic_placement_when_the_provider_asks_for_it(auto_cache: AutoCache | bool) -> None:
    fake = fake_anthropic.FakeAnthropic()
    with serve(fake) as upstream:
        provider = AnthropicProvider(api_key=fake_anthropic.KEY, base_url=upstream, auto_cache=auto_cache)
        gateway = Gateway(providers={"claude": provider}, policy=Policy(max_attempts=1))
        with (
            serve(gateway) as url,
            openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0) as client,
        ):
            usages = [
                client.chat.completions.create(model=CLAUDE, messages=conversation(turn)).usage
                for turn in ("one", "two")
            ]
    system, messages = fake.last["system"], fake.last["messages"]
    if auto_cache is True:
        assert system[-1]["cache_control"] == EPHEMERAL
        assert messages[-1]["content"][-1]["cache_control"] == EPHEMERAL
        # The system prompt was written by the first call and read by the second.
        details = usages[1].prompt_tokens_details if usages[1] is not None else None
        assert details is not None and (details.cached_tokens or 0) > 0
    else:
        assert "cache_control" not in system[-1]
        assert messages[-1]["content"][-1]["cache_control"] == ONE_HOUR
    assert sums(usages) == (fake.cache.reads, fake.cache.writes)


def test_a_bad_cache_ttl_is_a_400_naming_the_field(stack: Stack) -> None:
    messages: list[Any] = [
        {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"ttl": "2h"}}]}
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        stack.client.chat.completions.create(model=CLAUDE, messages=messages)
    error = caught.value.body
    assert isinstance(error, dict) and error["param"] == "messages[0].content[0].cache_control.ttl"
