"""`SharedHealth`: cooldowns shared by replicas through a real redis-server (tests/support/redis_server.py).

Two books on one Redis stand for two replicas; then two gateways in front of one failing and one good fake
OpenAI upstream, through the openai SDK: the second gateway skips the target the first one cooled."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator

import anyio
import openai
import pytest

from asgi_llm_gateway import Gateway, Policy
from asgi_llm_gateway.providers import OpenAIProvider
from asgi_llm_gateway.shared_health import SharedHealth
from tests.fakes.openai import KEY, FakeOpenAI, Fault
from tests.support.redis_server import (
    redis_url_fixture,  # noqa: F401  (the redis_url fixture)
    running_redis,
)
from tests.support.server import serve

pytestmark = pytest.mark.anyio

COOL = Policy(max_attempts=1, cooldown_after=1, cooldown=30.0)
HELLO = [{"role": "user", "content": "hello there"}]


def books(url: str, refresh: float = 0.0) -> tuple[SharedHealth, SharedHealth]:
    prefix = f"test-{secrets.token_hex(4)}:"
    return SharedHealth(url, prefix=prefix, refresh=refresh), SharedHealth(
        url, prefix=prefix, refresh=refresh
    )


async def test_a_cooldown_one_replica_starts_the_other_sees_and_its_end_too(redis_url: str) -> None:
    one, two = books(redis_url)
    try:
        now = time.monotonic()
        one.failed("a/m", COOL, now)
        assert not one.healthy("a/m", now)
        await two.sync()
        assert two.healthy("a/m", now)  # nothing written yet: a cooldown is written when its call ends
        await one.sync()  # (or at request_ended) writes it
        await two.sync()
        assert not two.healthy("a/m", time.monotonic())
        assert 29 < two.cooling()["a/m"] - time.monotonic() <= 30
        one.succeeded("a/m")  # the target answers again on replica one
        await one.sync()
        await two.sync()
        assert two.healthy("a/m", time.monotonic())
    finally:
        await one.aclose()
        await two.aclose()


async def test_refresh_reads_at_most_once_per_interval(redis_url: str) -> None:
    one, two = books(redis_url, refresh=60.0)
    try:
        await two.sync()  # the first sync reads
        one.failed("a/m", COOL, time.monotonic())
        await one.sync()
        await two.sync()  # within the interval: no read, still healthy here
        assert two.healthy("a/m", time.monotonic())
    finally:
        await one.aclose()
        await two.aclose()


async def test_failures_below_the_threshold_are_not_shared(redis_url: str) -> None:
    one, two = books(redis_url)
    try:
        policy = Policy(max_attempts=1, cooldown_after=3, cooldown=30.0)
        one.failed("a/m", policy, time.monotonic())
        one.failed("a/m", policy, time.monotonic())
        await one.sync()
        await two.sync()
        assert two.cooling() == {}
    finally:
        await one.aclose()
        await two.aclose()


async def test_a_redis_that_is_gone_leaves_the_breaker_local(caplog: pytest.LogCaptureFixture) -> None:
    with running_redis() as url:
        book = SharedHealth(url, timeout=0.2, refresh=0.0)
        await book.sync()
    # the server is stopped now
    book.failed("a/m", COOL, time.monotonic())
    with caplog.at_level(logging.WARNING, logger="asgi_llm_gateway"), anyio.fail_after(10):  # hang guard
        await book.sync()
        await book.sync()
    assert not book.healthy("a/m", time.monotonic())
    warnings = [r for r in caplog.records if "shared cooldowns" in r.getMessage()]
    assert len(warnings) == 1  # once a minute at most
    await book.aclose()


@pytest.fixture
def upstreams() -> Iterator[tuple[FakeOpenAI, str, FakeOpenAI, str]]:
    failing, good = FakeOpenAI(), FakeOpenAI()
    with serve(failing.app()) as failing_url, serve(good.app()) as good_url:
        yield failing, failing_url, good, good_url


@pytest.mark.parametrize("shared", [True, False], ids=["shared", "local"])
def test_a_target_one_gateway_cooled_is_skipped_by_the_other(
    redis_url: str, upstreams: tuple[FakeOpenAI, str, FakeOpenAI, str], shared: bool
) -> None:
    failing, failing_url, good, good_url = upstreams
    failing.faults += [Fault(503, {"error": {"message": "overloaded"}})] * 5
    prefix = f"test-{secrets.token_hex(4)}:"

    def gateway() -> Gateway:
        return Gateway(
            providers={
                "a": OpenAIProvider(api_key=KEY, base_url=failing_url + "/v1"),
                "b": OpenAIProvider(api_key=KEY, base_url=good_url + "/v1"),
            },
            routes={"ab": ["a/m", "b/m"]},
            policy=COOL,
            health=SharedHealth(redis_url, prefix=prefix, refresh=0.0) if shared else None,
        )

    with serve(gateway()) as one, serve(gateway()) as two:
        for url in (one, two):
            with openai.OpenAI(base_url=url + "/v1", api_key="c", max_retries=0) as client:
                answer = client.chat.completions.create(model="ab", messages=HELLO)
                assert answer.model == "b/m"
    # shared: replica two knew "a" was cooling and asked "b" first; local: it learned by failing on "a" too
    assert len(failing.requests) == (1 if shared else 2)
    assert len(good.requests) == 2
