"""Unit tests for `asgi_llm_gateway/policy.py`: Policy, Group, Route, backoff, Retry-After and cooldown.

How the gateway applies a policy over real calls is in tests/e2e/test_resilience.py; the order of targets
(weighted groups, cooled targets last) in tests/test_routing.py.
"""

from __future__ import annotations

import dataclasses
import email.utils
import random
import time
from collections import Counter

import pytest

from asgi_llm_gateway.errors import GatewayError
from asgi_llm_gateway.policy import (
    DEFAULT_POLICY,
    Group,
    HealthBook,
    Policy,
    Route,
    parse_retry_after,
    retry_delay,
    weighted_order,
)


def error(
    status: int, code: str | None = None, *, retry_after: str | None = None, hint: bool | None = None
) -> GatewayError:
    headers = {"retry-after": retry_after} if retry_after is not None else None
    return GatewayError("upstream failed", status=status, code=code, headers=headers, retry_hint=hint)


class TopOfRange(random.Random):
    """An rng whose `uniform(a, b)` records its range and returns `b`: the jitter's upper bound."""

    def __init__(self) -> None:
        super().__init__(0)
        self.ranges: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.ranges.append((a, b))
        return b


# -- Policy: validation ----------------------------------------------------------------------------------


def test_the_default_policy_is_a_policy_with_the_documented_defaults() -> None:
    assert Policy() == DEFAULT_POLICY
    assert (DEFAULT_POLICY.max_attempts, DEFAULT_POLICY.backoff, DEFAULT_POLICY.max_backoff) == (3, 0.5, 8.0)
    assert DEFAULT_POLICY.max_concurrency is None
    assert DEFAULT_POLICY.fallback_on == frozenset()


@pytest.mark.parametrize("max_attempts", [0, -1])
def test_fewer_than_one_attempt_is_refused(max_attempts: int) -> None:
    with pytest.raises(ValueError, match="max_attempts must be at least 1"):
        Policy(max_attempts=max_attempts)


@pytest.mark.parametrize("max_concurrency", [0, -3])
def test_a_concurrency_cap_below_one_is_refused(max_concurrency: int) -> None:
    with pytest.raises(ValueError, match="max_concurrency must be at least 1"):
        Policy(max_concurrency=max_concurrency)


def test_the_smallest_valid_values_are_accepted() -> None:
    policy = Policy(max_attempts=1, max_concurrency=1)
    assert (policy.max_attempts, policy.max_concurrency) == (1, 1)


def test_a_policy_is_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_POLICY.max_attempts = 5  # type: ignore[misc]


# -- Policy: what is retried, what falls back ------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_rate_limits_upstream_failures_and_timeouts_are_retried_and_fall_back(status: int) -> None:
    assert Policy().should_retry(error(status))
    assert Policy().should_fall_back(error(status))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413])
def test_client_errors_are_neither_retried_nor_sent_elsewhere(status: int) -> None:
    assert not Policy().should_retry(error(status))
    assert not Policy().should_fall_back(error(status))


@pytest.mark.parametrize(
    "code", ["upstream_authentication_error", "insufficient_quota", "unsupported_parameter"]
)
@pytest.mark.parametrize("status", [429, 502, 503])
def test_errors_no_attempt_can_fix_are_never_retried_whatever_their_status(code: str, status: int) -> None:
    assert not Policy().should_retry(error(status, code))
    assert not Policy().should_retry(error(status, code, hint=True)), "x-should-retry cannot override it"
    assert not Policy().should_fall_back(error(status, code))


def test_x_should_retry_false_stops_retries_but_not_the_fallback() -> None:
    unavailable = error(503, hint=False)
    assert not Policy().should_retry(unavailable)
    assert Policy().should_fall_back(unavailable)


def test_x_should_retry_true_retries_what_the_status_alone_would_not() -> None:
    conflict = error(409, hint=True)
    assert not Policy().should_retry(error(409))
    assert Policy().should_retry(conflict)
    assert Policy().should_fall_back(conflict)


def test_fallback_on_moves_listed_codes_to_the_next_target_without_retrying() -> None:
    too_long = error(400, "context_length_exceeded")
    policy = Policy(fallback_on=frozenset({"context_length_exceeded", "insufficient_quota"}))
    assert not Policy().should_fall_back(too_long)
    assert policy.should_fall_back(too_long)
    assert not policy.should_retry(too_long)
    assert policy.should_fall_back(error(429, "insufficient_quota")), "listed: another key may have quota"
    assert not policy.should_fall_back(error(400, "content_filter"))
    assert not policy.should_fall_back(error(400))


# -- Group and Route -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "weights", [{}, {"a/m": 0}, {"a/m": 1, "b/m": -1}], ids=["empty", "zero-weight", "negative-weight"]
)
def test_a_group_needs_targets_with_positive_weights(weights: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="positive weight"):
        Group(weights)


def test_a_group_keeps_its_weights() -> None:
    assert Group({"a/m": 3, "b/m": 0.5}).weights == {"a/m": 3, "b/m": 0.5}


def test_a_route_takes_one_target_a_group_or_any_iterable_of_them() -> None:
    group = Group({"a/m": 1, "b/m": 1})
    assert Route("a/m").targets == ("a/m",)
    assert Route(group).targets == (group,)
    assert Route(["a/m", group, "c/m"]).targets == ("a/m", group, "c/m")
    assert Route(name for name in ("a/m", "b/m")).targets == ("a/m", "b/m")
    assert Route("a/m") == Route(["a/m"])


def test_a_route_keeps_its_own_policy() -> None:
    policy = Policy(max_attempts=1)
    assert Route("a/m").policy is None
    assert Route(["a/m"], policy).policy is policy


@pytest.mark.parametrize("targets", [[], ()])
def test_a_route_needs_a_target(targets: list[str]) -> None:
    with pytest.raises(ValueError, match="at least one target"):
        Route(targets)


def test_a_route_is_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Route("a/m").policy = Policy()  # type: ignore[misc]


# -- weighted order --------------------------------------------------------------------------------------


def test_weighted_order_is_always_every_member_once() -> None:
    rng = random.Random(1)
    weights = {"a/m": 5, "b/m": 1, "c/m": 0.1}
    for _ in range(50):
        assert sorted(weighted_order(weights, rng)) == ["a/m", "b/m", "c/m"]


def test_a_member_comes_first_in_proportion_to_its_weight() -> None:
    """`Group({"a/m": 3, "b/m": 1})` sends about three calls in four to `a/m` first."""
    rng = random.Random(7)
    firsts = Counter(weighted_order({"a/m": 3, "b/m": 1}, rng)[0] for _ in range(8000))
    assert 0.72 < firsts["a/m"] / 8000 < 0.78
    firsts = Counter(weighted_order({"a/m": 1, "b/m": 1, "c/m": 2}, rng)[0] for _ in range(8000))
    assert 0.47 < firsts["c/m"] / 8000 < 0.53
    assert 0.22 < firsts["a/m"] / 8000 < 0.28


def test_weighted_order_depends_only_on_the_rng() -> None:
    weights = {"a/m": 1, "b/m": 2, "c/m": 3}
    first = [weighted_order(weights, random.Random(3)) for _ in range(3)]
    assert first[0] == first[1] == first[2]


# -- backoff and Retry-After -----------------------------------------------------------------------------


@pytest.mark.parametrize(("attempt", "ceiling"), [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (9, 8.0)])
def test_backoff_doubles_with_full_jitter_up_to_max_backoff(attempt: int, ceiling: float) -> None:
    rng = TopOfRange()
    assert retry_delay(Policy(), attempt, error(503), rng) == ceiling
    assert rng.ranges == [(0, ceiling)], "full jitter: anywhere from zero to the ceiling"


def test_backoff_follows_the_policy() -> None:
    rng = TopOfRange()
    policy = Policy(backoff=0.1, max_backoff=0.3)
    assert [retry_delay(policy, n, error(429), rng) for n in (1, 2, 3)] == [0.1, 0.2, 0.3]


def test_backoff_draws_stay_inside_the_range() -> None:
    rng = random.Random(0)
    delays = [retry_delay(Policy(), 3, error(502), rng) for _ in range(200)]
    assert all(0 <= delay <= 2.0 for delay in delays)
    assert len(set(delays)) > 100, "jittered, not a fixed wait"


@pytest.mark.parametrize(("header", "delay"), [("2", 2.0), ("0.25", 0.25), ("0", 0.0), ("-5", 0.0)])
def test_retry_after_in_seconds_is_waited_exactly_without_jitter(header: str, delay: float) -> None:
    rng = TopOfRange()
    assert retry_delay(Policy(), 1, error(429, retry_after=header), rng) == delay
    assert rng.ranges == []


def test_retry_after_is_capped_at_max_retry_after() -> None:
    assert retry_delay(Policy(), 1, error(429, retry_after="3600"), TopOfRange()) == 30.0
    assert retry_delay(Policy(max_retry_after=5), 1, error(429, retry_after="6"), TopOfRange()) == 5


def test_retry_after_as_an_http_date() -> None:
    soon = email.utils.formatdate(time.time() + 10, usegmt=True)
    delay = retry_delay(Policy(), 1, error(503, retry_after=soon), TopOfRange())
    assert 8.0 <= delay <= 10.0
    past = email.utils.formatdate(time.time() - 60, usegmt=True)
    assert retry_delay(Policy(), 1, error(503, retry_after=past), TopOfRange()) == 0.0


@pytest.mark.parametrize("header", ["", "soon", "1 minute"])
def test_an_unreadable_retry_after_falls_back_to_backoff(header: str) -> None:
    rng = TopOfRange()
    assert retry_delay(Policy(), 2, error(429, retry_after=header), rng) == 1.0
    assert rng.ranges == [(0, 1.0)]


def test_parse_retry_after() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("garbage") is None
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Mon, 01 Jan 2001 00:00:00 GMT") == 0.0


# -- cooldown --------------------------------------------------------------------------------------------


def test_a_target_cools_down_after_cooldown_after_failures_in_a_row() -> None:
    policy = Policy(cooldown_after=3, cooldown=30)
    health = HealthBook()
    assert health.healthy("a/m", 100.0)
    health.failed("a/m", policy, 100.0)
    health.failed("a/m", policy, 101.0)
    assert health.healthy("a/m", 101.0)
    health.failed("a/m", policy, 102.0)
    assert not health.healthy("a/m", 102.0)
    assert not health.healthy("a/m", 131.9)
    assert health.healthy("a/m", 132.0), "cooled for exactly `cooldown` seconds"
    assert health.healthy("b/m", 102.0), "other targets are unaffected"


def test_a_success_clears_the_failure_count_and_ends_a_cooldown() -> None:
    policy = Policy(cooldown_after=2, cooldown=30)
    health = HealthBook()
    health.failed("a/m", policy, 0.0)
    health.succeeded("a/m")
    health.failed("a/m", policy, 1.0)
    assert health.healthy("a/m", 1.0), "failures must be in a row"
    health.failed("a/m", policy, 2.0)
    assert not health.healthy("a/m", 2.0)
    health.succeeded("a/m")
    assert health.healthy("a/m", 3.0)


def test_after_a_cooldown_the_count_starts_again() -> None:
    policy = Policy(cooldown_after=2, cooldown=10)
    health = HealthBook()
    health.failed("a/m", policy, 0.0)
    health.failed("a/m", policy, 0.0)
    assert not health.healthy("a/m", 5.0)
    health.failed("a/m", policy, 10.0)
    assert health.healthy("a/m", 10.0), "one failure after a cooldown is not yet another cooldown"
    health.failed("a/m", policy, 11.0)
    assert not health.healthy("a/m", 11.0)
    assert health.healthy("a/m", 21.0)


def test_the_failing_calls_policy_sets_the_threshold_and_the_length() -> None:
    health = HealthBook()
    health.failed("a/m", Policy(cooldown_after=1, cooldown=60), 0.0)
    assert not health.healthy("a/m", 59.0)
    assert health.healthy("a/m", 60.0)
