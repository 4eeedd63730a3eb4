"""Limits and budgets that hold across replicas: requests, tokens and concurrency per period, spend per day,
month or custom period, per key, group (team, user, project), model, or key and model.

    module       job
    base         the `Limiter` contract (`Demand`, `Decision`, `BucketState`, `LimiterUnavailable`)
    rules        `Rule`: what can be limited, and which bucket a call falls in
    memory       `MemoryLimiter`: one process, no I/O
    redis        `RedisLimiter`: every replica sharing one Redis (the `[redis]` extra; not imported here)
    hook         `LimitsHook`: reserve at admission, settle with the real usage when the call ends
    headers      OpenAI's x-ratelimit-* and retry-after headers

**Why GCRA for requests and tokens.** The generic cell rate algorithm keeps one number per bucket (the
theoretical arrival time), so a check is O(1) in time and memory and one atomic read-modify-write in Redis;
a sliding-window log keeps every request of the window (O(limit) per key) and a sliding-window counter is
an approximation. It has no fixed-window edge where two windows' quotas meet in one burst: a bucket holds
at most `limit` (the burst) and refills continuously at limit/period, so `x-ratelimit-reset-*` means
exactly what OpenAI's does (the time until the bucket is full again). Like any bucket, one that is emptied
at once and then drained as it refills admits up to 2·limit - 1 within one sliding period; the sustained
rate never exceeds limit/period. Tokens are GCRA weighted by the call's tokens: reserved at admission,
then the arrival time moves by the difference to the real usage.

**Why leases for concurrency and budget reservations.** A replica can crash between admission and
settlement; a counter it incremented would stay up forever. A lease carries an expiry (`lease_ttl`), so a
crashed holder's slot and reservation come back by themselves.

**Atomic, all or nothing.** One admission checks and reserves every applicable rule at once: a call
refused by its team budget takes none of its key's requests. In memory, the check-and-reserve never
awaits; in Redis it is one Lua script over all the call's keys, with Redis's own clock.

A host's own backend implements `Limiter` (three async methods); see `base.py` for the contract.
"""

from .base import BucketState, Decision, Demand, Kind, Limiter, LimiterUnavailable, Period
from .headers import format_reset, rate_limit_headers
from .hook import (
    DEFAULT_MAX_OUTPUT_TOKENS,
    Admission,
    LimitsHook,
    admission_of,
    input_estimate,
    limit_headers,
)
from .memory import MemoryLimiter
from .rules import Rule

__all__ = [
    "DEFAULT_MAX_OUTPUT_TOKENS",
    "Admission",
    "BucketState",
    "Decision",
    "Demand",
    "Kind",
    "Limiter",
    "LimiterUnavailable",
    "LimitsHook",
    "MemoryLimiter",
    "Period",
    "Rule",
    "admission_of",
    "format_reset",
    "input_estimate",
    "limit_headers",
    "rate_limit_headers",
]
