"""Resilience policy: retries, backoff, timeouts, cooldown and concurrency limits, as data.

A `Policy` says how hard to try; the attempts unit (pipeline/attempts.py) applies it. Policies can be set for
the whole gateway, per provider and per route; the most specific one wins.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .errors import GatewayError

__all__ = ["DEFAULT_POLICY", "Group", "HealthBook", "Policy", "Route", "retry_delay"]

#: Errors that another attempt can never fix, whatever their status says.
_NEVER_RETRY_CODES = frozenset(
    {"upstream_authentication_error", "insufficient_quota", "unsupported_parameter"}
)


@dataclass(frozen=True)
class Policy:
    """How the gateway treats one upstream call.

    Retries: up to `max_attempts` tries per target on 429, 5xx, timeouts and connection errors (never on
    400/401/403/404/413), waiting `backoff` · 2^n seconds with full jitter (at most `max_backoff`), or the
    upstream's `Retry-After` when it sent one (at most `max_retry_after`). The whole call, fallbacks
    included, stops retrying after `budget` seconds. A stream is retried only before its first byte reached
    the client.

    Timeouts (seconds): `total_timeout` for a whole non-streaming call; for streams, `first_token_timeout`
    until the first chunk and `idle_timeout` between chunks. Connect timeouts belong to the provider's
    HTTP client (its `timeout` argument).

    Cooldown: for `cooldown` seconds after failing `cooldown_after` times in a row, a target is tried only
    after every healthy one: last, not never. `max_concurrency` caps in-flight calls per provider; a call
    that waits more than `queue_timeout` for a slot gets 503. `fallback_on` lists extra error codes (e.g.
    `context_length_exceeded`, `content_filter`) that move on to the next target without retrying.
    """

    max_attempts: int = 3
    backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 30.0
    budget: float = 120.0
    total_timeout: float = 600.0
    first_token_timeout: float = 120.0
    idle_timeout: float = 120.0
    cooldown: float = 30.0
    cooldown_after: int = 3
    max_concurrency: int | None = None
    queue_timeout: float = 10.0
    fallback_on: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.max_concurrency is not None and self.max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")

    def should_retry(self, error: GatewayError) -> bool:
        """Whether to try the same target again: as the official SDKs do, the upstream's `x-should-retry`
        decides when it sent one, else the status does."""
        if error.code in _NEVER_RETRY_CODES:
            return False
        if error.retry_hint is not None:
            return error.retry_hint
        return error.retryable

    def should_fall_back(self, error: GatewayError) -> bool:
        """Whether the next target may answer instead: any transient failure (an upstream that asks not to be
        retried may still be replaced), anything worth a retry, or a code listed in `fallback_on`."""
        transient = error.retryable and error.code not in _NEVER_RETRY_CODES
        return (
            transient
            or self.should_retry(error)
            or (error.code is not None and error.code in self.fallback_on)
        )


DEFAULT_POLICY = Policy()


@dataclass(frozen=True)
class Group:
    """Deployments of one model (keys, regions, providers) sharing load by weight.

    `Group({"a/m": 3, "b/m": 1})` sends about three calls in four to `a/m` first.
    """

    weights: Mapping[str, float]

    def __post_init__(self) -> None:
        if not self.weights or any(w <= 0 for w in self.weights.values()):
            raise ValueError("a group needs at least one target, each with a positive weight")


@dataclass(frozen=True)
class Route:
    """A route alias: targets (strings or `Group`s) tried in order, with an optional policy of its own."""

    targets: tuple[str | Group, ...]
    policy: Policy | None = None

    def __init__(self, targets: Iterable[str | Group] | str | Group, policy: Policy | None = None) -> None:
        items = (targets,) if isinstance(targets, (str, Group)) else tuple(targets)
        if not items:
            raise ValueError("a route needs at least one target")
        object.__setattr__(self, "targets", items)
        object.__setattr__(self, "policy", policy)


def weighted_order(weights: Mapping[str, float], rng: random.Random) -> list[str]:
    """All members in a random order where heavier ones tend to come first (sampling without replacement)."""
    return sorted(weights, key=lambda name: rng.random() ** (1.0 / weights[name]), reverse=True)


def retry_delay(policy: Policy, attempt: int, error: GatewayError, rng: random.Random) -> float:
    """Seconds to wait before retry number `attempt` (1-based)."""
    retry_after = parse_retry_after(error.headers.get("retry-after"))
    if retry_after is not None:
        return min(retry_after, policy.max_retry_after)
    return rng.uniform(0, min(policy.max_backoff, policy.backoff * 2 ** (attempt - 1)))


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` as seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


class HealthBook:
    """Consecutive failures and cooldowns per target, for one gateway instance (a circuit breaker).

    Times are `time.monotonic()`. A book whose `syncs` is true (`asgi_llm_gateway.shared_health.SharedHealth`)
    is brought up to date by `await sync()` before each request is planned; this one is only ever local."""

    __slots__ = ("_cooled_until", "_failures")

    #: Whether `sync()` must be awaited before planning (False: no await on the request path).
    syncs = False

    def __init__(self) -> None:
        self._failures: dict[str, int] = {}
        self._cooled_until: dict[str, float] = {}

    async def sync(self) -> None:
        """Bring the book up to date with other replicas (a local book has nothing to do)."""

    def cooling(self) -> dict[str, float]:
        """The targets in cooldown and until when (monotonic seconds; some may have ended already)."""
        return dict(self._cooled_until)

    def cool(self, name: str, until: float) -> None:
        """Put `name` in cooldown until `until` (monotonic), as another replica did."""
        self._cooled_until[name] = until

    def uncool(self, name: str) -> None:
        """End `name`'s cooldown, as another replica saw it answer again."""
        self._cooled_until.pop(name, None)

    def healthy(self, name: str, now: float) -> bool:
        until = self._cooled_until.get(name)
        return until is None or until <= now

    def failed(self, name: str, policy: Policy, now: float) -> None:
        count = self._failures.get(name, 0) + 1
        self._failures[name] = count
        if count >= policy.cooldown_after:
            self._cooled_until[name] = now + policy.cooldown
            self._failures[name] = 0

    def succeeded(self, name: str) -> None:
        self._failures.pop(name, None)
        self._cooled_until.pop(name, None)
