"""`RedisLimiter`: limits that every replica sharing one Redis enforces together.

Needs the `[redis]` extra (the official `redis` package, its asyncio client). One admission is ONE Lua
script over every key of the call's demands (EVALSHA; on NOSCRIPT, from a restarted or failed-over Redis,
redis-py's `register_script` loads it again and retries): it checks all, and reserves all only when all
fit, so concurrent calls on any number of replicas can never both take the last unit. Settling is one more
script. Round trips per call: 2 (1 when only requests are limited: they have nothing to settle).

Time is Redis's own (`TIME`, in µs, inside the script), so replicas whose clocks disagree still agree on
every bucket; tests pass their clock in instead (`clock=`).

Keys, under `prefix` (with `hash_tag`, every key carries `{tag}`, so that Redis Cluster puts all limit
state in one slot, which a multi-key script needs):

    kind         key                         value
    requests,    <prefix><bucket>            the theoretical arrival time (µs, a string), expiring once
    tokens                                   the bucket is full again
    concurrent   <prefix><bucket>            a sorted set: lease → expiry (µs)
    spend        <prefix><bucket>            a hash: w (window number), spent, reserved (nano-units)
                 <prefix><bucket>:leases     a sorted set: "<lease>:<amount>" → expiry (µs)

Redis down, slow or answering an error: every operation is bounded by `timeout` seconds (connect included,
no retries), after which it raises `LimiterUnavailable` (the hook then fails open or closed). Set it above
the p99 of a check under your load (bench/limits.py measures it): a timeout that fires under load admits
unchecked (or refuses) exactly when limits matter. The default, 0.25 s, is about 5 times the p99 of a whole
call's admission and settlement (two operations) at 64 concurrent calls on a shared 2-core machine
(bench/limits.py: 35-45 ms; 1 ms with one call at a time), and still a small part of a model call. A client
passed in is the host's: used, never closed; its own timeouts and retries apply within ours.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import anyio

from .._redis import AsyncScript, NoBackoff, RedisClient, RedisError, Retry, aioredis
from .base import BucketState, Decision, Demand, LimiterUnavailable

__all__ = ["RedisLimiter"]

DEFAULT_PREFIX = "asgi-llm-gateway:limits:"
#: Seconds an operation may take before Redis counts as unavailable (see the module docstring).
DEFAULT_TIMEOUT = 0.25

#: What both scripts share: the time, number formatting, and budget windows (UTC days and months by
#: Howard Hinnant's days-from-civil algorithms; custom windows count from the Unix epoch).
_PRELUDE = """
local now
if ARGV[1] == '' then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
    now = tonumber(ARGV[1])
end
local spec = {}
for word in string.gmatch(ARGV[4], '%S+') do spec[#spec + 1] = word end
local function fmt(x) return string.format('%.3f', x) end
local function int(x) return string.format('%.0f', x) end
local DAY = 86400000000
local function days_from_civil(y, m, d)
    if m <= 2 then y = y - 1 end
    local era = math.floor(y / 400)
    local yoe = y - era * 400
    local doy = math.floor((153 * ((m + 9) % 12) + 2) / 5) + d - 1
    return era * 146097 + yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy - 719468
end
local function civil_from_days(z)
    z = z + 719468
    local era = math.floor(z / 146097)
    local doe = z - era * 146097
    local yoe = doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)
    yoe = math.floor(yoe / 365)
    local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
    local mp = math.floor((5 * doy + 2) / 153)
    local m = mp < 10 and mp + 3 or mp - 9
    local y = yoe + era * 400
    if m <= 2 then y = y + 1 end
    return y, m
end
local function window(period)
    if period == 'day' then
        local n = math.floor(now / DAY)
        return n, (n + 1) * DAY
    elseif period == 'month' then
        local y, m = civil_from_days(math.floor(now / DAY))
        local ny, nm = y, m + 1
        if nm > 12 then ny, nm = y + 1, 1 end
        return y * 12 + m - 1, days_from_civil(ny, nm, 1) * DAY
    end
    local seconds = tonumber(period)
    local n = math.floor(now / seconds)
    return n, (n + 1) * seconds
end
-- a budget in the window holding now: expired reservations dropped, spent zeroed in a new window; the
-- last value says whether that changed anything
local function budget(key, leases, period)
    local n, finish = window(period)
    local state = redis.call('HMGET', key, 'w', 'spent', 'reserved')
    local spent, reserved = tonumber(state[2] or '0'), tonumber(state[3] or '0')
    local changed = state[1] ~= int(n)
    if changed then spent = 0 end
    local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now)
    for _, member in ipairs(expired) do
        reserved = reserved - tonumber(string.match(member, ':(%d+)$'))
    end
    if #expired > 0 then
        redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
        changed = true
    end
    return n, finish, spent, reserved, changed
end
local function keep_budget(key, leases, n, spent, reserved, finish, ttl)
    redis.call('HSET', key, 'w', int(n), 'spent', int(spent), 'reserved', int(reserved))
    local ms = math.ceil((finish - now + ttl) / 1000) + 1000
    redis.call('PEXPIRE', key, ms)
    if redis.call('EXISTS', leases) == 1 then redis.call('PEXPIRE', leases, ms) end
end
local function keep_tat(key, tat)
    if tat > now then
        redis.call('SET', key, fmt(tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
    else
        redis.call('DEL', key)
    end
end
"""

#: KEYS: each demand's bucket, then the lease set of each budget among them. ARGV: now (µs, '' for Redis
#: TIME), the lease, the lease TTL (µs), and the demands as one string of words (few arguments to encode:
#: they are most of the client's cost), four per demand: kind, limit, period (µs, 'day', 'month', or '-'),
#: amount. Answers {admitted, index of the first refusal (0: none), then per demand remaining, reset µs,
#: retry µs (-1: fits, -2: never fits)}.
_ACQUIRE = (
    _PRELUDE
    + """
local lease, ttl = ARGV[2], tonumber(ARGV[3])
local count = #spec / 4
local out, plans, auxes, refused, budgets = {1, 0}, {}, {}, 0, 0
for i = 1, count do
    local a = (i - 1) * 4
    local kind, limit, period, amount = spec[a + 1], tonumber(spec[a + 2]), spec[a + 3], tonumber(spec[a + 4])
    local key = KEYS[i]
    local remaining, reset, retry = 0, 0, -1
    if kind == 'requests' or kind == 'tokens' then
        local p = tonumber(period)
        local step = p / limit
        local tat = math.max(tonumber(redis.call('GET', key) or '0'), now)
        local after = tat + amount * step
        if after - now <= p + 1 then
            remaining, reset, plans[i] = math.floor((now + p - after + 1) / step), after - now, after
        else
            remaining, reset = math.floor((now + p - tat + 1) / step), tat - now
            retry = amount > limit and -2 or after - now - p
        end
    elseif kind == 'concurrent' then
        redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
        local held = redis.call('ZCARD', key)
        if held + amount <= limit then
            remaining, plans[i] = limit - held - amount, true
        else
            remaining = math.max(0, limit - held)
            local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
            retry = amount > limit and -2 or math.min(1000000, tonumber(first[2]) - now)
        end
    else
        budgets = budgets + 1
        local aux = KEYS[count + budgets]
        auxes[i] = aux
        local n, finish, spent, reserved, changed = budget(key, aux, period)
        if changed then keep_budget(key, aux, n, spent, reserved, finish, ttl) end
        local left = limit - spent - reserved
        reset = finish - now
        if amount <= left then
            remaining, plans[i] = left - amount, {n, finish, spent, reserved}
        else
            remaining = math.max(0, left)
            retry = amount > limit and -2 or finish - now
        end
    end
    if retry ~= -1 and refused == 0 then refused = i end
    out[#out + 1], out[#out + 2], out[#out + 3] = remaining, math.ceil(reset), math.ceil(retry)
end
if refused > 0 then
    out[1], out[2] = 0, refused
    return out
end
for i = 1, count do
    local kind, amount, key, aux = spec[(i - 1) * 4 + 1], tonumber(spec[(i - 1) * 4 + 4]), KEYS[i], auxes[i]
    if kind == 'requests' or kind == 'tokens' then
        keep_tat(key, plans[i])
    elseif kind == 'concurrent' then
        redis.call('ZADD', key, fmt(now + ttl), lease)
        redis.call('PEXPIRE', key, math.ceil(ttl / 1000) + 1000)
    else
        local b = plans[i]
        redis.call('ZADD', aux, fmt(now + ttl), lease .. ':' .. int(amount))
        keep_budget(key, aux, b[1], b[3], b[4] + amount, b[2], ttl)
    end
end
return out
"""
)

#: KEYS and ARGV as for _ACQUIRE, with five words per demand: kind, limit, period, amount reserved, amount
#: used.
_SETTLE = (
    _PRELUDE
    + """
local lease, ttl = ARGV[2], tonumber(ARGV[3])
local count, budgets = #spec / 5, 0
for i = 1, count do
    local a = (i - 1) * 5
    local kind, limit, period = spec[a + 1], tonumber(spec[a + 2]), spec[a + 3]
    local reserved, used = tonumber(spec[a + 4]), tonumber(spec[a + 5])
    local key = KEYS[i]
    if kind == 'tokens' then
        local step = tonumber(period) / limit
        local tat = tonumber(redis.call('GET', key) or '0')
        if used > reserved then
            keep_tat(key, math.max(tat, now) + (used - reserved) * step)
        elseif used < reserved and tat > now then
            keep_tat(key, tat - (reserved - used) * step)
        end
    elseif kind == 'concurrent' then
        redis.call('ZREM', key, lease)
    elseif kind == 'spend' then
        budgets = budgets + 1
        local aux = KEYS[count + budgets]
        local n, finish, spent, total = budget(key, aux, period)
        if redis.call('ZREM', aux, lease .. ':' .. int(reserved)) == 1 then total = total - reserved end
        keep_budget(key, aux, n, spent + used, total, finish, ttl)
    end
end
return 1
"""
)


def _period(demand: Demand) -> str:
    """A demand's period as the scripts read it: µs, 'day', 'month', or '-' for none."""
    period = demand.period
    if period is None or isinstance(period, str):
        return period or "-"
    return repr(period * 1_000_000)


class RedisLimiter:
    """Limits in Redis, shared by every replica using the same Redis and `prefix`. Give `url`
    (`redis://…`, `rediss://…`, `unix://…`; default `REDIS_URL`, else `redis://localhost:6379/0`) or a
    `redis.asyncio.Redis` `client`, not both. `timeout` bounds each operation (seconds); `lease_ttl` how
    long a concurrency slot or a budget reservation outlives a call that never settled (a crashed
    replica's); `clock` (Unix seconds) replaces Redis's `TIME`, for tests."""

    def __init__(
        self,
        url: str | None = None,
        *,
        client: aioredis.Redis | None = None,
        prefix: str = DEFAULT_PREFIX,
        hash_tag: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        lease_ttl: float = 900.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not timeout > 0 or not lease_ttl > 0:
            raise ValueError("timeout and lease_ttl must be positive numbers of seconds")
        self._redis = RedisClient(
            "RedisLimiter",
            url,
            client,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self.url = self._redis.url
        self.prefix = prefix if hash_tag is None else f"{prefix}{{{hash_tag}}}:"
        self.timeout = timeout
        self.lease_ttl = lease_ttl
        self.clock = clock
        self._scripts: tuple[aioredis.Redis, tuple[AsyncScript, AsyncScript]] | None = None

    @property
    def client(self) -> aioredis.Redis:
        """The Redis client: the one given, or one of ours created on first use."""
        return self._redis.get()

    def _keys(self, demands: Sequence[Demand]) -> list[str]:
        """Each demand's bucket, then the lease set of each budget among them."""
        keys = [self.prefix + demand.key for demand in demands]
        return keys + [self.prefix + demand.key + ":leases" for demand in demands if demand.kind == "spend"]

    def _args(self, lease: str, words: Iterable[object]) -> list[str]:
        now = "" if self.clock is None else repr(self.clock() * 1_000_000)
        return [now, lease, repr(self.lease_ttl * 1_000_000), " ".join(map(str, words))]

    async def _run(self, which: int, keys: list[str], args: list[Any]) -> Any:
        client = self.client
        if self._scripts is None or self._scripts[0] is not client:
            self._scripts = (client, (client.register_script(_ACQUIRE), client.register_script(_SETTLE)))
        try:
            with anyio.fail_after(self.timeout):
                return await self._scripts[1][which](keys=keys, args=args)
        except (RedisError, OSError, TimeoutError) as error:
            raise LimiterUnavailable(f"Redis did not answer: {error!r}") from error

    async def acquire(self, demands: Sequence[Demand], lease: str) -> Decision:
        words = (word for d in demands for word in (d.kind, d.limit, _period(d), d.amount))
        answer = await self._run(0, self._keys(demands), self._args(lease, words))
        states = []
        for index, demand in enumerate(demands):
            remaining, reset, retry = (int(value) for value in answer[2 + 3 * index : 5 + 3 * index])
            retry_after = None if retry == -2 else (retry / 1e6 if retry >= 0 else None)
            states.append(BucketState(demand.limit, remaining, reset / 1e6, retry_after))
        refused = int(answer[1])
        return Decision(bool(int(answer[0])), tuple(states), refused - 1 if refused else None)

    async def settle(self, demands: Sequence[Demand], used: Sequence[int], lease: str) -> None:
        pairs = zip(demands, used, strict=True)
        words = (word for d, amount in pairs for word in (d.kind, d.limit, _period(d), d.amount, amount))
        await self._run(1, self._keys(demands), self._args(lease, words))

    async def aclose(self) -> None:
        """Close our client and its connection pool (a client passed in is left open)."""
        await self._redis.aclose()

    def __repr__(self) -> str:
        return f"RedisLimiter(prefix={self.prefix!r}, timeout={self.timeout})"
