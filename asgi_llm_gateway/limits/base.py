"""The `Limiter` contract: what the limits hook asks of a backend, and what a backend answers.

A backend knows nothing of principals, models or prices: the hook (`limits/hook.py`) turns each call and
each applicable `Rule` into a `Demand` on one bucket, and the backend checks and reserves all of a call's
demands at once, all or nothing, then settles them when the call ends. Two backends implement it:
`MemoryLimiter` (one process) and `RedisLimiter` (every replica sharing one Redis); a host may bring its own.

    kind         bucket                                  acquire(amount)            settle(used)
    requests     GCRA: one theoretical arrival time      1 request                  -
    tokens       GCRA weighted by tokens                 input estimate + out bound TAT moved by used-amount
    concurrent   leases, each with an expiry             1 slot                     lease released
    spend        period window: spent, reserved, leases  cost bound, in nano-units  reservation released,
                                                                                    `used` charged

Amounts are integers (money in nano-units of the currency, so sums are exact); times handed back are seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

__all__ = ["BucketState", "Decision", "Demand", "Kind", "Limiter", "LimiterUnavailable", "Period"]

Kind = Literal["requests", "tokens", "concurrent", "spend"]

#: Seconds (a GCRA period, or a custom budget window aligned on multiples of it since the Unix epoch), or a
#: UTC calendar day or month for a budget.
Period = float | Literal["day", "month"]


@dataclass(frozen=True, slots=True)
class Demand:
    """What one call asks of one bucket: `amount` of a `limit` per `period` (None for `concurrent`)."""

    key: str
    kind: Kind
    limit: int
    period: Period | None
    amount: int


@dataclass(frozen=True, slots=True)
class BucketState:
    """One bucket as the admission left it (or found it, when refused).

    `remaining`: what is left for further calls; `reset`: seconds until the bucket is back to its initial
    state (a GCRA bucket full again; a budget's period over; 0 for concurrency); `retry_after`: for a
    refused demand, seconds until it would fit, or None when it never can (it is larger than the limit)."""

    limit: int
    remaining: int
    reset: float
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """All demands reserved (`admitted`) or none; `refused` is the index of the first that did not fit."""

    admitted: bool
    states: tuple[BucketState, ...]
    refused: int | None = None


class LimiterUnavailable(Exception):
    """The backend could not answer in time (Redis down or slow): the hook fails open or closed."""


@runtime_checkable
class Limiter(Protocol):
    """A limits backend. `acquire` must be atomic over all `demands`: no other call's acquire or settle may
    interleave with its check and its reservation. `lease` identifies the call (unique per call)."""

    async def acquire(self, demands: Sequence[Demand], lease: str) -> Decision:
        """Check every demand and, only if all fit, reserve them all."""

    async def settle(self, demands: Sequence[Demand], used: Sequence[int], lease: str) -> None:
        """The call of `lease` is over: `used[i]` is what it really used of `demands[i]` (0 if unknown);
        release what it reserved and charge what it used. `demands` are those of its `acquire` that have
        anything to settle (the hook leaves out `requests`, which have not)."""

    async def aclose(self) -> None:
        """Release the backend's connections (a no-op in memory)."""
