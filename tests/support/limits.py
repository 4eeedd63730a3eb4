"""What the limits tests share: a clock to set by hand, the PID of a redis-server a test started (to stop,
freeze or kill it), and an admission loop another OS process runs against a shared Redis.

Run as a program (`python -m tests.support.limits <url> <prefix> <limit> <calls>`), it makes `calls`
concurrent admissions against one requests bucket of `limit` per hour on a `RedisLimiter` (Redis's own
clock) and prints how many were admitted.
"""

from __future__ import annotations

import sys

import anyio

__all__ = ["Clock", "admit_many", "redis_pid"]


class Clock:
    """Unix time that moves only when told: `clock.now += 60`."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def redis_pid(url: str) -> int:
    """The process id of the redis-server at `url` (what it says in INFO)."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        info = await client.info("server")
    finally:
        await client.aclose()
    return int(info["process_id"])


async def admit_many(url: str, prefix: str, limit: int, calls: int) -> int:
    """`calls` concurrent admissions of one request against `limit` per hour; how many got in."""
    from asgi_llm_gateway.limits import Demand
    from asgi_llm_gateway.limits.redis import RedisLimiter

    limiter = RedisLimiter(url, prefix=prefix, timeout=5)
    demand = Demand("shared", "requests", limit, 3600.0, 1)
    admitted = 0

    async def one(index: int) -> None:
        nonlocal admitted
        decision = await limiter.acquire([demand], f"{prefix}{index}")
        admitted += decision.admitted

    try:
        async with anyio.create_task_group() as group:
            for index in range(calls):
                group.start_soon(one, index)
    finally:
        await limiter.aclose()
    return admitted


if __name__ == "__main__":
    url, prefix, limit, calls = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    print(anyio.run(admit_many, url, prefix, limit, calls))
