"""Limits and budgets: one suite over the memory and the Redis limiter (a real redis-server on loopback,
tests/support/redis_server.py), through `LimitsHook` where the hook matters; then rules, headers, and what
only Redis has (its key layout, two OS processes sharing one limit, a Redis that dies or freezes).

Time is a hand-set clock (`Clock`) in both backends, so refill rates and period boundaries are exact."""

from __future__ import annotations

import calendar
import logging
import os
import random
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import anyio
import pytest

from asgi_llm_gateway import Call, GatewayError, Hooks, Principal, UsageRecord
from asgi_llm_gateway.limits import (
    Admission,
    Decision,
    Demand,
    Limiter,
    LimitsHook,
    MemoryLimiter,
    Rule,
    admission_of,
    format_reset,
    input_estimate,
    limit_headers,
)
from asgi_llm_gateway.limits.rules import window
from asgi_llm_gateway.pipeline.hooks import HookChain
from asgi_llm_gateway.pricing import Price
from asgi_llm_gateway.providers import EchoProvider
from asgi_llm_gateway.routing import Target
from tests.support.fresh import printed_by_fresh_python
from tests.support.limits import Clock, redis_pid
from tests.support.redis_server import redis_url_fixture, running_redis  # noqa: F401  (the redis_url fixture)

pytestmark = pytest.mark.anyio

#: 2026-01-31 23:59:50 UTC: ten seconds before a new day, a new month.
JAN_31_LATE = calendar.timegm((2026, 1, 31, 23, 59, 50))
ECHO = Target("echo", EchoProvider(), "echo-1")
CHEAP = {"echo/*": Price(input="1.00", output="2.00")}  # $1 and $2 per million tokens

Factory = Callable[..., Limiter]


@pytest.fixture(params=["memory", "redis"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def clock() -> Clock:
    return Clock(JAN_31_LATE)


@pytest.fixture
async def make_limiter(kind: str, clock: Clock, request: pytest.FixtureRequest) -> AsyncIterator[Factory]:
    """Makes limiters of `kind` on the test's clock; Redis ones share this test's own key prefix (so two
    are two replicas)."""
    url = request.getfixturevalue("redis_url") if kind == "redis" else None
    prefix = f"test-limits:{uuid.uuid4().hex}:"
    made: list[Limiter] = []

    def make(**options: Any) -> Limiter:
        options.setdefault("clock", clock)
        if kind == "memory":
            limiter: Limiter = MemoryLimiter(**options)
        else:
            from asgi_llm_gateway.limits.redis import RedisLimiter

            options.setdefault("timeout", 5)  # a loaded CI machine must not turn into a fail-open
            limiter = RedisLimiter(url, prefix=prefix, **options)
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        await limiter.aclose()


def call(principal: Any = "alice", model: str = "echo/echo-1", body: Mapping[str, Any] | None = None) -> Call:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], **(body or {})}
    return Call(uuid.uuid4().hex, "chat.completions", principal, model, body)


async def admit(hook: LimitsHook, the_call: Call) -> GatewayError | None:
    """The refusal of `the_call`, or None when admitted."""
    try:
        await hook.admit(the_call, [ECHO])
    except GatewayError as error:
        return error
    return None


async def end(
    hook: LimitsHook, the_call: Call, status: int = 200, usage: dict[str, Any] | None = None
) -> None:
    the_call.target = ECHO
    the_call.usage = usage
    await hook.request_ended(the_call, the_call.record(status))


def usage(prompt: int, completion: int) -> dict[str, Any]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


# -- requests: GCRA ------------------------------------------------------------------------------------


async def test_100_parallel_admissions_against_10_rpm_admit_exactly_10(make_limiter: Factory) -> None:
    hook = LimitsHook(make_limiter(), [Rule("requests", 10)])
    refusals: list[GatewayError | None] = []

    async def one() -> None:
        refusals.append(await admit(hook, call()))

    async with anyio.create_task_group() as group:
        for _ in range(100):
            group.start_soon(one)
    assert refusals.count(None) == 10
    refused = [error for error in refusals if error is not None]
    assert len(refused) == 90
    assert {(error.status, error.type, error.code) for error in refused} == {
        (429, "requests", "rate_limit_exceeded")
    }


async def test_requests_refill_at_limit_per_period(make_limiter: Factory, clock: Clock) -> None:
    hook = LimitsHook(make_limiter(), [Rule("requests", 10)])  # one request every 6 s, at most 10 at once
    for _ in range(10):
        assert await admit(hook, call()) is None
    refused = await admit(hook, call())
    assert refused is not None
    assert refused.headers["retry-after"] == "6"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.headers["x-ratelimit-reset-requests"] == "1m0s"
    assert "on requests per min: Limit 10, Used 10, Requested 1. Please try again in 6s." in refused.message
    clock.now += 5.9
    assert await admit(hook, call()) is not None
    clock.now += 0.1
    assert await admit(hook, call()) is None  # exactly one came back
    assert await admit(hook, call()) is not None
    clock.now += 60
    admitted = [await admit(hook, call()) for _ in range(11)]
    assert admitted.count(None) == 10  # a full bucket again, never more than the limit at once


async def test_admitted_calls_carry_openais_headers(make_limiter: Factory) -> None:
    hook = LimitsHook(make_limiter(), [Rule("requests", 10), Rule("tokens", 10_000)])
    first = call(body={"max_tokens": 100})
    assert await admit(hook, first) is None
    admission = admission_of(first)
    assert isinstance(admission, Admission) and admission.reserved
    reserved = input_estimate(first.body) + 100
    assert admission.headers == {
        "x-ratelimit-limit-requests": "10",
        "x-ratelimit-remaining-requests": "9",
        "x-ratelimit-reset-requests": "6s",
        "x-ratelimit-limit-tokens": "10000",
        "x-ratelimit-remaining-tokens": str(10_000 - reserved),
        "x-ratelimit-reset-tokens": format_reset(reserved * 60 / 10_000),
    }
    assert limit_headers(first) == [
        (name.encode(), value.encode()) for name, value in admission.headers.items()
    ]
    assert limit_headers(call()) == []  # a call the hook never saw


async def test_the_tightest_of_two_rules_of_a_kind_shows(make_limiter: Factory) -> None:
    hook = LimitsHook(
        make_limiter(), [Rule("requests", 100, per="principal"), Rule("requests", 3, per="model")]
    )
    the_call = call()
    assert await admit(hook, the_call) is None
    assert admission_of(the_call).headers["x-ratelimit-limit-requests"] == "3"  # type: ignore[union-attr]


async def test_one_admission_is_all_or_nothing(make_limiter: Factory) -> None:
    """A call refused by one rule takes nothing from the others."""
    team = Principal("alice", metadata={"team": "red"})
    hook = LimitsHook(make_limiter(), [Rule("requests", 5), Rule("requests", 2, per="team")])
    results = [await admit(hook, call(team)) for _ in range(4)]
    assert results[:2] == [None, None] and all(error is not None for error in results[2:])
    assert "team 'red'" in results[2].message  # type: ignore[union-attr]
    # alice's own bucket was charged for the 2 admitted calls only: 3 of 5 left
    alone = LimitsHook(hook.limiter, [Rule("requests", 5)])
    assert [await admit(alone, call(team)) for _ in range(4)].count(None) == 3
    assert await admit(hook, call(Principal("bob", metadata={"team": "blue"}))) is None


# -- tokens: weighted GCRA, reserve then settle ----------------------------------------------------------


async def test_concurrent_token_reservations_never_overshoot(make_limiter: Factory, clock: Clock) -> None:
    """50 streaming-sized calls at once against 2,000 tokens per minute: exactly as many as fit are
    admitted; settling gives back what was not used; usage beyond the reservation is the only overshoot."""
    hook = LimitsHook(make_limiter(), [Rule("tokens", 2000)])
    body = {"max_tokens": 300, "stream": True}
    reservation = input_estimate(call(body=body).body) + 300
    fits = 2000 // reservation
    calls = [call(body=body) for _ in range(50)]
    results: dict[int, GatewayError | None] = {}

    async def one(index: int) -> None:
        results[index] = await admit(hook, calls[index])

    async with anyio.create_task_group() as group:
        for index in range(50):
            group.start_soon(one, index)
    admitted = [calls[index] for index, error in results.items() if error is None]
    assert len(admitted) == fits
    refused = next(error for error in results.values() if error is not None)
    assert (refused.type, refused.code) == ("tokens", "rate_limit_exceeded")
    assert f"Requested {reservation}" in refused.message
    # each used a third of its reservation: two thirds of every reservation come back
    for the_call in admitted:
        await end(hook, the_call, usage=usage(reservation // 3, 0))
    returned = fits * (reservation - reservation // 3)
    again = [await admit(hook, call(body=body)) for _ in range(10)]
    assert again.count(None) == (2000 - fits * reservation + returned) // reservation
    # a minute later everything is back; a call that uses more than it reserved is charged all of it
    clock.now += 60
    big = call(body=body)
    assert await admit(hook, big) is None
    await end(hook, big, usage=usage(1000, 900))  # 1,900 used of ~320 reserved
    last = call(body={"max_tokens": 1})
    assert await admit(hook, last) is None
    assert admission_of(last).headers["x-ratelimit-remaining-tokens"] == str(  # type: ignore[union-attr]
        2000 - 1900 - input_estimate(last.body) - 1
    )


async def test_token_admissions_in_any_window_stay_within_the_bucket(
    make_limiter: Factory, clock: Clock
) -> None:
    """GCRA's guarantee, with settlement, over a random interleaving of admissions and settlements: within
    any stretch of time, the tokens reserved by the calls admitted, plus what the settlements in it moved
    (used - reserved: a refund is negative, usage beyond the reservation positive), never exceed the
    limit plus the refill of that stretch. So tokens overshoot only by usage beyond reservations."""
    rng = random.Random(17)
    limiter = make_limiter()
    limit, period = 5000, 60.0
    events: list[tuple[float, bool, int]] = []  # (time, is an admission, tokens it added)
    in_flight: list[tuple[str, Demand]] = []
    for step in range(300):
        clock.now += rng.choice([0.0, 0.0, 0.01, 0.5, 3.0])
        if in_flight and rng.random() < 0.45:
            lease, demand = in_flight.pop(rng.randrange(len(in_flight)))
            used = rng.randint(0, 2 * demand.amount)  # a third of them beyond their reservation
            await limiter.settle([demand], [used], lease)
            events.append((clock.now, False, used - demand.amount))
        else:
            demand = Demand("t", "tokens", limit, period, rng.randint(50, 1500))
            if (await limiter.acquire([demand], f"lease-{step}")).admitted:
                in_flight.append((f"lease-{step}", demand))
                events.append((clock.now, True, demand.amount))
    assert 40 < sum(admitted for _, admitted, _ in events) < 300  # some admitted, some refused
    for end_index, (end, admitted, _) in enumerate(events):
        if not admitted:
            continue
        for start in {time for time, _, _ in events[: end_index + 1]}:
            added = sum(tokens for time, _, tokens in events[: end_index + 1] if time >= start)
            assert added <= limit + (end - start) * limit / period + 1, (start, end)


async def test_a_call_larger_than_the_token_limit_is_refused_for_good(make_limiter: Factory) -> None:
    hook = LimitsHook(make_limiter(), [Rule("tokens", 1000)])
    error = await admit(hook, call(body={"max_tokens": 5000}))
    assert error is not None and error.status == 429 and error.type == "tokens"
    assert error.message.startswith("Request too large for key 'alice' on tokens per min: Limit 1000")
    assert error.headers["x-should-retry"] == "false" and "retry-after" not in error.headers
    assert await admit(hook, call(body={"max_tokens": 500})) is None  # it took nothing


async def test_the_output_bound_comes_from_the_request_else_the_model_maximum(make_limiter: Factory) -> None:
    limiter = make_limiter()
    maxima = {"echo/*": 700}
    hook = LimitsHook(limiter, [Rule("tokens", 100_000)], max_output_tokens=maxima)
    estimate = input_estimate(call().body)
    cases: list[tuple[dict[str, Any], int]] = [
        ({"max_completion_tokens": 10}, 10),
        ({"max_tokens": 20}, 20),
        ({"max_output_tokens": 30}, 30),
        ({}, 700),
        ({"max_tokens": True}, 700),  # not a number
    ]
    for body, output in cases:
        the_call = call(body=body)
        await admit(hook, the_call)
        [demand] = admission_of(the_call).demands  # type: ignore[union-attr]
        assert demand.amount == input_estimate(the_call.body) + output, body
    other = LimitsHook(limiter, [Rule("tokens", 100_000, name="other")], max_output_tokens={"gpt-*": 10})
    the_call = call()
    await admit(other, the_call)
    assert admission_of(the_call).demands[0].amount == estimate + 4096  # type: ignore[union-attr]


async def test_embeddings_reserve_no_output_and_counting_tokens_reserves_none(make_limiter: Factory) -> None:
    hook = LimitsHook(make_limiter(), [Rule("tokens", 100_000), Rule("requests", 2)])
    body = {"model": "echo/echo-1", "input": ["some text to embed"] * 20}
    embedding = Call("e", "embeddings", "alice", "echo/echo-1", body)
    await hook.admit(embedding, [ECHO])
    tokens = admission_of(embedding).demands[0]  # type: ignore[union-attr]
    assert tokens.kind == "tokens" and tokens.amount == input_estimate(body) > 100
    counting = Call("c", "messages.count_tokens", "alice", "echo/echo-1", {"messages": HELLO_LONG})
    await hook.admit(counting, [ECHO])
    assert [demand.amount for demand in admission_of(counting).demands] == [0, 1]  # type: ignore[union-attr]
    assert await admit(hook, call()) is not None  # it was a request all the same: 2 of 2


HELLO_LONG = [{"role": "user", "content": "hello " * 1000}]


# -- concurrency: leases ------------------------------------------------------------------------------


async def test_concurrency_slots_come_back_when_calls_end(make_limiter: Factory) -> None:
    hook = LimitsHook(make_limiter(), [Rule("concurrent", 2)])
    first, second = call(), call()
    assert await admit(hook, first) is None and await admit(hook, second) is None
    refused = await admit(hook, call())
    assert refused is not None and refused.type == "requests"
    assert refused.message.startswith("Too many concurrent requests for key 'alice': Limit 2.")
    assert refused.headers["retry-after"] == "1"
    await end(hook, first)
    await end(hook, first)  # a second end changes nothing
    assert await admit(hook, call()) is None
    assert await admit(hook, call()) is not None


async def test_a_crashed_holders_lease_expires(make_limiter: Factory, clock: Clock) -> None:
    limiter = make_limiter(lease_ttl=30)
    slot = Demand("slot", "concurrent", 1, None, 1)
    assert (await limiter.acquire([slot], "crashed")).admitted  # and never settles
    clock.now += 29
    assert not (await limiter.acquire([slot], "waiting")).admitted
    clock.now += 1
    assert (await limiter.acquire([slot], "waiting")).admitted


# -- reservations released on failure and on a client that leaves ---------------------------------------


@pytest.mark.parametrize("status", [502, 499])
async def test_reservations_are_released_when_a_call_fails_or_is_abandoned(
    make_limiter: Factory, status: int
) -> None:
    rules = [Rule("tokens", 5000), Rule("concurrent", 1), Rule("spend", "0.005", period="day")]
    hook = LimitsHook(make_limiter(), rules, prices=CHEAP)
    body = {"max_tokens": 2000}
    first = call(body=body)
    assert await admit(hook, first) is None
    held = admission_of(first)
    assert held is not None
    assert await admit(hook, call(body=body)) is not None  # the slot is taken
    await end(hook, first, status)  # no usage known: nothing was used
    assert held.settled and held.cost is None
    again = call(body=body)
    assert await admit(hook, again) is None
    assert admission_of(again).headers == held.headers  # type: ignore[union-attr]  # the same bucket state


async def test_a_settlement_survives_the_cancellation_of_its_caller(make_limiter: Factory) -> None:
    """Regression: a door settles a plain call after its response is complete, when the disconnect watcher
    is already cancelling the request's scope; the settlement must complete (the slot comes back) and the
    hooks after this one must still see the call end."""
    hook = LimitsHook(Slow(make_limiter()), [Rule("concurrent", 1)])
    ended: list[int] = []

    class After(Hooks):
        async def request_ended(self, call: Call, record: UsageRecord) -> None:
            ended.append(record.status)

    first = call()
    assert await admit(hook, first) is None
    first.target = ECHO
    async with anyio.create_task_group() as group:
        group.start_soon(HookChain([hook, After()]).request_ended, first, first.record(200))
        await anyio.wait_all_tasks_blocked()  # the settlement is under way
        group.cancel_scope.cancel()  # as the disconnect watcher does
    assert ended == [200]
    assert await admit(hook, call()) is None


class Slow:
    """A limiter whose settlements take a round trip to a slow Redis."""

    def __init__(self, limiter: Limiter) -> None:
        self.limiter = limiter

    async def acquire(self, demands: Sequence[Demand], lease: str) -> Decision:
        return await self.limiter.acquire(demands, lease)

    async def settle(self, demands: Sequence[Demand], used: Sequence[int], lease: str) -> None:
        await anyio.sleep(0.05)
        await self.limiter.settle(demands, used, lease)

    async def aclose(self) -> None:
        await self.limiter.aclose()


# -- spend: budgets over periods --------------------------------------------------------------------------


async def test_a_budget_reserves_the_dearest_cost_and_charges_the_real_one(make_limiter: Factory) -> None:
    prices = {"echo/echo-1": Price(input="1.00", output="2.00"), "dear/*": Price(input="10", output="20")}
    dear = Target("dear", EchoProvider(), "m")
    hook = LimitsHook(make_limiter(), [Rule("spend", "0.05")], prices=prices)
    body = {"max_tokens": 1000}
    the_call = call(body=body)
    await hook.admit(the_call, [ECHO, dear])  # a fallback to the dear target is possible: reserve for it
    [demand] = admission_of(the_call).demands  # type: ignore[union-attr]
    assert demand.amount == (input_estimate(the_call.body) * 10 + 1000 * 20) * 1000  # nano-dollars
    await end(hook, the_call, usage=usage(1000, 500))  # answered by echo: $0.001 + $0.001
    assert admission_of(the_call).cost == Decimal("0.002")  # type: ignore[union-attr]
    cheap = call(body={"max_tokens": 1})
    await hook.admit(cheap, [ECHO])
    assert await admit(hook, call(body={"max_tokens": 100_000})) is not None  # $0.20 > $0.048 left
    await end(hook, cheap, usage=usage(24_000, 0))  # $0.024
    error = await admit(hook, call(body={"max_tokens": 10_000}))  # up to $0.02 > 0.05 - 0.026 - 0
    assert error is None
    error = await admit(hook, call(body={"max_tokens": 10_000}))
    assert error is not None and error.status == 429
    assert error.type == error.code == "insufficient_quota"
    assert error.headers["x-should-retry"] == "false"
    assert "the budget of key 'alice' is 0.05 USD per month" in error.message
    assert error.message.endswith("It renews in 10s.") and error.headers["retry-after"] == "10"  # February
    too_dear = await admit(hook, call(body={"max_tokens": 10**6}))  # $2 can never fit in $0.05
    assert too_dear is not None and too_dear.message.endswith("It never fits.")
    assert too_dear.headers["x-should-retry"] == "false" and "retry-after" not in too_dear.headers


async def test_a_call_without_a_price_is_not_charged_to_budgets_and_says_so(
    make_limiter: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    hook = LimitsHook(make_limiter(), [Rule("spend", "0.01")], prices={"other/*": Price(1, 1)})
    with caplog.at_level(logging.WARNING, "asgi_llm_gateway.limits"):
        for _ in range(3):
            the_call = call(body={"max_tokens": 10**6})
            assert await admit(hook, the_call) is None  # a million tokens would cost $1: unpriced, free
            await end(hook, the_call, usage=usage(1000, 10**6))
            assert admission_of(the_call).cost is None  # type: ignore[union-attr]
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert warnings == [
        "no price for echo/echo-1: its calls are not charged to budgets (0 similar warnings held back)"
    ]


@pytest.mark.parametrize(
    ("period", "to_next_period"),
    [("day", 10), ("month", 10), (3600, 10)],  # 23:59:50 on January 31st
)
async def test_a_budget_renews_at_its_periods_boundary(
    make_limiter: Factory, clock: Clock, period: Any, to_next_period: int
) -> None:
    limiter = make_limiter()
    budget = Demand("team", "spend", 1_000, period, 400)
    assert (await limiter.acquire([budget], "a")).admitted
    assert (await limiter.acquire([budget], "b")).admitted
    await limiter.settle([budget], [400], "a")  # a's 400 charged; b still in flight
    refused = await limiter.acquire([budget], "c")
    assert not refused.admitted and refused.states[0].retry_after == pytest.approx(to_next_period)
    assert refused.states[0].remaining == 1_000 - 400 - 400
    clock.now += to_next_period - 0.001
    assert not (await limiter.acquire([budget], "c")).admitted
    clock.now += 0.001
    renewed = await limiter.acquire([budget], "c")
    assert renewed.admitted  # spent starts again at 0; b's reservation is still held
    assert renewed.states[0].remaining == 1_000 - 400 - 400


async def test_what_a_day_charges_stays_within_its_budget(make_limiter: Factory, clock: Clock) -> None:
    """Random concurrent reservations and settlements over two day (and one month) boundaries: what each
    day charges never exceeds the budget but by the usage beyond reservations (reservations in flight at
    midnight carry over into the new day, so they cannot be spent twice)."""
    rng = random.Random(5)
    limiter = make_limiter(lease_ttl=10**6)
    limit = 10_000
    clock.now = JAN_31_LATE - 86400 - 30000  # January 30th, 15:40
    charged: dict[int, int] = {}
    beyond: dict[int, int] = {}
    in_flight: list[tuple[str, Demand]] = []
    for step in range(400):
        clock.now += rng.choice([0.0, 1.0, 60.0, 1200.0])
        if in_flight and rng.random() < 0.5:
            lease, demand = in_flight.pop(rng.randrange(len(in_flight)))
            used = rng.randint(0, demand.amount * 3 // 2)
            await limiter.settle([demand], [used], lease)
            day = window("day", clock.now)[0]
            charged[day] = charged.get(day, 0) + used
            beyond[day] = beyond.get(day, 0) + max(0, used - demand.amount)
        else:
            demand = Demand("team", "spend", limit, "day", rng.randint(100, 3000))
            if (await limiter.acquire([demand], f"lease-{step}")).admitted:
                in_flight.append((f"lease-{step}", demand))
    assert len(charged) >= 3  # January 30th, 31st, February 1st
    for day, amount in charged.items():
        assert amount <= limit + beyond[day], day
    assert max(amount - beyond[day] for day, amount in charged.items()) > limit / 2  # budgets were used


async def test_a_month_budget_does_not_renew_at_a_day_boundary(make_limiter: Factory, clock: Clock) -> None:
    limiter = make_limiter()
    clock.now = calendar.timegm((2026, 2, 14, 23, 59, 59))
    budget = Demand("team", "spend", 100, "month", 100)
    assert (await limiter.acquire([budget], "a")).admitted
    await limiter.settle([budget], [100], "a")
    clock.now += 1  # February 15th
    refused = await limiter.acquire([budget], "b")
    assert not refused.admitted
    assert refused.states[0].reset == pytest.approx(calendar.timegm((2026, 3, 1, 0, 0, 0)) - clock.now)
    clock.now = calendar.timegm((2026, 12, 31, 23, 59, 59))  # and across a year, December to January
    assert (await limiter.acquire([budget], "c")).admitted
    await limiter.settle([budget], [100], "c")
    assert not (await limiter.acquire([budget], "d")).admitted
    clock.now += 1
    assert (await limiter.acquire([budget], "d")).admitted


async def test_a_crashed_holders_budget_reservation_expires(make_limiter: Factory, clock: Clock) -> None:
    limiter = make_limiter(lease_ttl=60)
    budget = Demand("team", "spend", 100, "month", 100)
    assert (await limiter.acquire([budget], "crashed")).admitted
    assert not (await limiter.acquire([budget], "next")).admitted
    clock.now += 60
    assert (await limiter.acquire([budget], "next")).admitted
    await limiter.settle([budget], [0], "crashed")  # a late settle of an expired lease gives nothing back
    assert not (await limiter.acquire([budget], "third")).admitted


def test_budget_windows_are_utc_calendar_days_and_months() -> None:
    assert window("day", JAN_31_LATE) == (JAN_31_LATE // 86400, calendar.timegm((2026, 2, 1, 0, 0, 0)))
    number, end = window("month", JAN_31_LATE)
    assert (number, end) == (2026 * 12, calendar.timegm((2026, 2, 1, 0, 0, 0)))
    assert window("month", calendar.timegm((2024, 2, 29, 12, 0, 0)))[1] == calendar.timegm(
        (2024, 3, 1, 0, 0, 0)
    )
    assert window(3600.0, 7200.5) == (2, 10800.0)


# -- rules -----------------------------------------------------------------------------------------------


def test_a_rule_picks_its_bucket_from_the_principal_and_model() -> None:
    alice = Principal("alice", metadata={"team": "red", "project": "a:b/c"})
    assert Rule("requests", 1).key(alice, "smart") == "requests/principal/60.0:alice"
    assert Rule("requests", 1, per="model").key(alice, "openai/gpt-5") == "requests/model/60.0:openai%2Fgpt-5"
    assert Rule("tokens", 1, per="team+model").key(alice, "m") == "tokens/team+model/60.0:red:m"
    assert Rule("requests", 1, per="project").key(alice, "m") == "requests/project/60.0:a%3Ab%2Fc"
    assert Rule("requests", 1, per="user").key(alice, "m") is None  # alice has no user: no such bucket
    assert Rule("requests", 1, per="global").key(alice, "m") == "requests/global/60.0"
    assert Rule("spend", 5, per="principal").key(None, "m") == "spend/principal/month:anonymous"
    assert Rule("spend", 5, period="day", name="daily").key("sk-…", "m") == "spend/daily:sk-%E2%80%A6"
    narrow = Rule("requests", 1, models=("openai/*",), principals=("al*",))
    assert narrow.key(alice, "anthropic/claude") is None and narrow.key(Principal("bob"), "openai/x") is None
    assert narrow.key(alice, "openai/x") is not None and narrow.key(alice, "openai/x") != Rule(
        "requests", 1
    ).key(alice, "openai/x")


def test_a_rule_keeps_its_bucket_when_only_its_amount_changes() -> None:
    assert Rule("requests", 10).id == Rule("requests", 20).id
    assert Rule("requests", 10).id != Rule("requests", 10, period=3600).id


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"kind": "calls", "amount": 1}, "kind must be one of"),
        ({"kind": "requests", "amount": 0}, "must be positive"),
        ({"kind": "requests", "amount": "many"}, "must be a number"),
        ({"kind": "tokens", "amount": 1.5}, "counts whole tokens"),
        ({"kind": "requests", "amount": 1, "period": "month"}, "only spend rules"),
        ({"kind": "spend", "amount": 1, "period": "week"}, "only spend rules take 'day' or 'month'"),
        ({"kind": "requests", "amount": 1, "period": -1}, "positive number of seconds"),
        ({"kind": "concurrent", "amount": 1, "period": 60}, "no period"),
        ({"kind": "requests", "amount": 1, "per": "team+"}, "parts joined by '\\+'"),
    ],
)
def test_a_bad_rule_says_what_is_wrong(options: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        Rule(**options)


def test_a_spend_rule_counts_money_exactly() -> None:
    assert Rule("spend", "0.1").limit == 100_000_000 and Rule("spend", 0.1).limit == 100_000_000
    assert Rule("spend", Decimal("1234.000000001")).limit == 1_234_000_000_001


def test_the_hook_refuses_rules_that_share_a_bucket_and_prices_in_two_currencies() -> None:
    limiter = MemoryLimiter()
    with pytest.raises(ValueError, match="share a bucket"):
        LimitsHook(limiter, [Rule("requests", 1, name="x"), Rule("requests", 5, name="x")])
    with pytest.raises(ValueError, match="share a bucket"):
        LimitsHook(limiter, [Rule("requests", 1), Rule("requests", 5)])
    LimitsHook(limiter, [Rule("requests", 1, name="x"), Rule("tokens", 1, name="x")])  # a kind apart
    with pytest.raises(ValueError, match="one currency"):
        LimitsHook(limiter, [], prices={"a": Price(1, 1), "b": Price(1, 1, currency="EUR")})


def test_reset_durations_read_as_openais() -> None:
    assert [format_reset(s) for s in (0, 0.0004, 0.02, 1, 1.5, 59.9994, 360, 3723.5, 8.641)] == [
        "0s",
        "1ms",
        "20ms",
        "1s",
        "1.5s",
        "1m0s",
        "6m0s",
        "1h2m3.5s",
        "8.641s",
    ]


async def test_no_applicable_rule_means_no_limiter_call() -> None:
    class Refusing(MemoryLimiter):
        async def acquire(self, demands: Any, lease: str) -> Any:
            raise AssertionError("called")

    hook = LimitsHook(Refusing(), [Rule("requests", 1, per="team")])
    the_call = call()
    assert await admit(hook, the_call) is None and admission_of(the_call) is None
    await end(hook, the_call)


def test_the_limits_package_imports_no_redis() -> None:
    """Only `asgi_llm_gateway.limits.redis` needs the `[redis]` extra."""
    code = "import sys, asgi_llm_gateway.limits; print(sorted(m for m in sys.modules if m[:5] == 'redis'))"
    assert printed_by_fresh_python(code) == ["[]"]


async def test_requests_alone_need_no_settlement(make_limiter: Factory) -> None:
    """One round trip per call, not two, for a gateway that limits requests only."""
    settled: list[list[str]] = []

    class Counting(Slow):
        async def settle(self, demands: Sequence[Demand], used: Sequence[int], lease: str) -> None:
            settled.append([demand.kind for demand in demands])
            await self.limiter.settle(demands, used, lease)

    hook = LimitsHook(Counting(make_limiter()), [Rule("requests", 10)])
    the_call = call()
    assert await admit(hook, the_call) is None
    await end(hook, the_call, usage=usage(1, 1))
    assert settled == []
    both = LimitsHook(Counting(make_limiter()), [Rule("requests", 10, name="r"), Rule("concurrent", 1)])
    the_call = call()
    assert await admit(both, the_call) is None
    await end(both, the_call)
    assert settled == [["concurrent"]]


# -- Redis only ---------------------------------------------------------------------------------------


async def test_redis_keys_carry_the_prefix_and_hash_tag_and_expire(redis_url: str) -> None:
    import redis.asyncio as aioredis

    from asgi_llm_gateway.limits.redis import RedisLimiter

    prefix = f"test-limits:{uuid.uuid4().hex}:"
    limiter = RedisLimiter(redis_url, prefix=prefix, hash_tag="limits", timeout=5)
    demands = [
        Demand("r", "requests", 10, 60.0, 1),
        Demand("c", "concurrent", 2, None, 1),
        Demand("s", "spend", 10, "day", 3),
    ]
    client = aioredis.Redis.from_url(redis_url)
    try:
        assert (await limiter.acquire(demands, "lease-1")).admitted
        keys = sorted(key.decode() for key in await client.keys(prefix + "*") if isinstance(key, bytes))
        assert keys == [prefix + "{limits}:" + name for name in ("c", "r", "s", "s:leases")]
        for key in keys:
            assert 0 < await client.pttl(key) <= (86400 + 900 + 1) * 1000
        assert await client.zrange(prefix + "{limits}:s:leases", 0, -1) == [b"lease-1:3"]
        assert await client.hgetall(prefix + "{limits}:s") == {
            b"w": str(await _today(client)).encode(),
            b"spent": b"0",
            b"reserved": b"3",
        }
        await limiter.settle(demands, [0, 0, 2], "lease-1")
        assert await client.hget(prefix + "{limits}:s", "spent") == b"2"
        assert await client.zcard(prefix + "{limits}:c") == 0
        await client.script_flush()  # a Redis that forgot the scripts (restarted, failed over): EVAL again
        assert (await limiter.acquire(demands, "lease-2")).admitted
    finally:
        await client.aclose()
        await limiter.aclose()


async def _today(client: Any) -> int:
    seconds, _ = await client.time()
    return int(seconds) // 86400


async def test_redis_uses_its_own_clock_when_none_is_given(redis_url: str) -> None:
    from asgi_llm_gateway.limits.redis import RedisLimiter

    limiter = RedisLimiter(redis_url, prefix=f"test-limits:{uuid.uuid4().hex}:", timeout=5)
    try:
        decision = await limiter.acquire([Demand("s", "spend", 10, "day", 1)], "lease")
        assert 0 < decision.states[0].reset <= 86400
    finally:
        await limiter.aclose()


async def test_redis_two_processes_enforce_one_limit_together(redis_url: str) -> None:
    """Two OS processes, each 100 concurrent admissions against one shared bucket of 30 per hour."""
    prefix = f"test-limits:{uuid.uuid4().hex}:"
    command = [sys.executable, "-m", "tests.support.limits", redis_url, prefix, "30", "100"]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    processes = [
        subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    counts = []
    for process in processes:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        counts.append(int(out))
    assert sum(counts) == 30


@pytest.mark.parametrize("fault", ["killed", "frozen"])
async def test_redis_down_or_frozen_fails_open_with_a_warning(
    fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    from asgi_llm_gateway.limits.redis import RedisLimiter

    with running_redis() as url:
        limiter = RedisLimiter(url, timeout=0.2)
        hook = LimitsHook(limiter, [Rule("requests", 100), Rule("concurrent", 5)])
        assert await admit(hook, call()) is None
        pid = await redis_pid(url)
        os.kill(pid, signal.SIGKILL if fault == "killed" else signal.SIGSTOP)
        try:
            with (
                anyio.fail_after(10),
                caplog.at_level(logging.WARNING, "asgi_llm_gateway.limits"),
            ):  # hang guard
                the_call = call()
                assert await admit(hook, the_call) is None  # admitted unchecked
                assert admission_of(the_call).reserved is False  # type: ignore[union-attr]
                assert limit_headers(the_call) == []
                assert await admit(hook, call()) is None
                await end(hook, the_call)  # nothing to settle, nothing raised
        finally:
            if fault == "frozen":
                os.kill(pid, signal.SIGCONT)
            await limiter.aclose()
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1  # one warning, the next ones held back
    assert "limits unavailable, admitting calls unchecked (fail_open=True)" in warnings[0]


@pytest.mark.parametrize("fault", ["killed", "frozen"])
async def test_redis_down_or_frozen_fails_closed_with_503(fault: str) -> None:
    from asgi_llm_gateway.limits.redis import RedisLimiter

    with running_redis() as url:
        limiter = RedisLimiter(url, timeout=0.2)
        hook = LimitsHook(limiter, [Rule("requests", 100)], fail_open=False)
        held = call()
        assert await admit(hook, held) is None
        pid = await redis_pid(url)
        os.kill(pid, signal.SIGKILL if fault == "killed" else signal.SIGSTOP)
        try:
            with anyio.fail_after(10):  # hang guard only
                error = await admit(hook, call())
                assert error is not None
                assert (error.status, error.type, error.code) == (503, "server_error", "limits_unavailable")
                assert error.headers == {"retry-after": "1"}
                await end(hook, held)  # the earlier call's settlement fails quietly
        finally:
            if fault == "frozen":
                os.kill(pid, signal.SIGCONT)
            await limiter.aclose()
