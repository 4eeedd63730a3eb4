"""`MemoryLimiter`: the limits of one process, exact, with no I/O.

Atomic by construction: `acquire` and `settle` never await, so on one event loop no other call's check or
reservation can run between this call's check and its reservation. Each replica counts alone: with N
replicas the real limit is N times the configured one (use `RedisLimiter` for shared limits).

State per bucket (see `limits/base.py` for the kinds): a float, the theoretical arrival time (GCRA); a
dict lease → expiry (concurrency); or a budget's window number, spent and reserved amounts and its leases.
Buckets with nothing left to remember (a GCRA bucket that is full again, a budget window that is over with
no lease in it) are swept every few thousand operations, so memory follows the active keys.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .base import BucketState, Decision, Demand, Period
from .rules import window

__all__ = ["MemoryLimiter"]

#: Slack for float rounding in GCRA arithmetic: one µs (Unix time in a double is exact to about 0.2 µs).
#: A burst of exactly `limit` must fit, and a unit due within a µs counts as there.
_EPSILON = 1e-6
#: Operations between two sweeps of the buckets that hold nothing.
_SWEEP_EVERY = 4096


@dataclass(slots=True)
class _Budget:
    period: Period
    window: int
    spent: int = 0
    reserved: int = 0
    #: lease → (expiry, amount reserved)
    leases: dict[str, tuple[float, int]] = field(default_factory=dict)

    def expire(self, now: float) -> None:
        """Drop the reservations of leases that expired (their holder crashed or forgot)."""
        for lease, (expiry, amount) in list(self.leases.items()):
            if expiry <= now:
                del self.leases[lease]
                self.reserved -= amount


class MemoryLimiter:
    """Limits in this process's memory. `lease_ttl` (seconds) bounds how long a concurrency slot or a
    budget reservation outlives a call that never settled; `clock` gives Unix time (tests inject one)."""

    def __init__(self, *, lease_ttl: float = 900.0, clock: Callable[[], float] = time.time) -> None:
        if not lease_ttl > 0:
            raise ValueError("lease_ttl must be a positive number of seconds")
        self.lease_ttl = lease_ttl
        self.clock = clock
        self._tat: dict[str, float] = {}
        self._held: dict[str, dict[str, float]] = {}
        self._budgets: dict[str, _Budget] = {}
        self._operations = 0

    async def acquire(self, demands: Sequence[Demand], lease: str) -> Decision:
        now = self.clock()
        self._maybe_sweep(now)
        # No await from here on: the check and the reservation of every demand happen as one step.
        checked = [self._check(demand, now) for demand in demands]
        states = tuple(state for state, _ in checked)
        for index, (_, fits) in enumerate(checked):
            if not fits:
                return Decision(False, states, index)
        for demand in demands:
            self._reserve(demand, lease, now)
        return Decision(True, states)

    def _check(self, demand: Demand, now: float) -> tuple[BucketState, bool]:
        limit, amount = demand.limit, demand.amount
        if demand.kind in ("requests", "tokens"):
            period = _seconds(demand)
            step = period / limit
            tat = max(self._tat.get(demand.key, now), now)
            after = tat + amount * step
            if after - now <= period + _EPSILON:
                return BucketState(limit, _units(now + period - after, step), after - now), True
            retry = None if amount > limit else after - now - period
            return BucketState(limit, _units(now + period - tat, step), tat - now, retry), False
        if demand.kind == "concurrent":
            held = self._held.get(demand.key, {})
            live = [expiry for expiry in held.values() if expiry > now]
            if len(live) + amount <= limit:
                return BucketState(limit, limit - len(live) - amount, 0.0), True
            retry = None if amount > limit else min(1.0, min(live) - now)
            return BucketState(limit, max(0, limit - len(live)), 0.0, retry), False
        budget, end = self._budget(demand, now)
        left = limit - budget.spent - budget.reserved
        if amount <= left:
            return BucketState(limit, left - amount, end - now), True
        return BucketState(limit, max(0, left), end - now, None if amount > limit else end - now), False

    def _budget(self, demand: Demand, now: float) -> tuple[_Budget, float]:
        """The budget of `demand` in the window holding `now` and that window's end, its expired
        reservations dropped; a new window starts with nothing spent but keeps the reservations still in
        flight (a call is charged to the window it ends in)."""
        assert demand.period is not None
        number, end = window(demand.period, now)
        budget = self._budgets.get(demand.key)
        if budget is None:
            budget = self._budgets[demand.key] = _Budget(demand.period, number)
        elif budget.window != number:
            budget.window, budget.spent = number, 0
        budget.expire(now)
        return budget, end

    def _reserve(self, demand: Demand, lease: str, now: float) -> None:
        if demand.kind in ("requests", "tokens"):
            step = _seconds(demand) / demand.limit
            self._tat[demand.key] = max(self._tat.get(demand.key, now), now) + demand.amount * step
        elif demand.kind == "concurrent":
            self._held.setdefault(demand.key, {})[lease] = now + self.lease_ttl
        else:
            budget = self._budgets[demand.key]  # _check made it
            budget.reserved += demand.amount
            budget.leases[lease] = (now + self.lease_ttl, demand.amount)

    async def settle(self, demands: Sequence[Demand], used: Sequence[int], lease: str) -> None:
        now = self.clock()
        for demand, amount in zip(demands, used, strict=True):
            if demand.kind == "tokens":
                self._move(demand, amount - demand.amount, now)
            elif demand.kind == "concurrent":
                self._held.get(demand.key, {}).pop(lease, None)
            elif demand.kind == "spend":
                budget, _ = self._budget(demand, now)
                held = budget.leases.pop(lease, None)
                if held is not None:
                    budget.reserved -= held[1]
                budget.spent += amount

    def _move(self, demand: Demand, difference: int, now: float) -> None:
        """Settle a token reservation: charge what was used beyond it now, or give back what was not."""
        step = _seconds(demand) / demand.limit
        tat = self._tat.get(demand.key, now)
        if difference > 0:
            self._tat[demand.key] = max(tat, now) + difference * step
        elif difference < 0 and tat > now:
            self._tat[demand.key] = tat + difference * step

    def _maybe_sweep(self, now: float) -> None:
        self._operations += 1
        if self._operations % _SWEEP_EVERY:
            return
        self._tat = {key: tat for key, tat in self._tat.items() if tat > now}
        self._held = {key: held for key, held in self._held.items() if any(e > now for e in held.values())}
        for key, budget in list(self._budgets.items()):
            budget.expire(now)
            if not budget.leases and window(budget.period, now)[0] != budget.window:
                del self._budgets[key]

    async def aclose(self) -> None:
        """Nothing to release; forgets nothing either (the limits hold across a gateway's restarts only
        in Redis)."""

    def __repr__(self) -> str:
        return f"MemoryLimiter(lease_ttl={self.lease_ttl})"


def _seconds(demand: Demand) -> float:
    """A GCRA bucket's period in seconds."""
    assert isinstance(demand.period, int | float), demand
    return float(demand.period)


def _units(span: float, step: float) -> int:
    """The whole units of `step` seconds in `span`, forgiving float rounding (see `_EPSILON`)."""
    return max(0, math.floor((span + _EPSILON) / step))
