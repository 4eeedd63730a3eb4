"""Limits through the real client: the openai SDK against a gateway on loopback with `LimitsHook` (in memory,
and in a real redis-server), in front of the echo provider (and a fake OpenAI upstream where a call must
fail or hang). A refusal is OpenAI's 429 with
its headers, the SDK's `RateLimitError`; a spent budget is `insufficient_quota`, which the SDK does not
retry; a stream settles to its real usage; a failed or abandoned call gives its reservation back."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import anthropic
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from asgi_llm_gateway import Call, Gateway, Hooks, Policy, Principal, Target, UsageRecord, api_keys
from asgi_llm_gateway.limits import (
    Admission,
    Limiter,
    LimitsHook,
    MemoryLimiter,
    Rule,
    admission_of,
    input_estimate,
)
from asgi_llm_gateway.pricing import Price
from asgi_llm_gateway.providers import EchoProvider, OpenAIProvider
from tests.fakes.openai import KEY, FakeOpenAI, Fault
from tests.support.redis_server import redis_url_fixture  # noqa: F401  (the redis_url fixture)
from tests.support.server import serve

HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]
#: Dear on purpose: a thousandth of a dollar per token, so that a few calls spend a small budget.
DEAR = {"echo/*": Price(input=1000, output=1000), "up/*": Price(input=1000, output=1000)}


class Seen(Hooks):
    """What each call's admission was when it started, and how it was settled (runs after the limits)."""

    def __init__(self) -> None:
        self.started: list[Admission | None] = []
        self.ended: list[tuple[int, Admission | None]] = []
        self.usage: list[dict[str, Any] | None] = []

    async def request_started(self, call: Call) -> None:
        self.started.append(None)

    async def attempt_started(self, call: Call, target: Target) -> None:
        self.started[-1] = admission_of(call)

    async def request_ended(self, call: Call, record: UsageRecord) -> None:
        self.ended.append((record.status, admission_of(call)))
        self.usage.append(record.usage)


class Rig:
    def __init__(self, url: str, seen: Seen, upstream: FakeOpenAI) -> None:
        self.url, self.seen, self.upstream = url, seen, upstream

    def client(self, key: str = "alice-key", **options: Any) -> openai.OpenAI:
        options.setdefault("max_retries", 0)
        return openai.OpenAI(base_url=self.url + "/v1", api_key=key, **options)

    def wait_for_ends(self, count: int) -> None:
        deadline = time.monotonic() + 5
        while len(self.seen.ended) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.seen.ended) >= count


def gateway_with(rules: Sequence[Rule], limiter: Limiter) -> Iterator[Rig]:
    upstream, seen = FakeOpenAI(), Seen()
    keys = {"alice-key": Principal("alice", metadata={"team": "red"}), "bob-key": Principal("bob")}
    with serve(upstream.app()) as upstream_url:
        gateway = Gateway(
            providers={
                "up": OpenAIProvider(api_key=KEY, base_url=upstream_url + "/v1"),
                "echo": EchoProvider(),
            },
            auth=api_keys(keys),
            policy=Policy(max_attempts=1),
            hooks=[LimitsHook(limiter, rules, prices=DEAR), seen],
        )
        with serve(gateway) as url:
            try:
                yield Rig(url, seen, upstream)
            finally:  # on the server's loop, where the limiter's connections live
                asyncio.run_coroutine_threadsafe(limiter.aclose(), url.loop).result(timeout=5)


@pytest.fixture(params=["memory", "redis"])
def limiter(request: pytest.FixtureRequest) -> Limiter:
    if request.param == "memory":
        return MemoryLimiter()
    from asgi_llm_gateway.limits.redis import RedisLimiter

    url = request.getfixturevalue("redis_url")
    return RedisLimiter(url, prefix=f"test-limits-e2e:{uuid.uuid4().hex}:", timeout=5)


@pytest.fixture
def rig(request: pytest.FixtureRequest, limiter: Limiter) -> Iterator[Rig]:
    yield from gateway_with(request.param, limiter)


@pytest.mark.parametrize("rig", [[Rule("requests", 2), Rule("tokens", 100_000)]], indirect=True)
def test_over_the_request_limit_is_openais_429_with_its_headers(rig: Rig) -> None:
    with rig.client() as client:
        for _ in range(2):
            client.chat.completions.create(model="echo/echo-1", messages=HELLO)
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model="echo/echo-1", messages=HELLO)
        with rig.client("bob-key") as bob:  # another key, another bucket
            bob.chat.completions.create(model="echo/echo-1", messages=HELLO)
    response = caught.value.response
    assert response.status_code == 429
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert (body["error"]["type"], body["error"]["param"], body["error"]["code"]) == (
        "requests",
        None,
        "rate_limit_exceeded",
    )
    assert body["error"]["message"].startswith(
        "Rate limit reached for key 'alice' on requests per min: Limit 2, Used 2, Requested 1. "
        "Please try again in "
    )
    headers = response.headers  # one request every 30 s: a few ms have passed since the first
    assert headers["retry-after"] == "30" and 29_000 < int(headers["retry-after-ms"]) <= 30_000
    assert headers["x-ratelimit-limit-requests"] == "2"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert re.fullmatch(r"59\.\d{1,3}s|1m0s", headers["x-ratelimit-reset-requests"])
    assert headers["x-ratelimit-limit-tokens"] == "100000"
    assert int(headers["x-ratelimit-remaining-tokens"]) < 100_000
    assert headers["x-ratelimit-reset-tokens"].endswith("s")
    assert len(rig.seen.started) == 4 and not rig.upstream.requests


@pytest.mark.parametrize("rig", [[Rule("spend", "0.5", per="team")]], indirect=True)
def test_a_spent_budget_is_insufficient_quota_and_the_sdk_does_not_retry_it(rig: Rig) -> None:
    costs: list[Decimal] = []
    with rig.client(max_retries=2) as client, pytest.raises(openai.RateLimitError) as caught:
        for _ in range(100):
            client.chat.completions.create(model="echo/echo-1", messages=HELLO, max_tokens=50)
            rig.wait_for_ends(len(costs) + 1)
            admission = rig.seen.ended[-1][1]
            assert admission is not None and admission.cost is not None
            costs.append(admission.cost)
    error = caught.value
    assert error.code == "insufficient_quota" and error.type == "insufficient_quota"
    assert "the budget of team 'red' is 0.5 USD per month" in error.message
    assert error.response.headers["x-should-retry"] == "false"
    assert len(rig.seen.started) == len(costs) + 1  # asked once: the SDK did not retry
    # every call was charged its real cost ($0.001 a token); the next one's reservation no longer fits
    tokens = [used["total_tokens"] for used in rig.seen.usage if used is not None]
    assert costs == [Decimal(count) / 1000 for count in tokens]
    reservation = (input_estimate({"messages": HELLO}) + 50) / Decimal(1000)
    assert sum(costs) <= Decimal("0.5") < sum(costs) + reservation


@pytest.mark.parametrize("rig", [[Rule("tokens", 5000)]], indirect=True)
def test_a_stream_settles_to_its_real_usage(rig: Rig) -> None:
    with rig.client() as client:
        stream = client.chat.completions.create(
            model="echo/echo-1",
            messages=HELLO,
            stream=True,
            max_tokens=1000,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        used = chunks[-1].usage
        assert used is not None
        rig.wait_for_ends(1)
        client.chat.completions.create(model="echo/echo-1", messages=HELLO, max_tokens=10)
    first, second = rig.seen.started
    assert first is not None and second is not None
    reserved = first.demands[0].amount
    assert reserved == input_estimate({"messages": HELLO}) + 1000
    # the second call found the first's real usage charged, not its reservation (the clock is real:
    # the bucket may have refilled a little in between)
    remaining = int(second.headers["x-ratelimit-remaining-tokens"])
    left = 5000 - second.demands[0].amount
    assert used.total_tokens < reserved
    assert left - used.total_tokens <= remaining <= left


@pytest.mark.parametrize("rig", [[Rule("concurrent", 1), Rule("tokens", 2000)]], indirect=True)
def test_failed_and_abandoned_calls_give_their_reservation_back(rig: Rig) -> None:
    rig.upstream.faults.append(Fault(500, {"error": {"message": "boom"}}))
    with rig.client() as client:
        with pytest.raises(openai.InternalServerError):
            client.with_options(max_retries=0).chat.completions.create(
                model="up/m", messages=HELLO, max_tokens=1500
            )
        rig.wait_for_ends(1)
        rig.upstream.faults.append(Fault(None, delay=2.0))
        with pytest.raises(openai.APITimeoutError):
            client.with_options(timeout=0.3).chat.completions.create(
                model="up/m", messages=HELLO, max_tokens=1500
            )
        rig.wait_for_ends(2)
        # the slot and the 1,500+ tokens are back: one more such call fits
        client.chat.completions.create(model="up/m", messages=HELLO, max_tokens=1500)
    rig.wait_for_ends(3)  # the hooks see a call end after its client got the answer
    assert [status for status, _ in rig.seen.ended] == [502, 499, 200]


# -- x-ratelimit-* on every door's answers -----------------------------------------------------------------


def _rate_limited(headers: Any) -> int:
    """The remaining requests an answer's headers tell, after checking they are all there."""
    assert headers["x-ratelimit-limit-requests"] == "100"
    assert headers["x-ratelimit-limit-tokens"] == "100000"
    assert re.fullmatch(r"\d+(\.\d+)?m?s|\d+m[\d.]+s", headers["x-ratelimit-reset-requests"])
    assert 0 <= int(headers["x-ratelimit-remaining-tokens"]) <= 100_000  # count_tokens uses none
    return int(headers["x-ratelimit-remaining-requests"])


#: A request bucket that refills one request every 36 s, so that the ten calls below see no refill.
_SLOW_REFILL = [Rule("requests", 100, period=3600), Rule("tokens", 100_000)]


@pytest.mark.parametrize("rig", [_SLOW_REFILL], indirect=True)
def test_every_door_sends_the_rate_limit_headers(rig: Rig) -> None:
    """Regression (CI flake): with a per-minute bucket a pause of 0.6 s between two calls refilled one
    request, and the check that each answer's remaining count only falls failed; the bucket now refills
    too slowly to matter and the count must fall by exactly one per call."""
    remaining: list[int] = []
    with rig.client() as client:
        chat = client.chat.completions.with_raw_response.create(model="echo/echo-1", messages=HELLO)
        remaining.append(_rate_limited(chat.headers))
        with client.chat.completions.with_streaming_response.create(
            model="echo/echo-1", messages=HELLO, stream=True
        ) as streamed:
            remaining.append(_rate_limited(streamed.headers))
        response = client.responses.with_raw_response.create(model="echo/echo-1", input="hello there")
        remaining.append(_rate_limited(response.headers))
        for background in (False, True):
            with client.responses.with_streaming_response.create(
                model="echo/echo-1", input="hello there", stream=True, background=background
            ) as streamed:
                remaining.append(_rate_limited(streamed.headers))
        # Regression: a background response's queued answer (not streamed) had no rate-limit headers.
        queued = client.responses.with_raw_response.create(
            model="echo/echo-1", input="hello there", background=True
        )
        remaining.append(_rate_limited(queued.headers))
        embedded = client.embeddings.with_raw_response.create(model="echo/echo-1", input="hello there")
        remaining.append(_rate_limited(embedded.headers))
    with anthropic.Anthropic(base_url=rig.url, api_key="alice-key", max_retries=0) as claude:
        message = claude.messages.with_raw_response.create(
            model="echo/echo-1", max_tokens=50, messages=[{"role": "user", "content": "hello there"}]
        )
        remaining.append(_rate_limited(message.headers))
        with claude.messages.with_streaming_response.create(
            model="echo/echo-1", max_tokens=50, messages=[{"role": "user", "content": "hi"}], stream=True
        ) as streamed:
            remaining.append(_rate_limited(streamed.headers))
        counted = claude.messages.with_raw_response.count_tokens(
            model="echo/echo-1", messages=[{"role": "user", "content": "hello there"}]
        )
        remaining.append(_rate_limited(counted.headers))
    # one bucket across doors: each answer tells what the calls before it left
    assert remaining == list(range(99, 89, -1))


@pytest.mark.parametrize("rig", [[Rule("requests", 100)]], indirect=True)
def test_a_call_that_fails_after_admission_still_tells_its_rate_limits(rig: Rig) -> None:
    rig.upstream.faults.append(Fault(500, {"error": {"message": "boom"}}))
    with rig.client() as client, pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="up/m", messages=HELLO)
    headers = caught.value.response.headers
    assert headers["x-ratelimit-limit-requests"] == "100"
    assert int(headers["x-ratelimit-remaining-requests"]) <= 99
    assert len(headers.get_list("x-ratelimit-limit-requests")) == 1


@pytest.mark.parametrize("rig", [[Rule("requests", 1)]], indirect=True)
def test_a_refusal_carries_its_rate_limit_headers_once(rig: Rig) -> None:
    with rig.client() as client:
        client.chat.completions.create(model="echo/echo-1", messages=HELLO)
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model="echo/echo-1", messages=HELLO)
    headers = caught.value.response.headers
    assert headers.get_list("x-ratelimit-remaining-requests") == ["0"]
    assert len(headers.get_list("retry-after")) == 1


def test_without_limits_no_rate_limit_headers() -> None:
    with serve(Gateway()) as url, openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0) as client:
        answer = client.chat.completions.with_raw_response.create(model="echo/echo-1", messages=HELLO)
    assert answer.headers["x-llm-gateway-target"] == "echo/echo-1"
    assert not [name for name in answer.headers if name.startswith("x-ratelimit")]


# -- the cost in usage records -------------------------------------------------------------------------------


class Records:
    def __init__(self) -> None:
        self.records: list[UsageRecord] = []

    async def __call__(self, record: UsageRecord) -> None:
        self.records.append(record)

    def wait_for(self, count: int) -> list[UsageRecord]:
        deadline = time.monotonic() + 5
        while len(self.records) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.records) == count
        return self.records


@pytest.mark.parametrize("prices", [DEAR, None])
def test_usage_records_carry_the_cost_when_the_gateway_has_prices(prices: dict[str, Price] | None) -> None:
    records = Records()
    gateway = Gateway(on_usage=records, prices=prices)
    with serve(gateway) as url, openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0) as client:
        client.chat.completions.create(model="echo/echo-1", messages=HELLO)
        stream = client.chat.completions.create(
            model="echo/echo-1", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
        list(stream)
        client.embeddings.create(model="echo/echo-1", input="hello there")
    for record in records.wait_for(3):
        assert record.usage is not None
        if prices is None:
            assert record.cost is None
        else:  # $0.001 a token in and out
            assert record.cost == Decimal(record.usage["total_tokens"]) / 1000


def test_a_call_without_usage_or_price_costs_nothing_known() -> None:
    records, upstream = Records(), FakeOpenAI()
    upstream.faults.append(Fault(500, {"error": {"message": "boom"}}))
    with serve(upstream.app()) as upstream_url:
        gateway = Gateway(
            providers={
                "up": OpenAIProvider(api_key=KEY, base_url=upstream_url + "/v1"),
                "echo": EchoProvider(),
            },
            on_usage=records,
            policy=Policy(max_attempts=1),
            prices={"up/*": Price(1, 1)},
        )
        with serve(gateway) as url, openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0) as client:
            client.chat.completions.create(model="echo/echo-1", messages=HELLO)
            with pytest.raises(openai.InternalServerError):
                client.chat.completions.create(model="up/m", messages=HELLO)
    first, second = records.wait_for(2)
    assert first.usage is not None and first.cost is None  # no price for echo
    assert second.status == 502 and second.usage is None and second.cost is None
