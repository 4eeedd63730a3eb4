"""`SharedHealth`: the circuit breaker's cooldowns shared by every replica through one Redis.

Each gateway keeps a `HealthBook`: consecutive failures per target and, past `Policy.cooldown_after`, a
cooldown during which the target is tried after the healthy ones. Alone, each replica learns of a failing
upstream by failing on it itself; with `Gateway(health=SharedHealth(url))`, a cooldown one replica starts
is seen by all of them, and so is its end when a replica sees the target answer again:

    a replica's attempt fails ─▶ its book cools the target ─▶ request_ended: HSET <prefix>cooldowns
                                                                target = until (wall clock, ms)
    any replica, before it plans a request (at most every `refresh` s):
        HGETALL <prefix>cooldowns ─▶ cool what is cooling, uncool what another replica cleared

Reads and writes stay off the hot path's critical work: the book answers `healthy()` from memory as a
local one does; a refresh is one round trip per `refresh` seconds per replica, and writes happen only when a
cooldown starts or ends. Failure counts stay per replica (sharing them would cost a write per failed call);
only the decision to cool is shared. Cooldown ends are wall-clock times in Redis and monotonic times in
each book, converted at each replica's clock: replicas whose clocks disagree by `d` seconds disagree on a
cooldown's end by `d`. A Redis that is down or slow (`timeout`) costs nothing but the sharing: the book
goes on locally, with a warning at most once a minute.

Off by default; needs the `[redis]` extra.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ._redis import NoBackoff, RedisClient, RedisError, Retry, aioredis
from .pipeline.call import Call
from .pipeline.hooks import Hooks
from .policy import HealthBook, Policy
from .usage import UsageRecord

__all__ = ["SharedHealth"]

logger = logging.getLogger("asgi_llm_gateway")

#: Seconds between two warnings about an unreachable Redis.
_WARN_EVERY = 60.0


class SharedHealth(HealthBook, Hooks):
    """A `HealthBook` whose cooldowns every replica sharing one Redis sees. Pass it as `Gateway(health=...)`;
    it is also a hook (the gateway adds it), which is where it writes what it changed."""

    syncs = True

    def __init__(
        self,
        url: str | None = None,
        *,
        client: aioredis.Redis | None = None,
        prefix: str = "llm-gateway:",
        refresh: float = 1.0,
        timeout: float = 0.25,
    ) -> None:
        HealthBook.__init__(self)
        options: dict[str, Any] = {}
        if client is None:
            options = {
                "socket_timeout": timeout,
                "socket_connect_timeout": timeout,
                "retry": Retry(NoBackoff(), 0),
                "decode_responses": True,
            }
        self._client = RedisClient("SharedHealth", url, client, **options)
        self.key = prefix + "cooldowns"
        self.refresh = refresh
        self._next_refresh = 0.0
        #: Cooldowns started (until, wall clock seconds) or ended (None) here and not written yet.
        self._outbox: dict[str, float | None] = {}
        #: Cooldowns this book holds because another replica started them.
        self._remote: set[str] = set()
        self._next_warning = 0.0

    # -- the book: local first, changes queued for Redis ---------------------------------------------------

    def failed(self, name: str, policy: Policy, now: float) -> None:
        before = self._cooled_until.get(name)
        super().failed(name, policy, now)
        until = self._cooled_until.get(name)
        if until is not None and until != before:
            self._outbox[name] = time.time() + (until - now)
            self._remote.discard(name)

    def succeeded(self, name: str) -> None:
        cooling = name in self._cooled_until
        super().succeeded(name)
        if cooling:
            self._outbox[name] = None
            self._remote.discard(name)

    # -- syncing -------------------------------------------------------------------------------------------

    async def sync(self) -> None:
        """Write what changed here; then, at most every `refresh` seconds, read what every replica knows."""
        if self._outbox:
            await self._flush()
        now = time.monotonic()
        if now < self._next_refresh:
            return
        self._next_refresh = now + self.refresh
        try:
            shared = await self._client.get().hgetall(self.key)
        except (RedisError, OSError) as error:
            self._warn("reading shared cooldowns failed", error)
            return
        self._apply(shared, now, time.time())

    async def request_ended(self, call: Call, record: UsageRecord) -> None:
        if self._outbox:
            await self._flush()

    async def aclose(self) -> None:
        await self._client.aclose()

    def _apply(self, shared: dict[Any, Any], now: float, wall: float) -> None:
        shared = {_text(name): _text(value) for name, value in shared.items()}
        for name, value in shared.items():
            try:
                until = float(value)
            except ValueError:
                continue
            if until > wall and name not in self._outbox:
                self.cool(name, now + (until - wall))
                self._remote.add(name)
        for name in list(self._remote):
            if name not in shared:  # another replica saw it answer again
                self.uncool(name)
                self._remote.discard(name)

    async def _flush(self) -> None:
        changes, self._outbox = self._outbox, {}
        started: dict[Any, Any] = {
            name: f"{until:.3f}" for name, until in changes.items() if until is not None
        }
        ended = [name for name, until in changes.items() if until is None]
        try:
            async with self._client.get().pipeline(transaction=False) as pipe:
                if started:
                    pipe.hset(self.key, mapping=started)
                    longest = max(until for until in changes.values() if until is not None) - time.time()
                    pipe.expire(self.key, max(1, int(longest) + 1), gt=True)
                    pipe.expire(self.key, max(1, int(longest) + 1), nx=True)
                if ended:
                    pipe.hdel(self.key, *ended)
                await pipe.execute()
        except (RedisError, OSError) as error:
            self._warn("writing shared cooldowns failed", error)

    def _warn(self, what: str, error: Exception) -> None:
        now = time.monotonic()
        if now >= self._next_warning:
            self._next_warning = now + _WARN_EVERY
            logger.warning("%s (the breaker goes on locally): %s", what, error)

    def __repr__(self) -> str:
        return f"SharedHealth(key={self.key!r}, refresh={self.refresh})"


def _text(value: Any) -> str:
    """A reply as text (a client the host passed may not decode its replies)."""
    return value.decode() if isinstance(value, bytes) else str(value)
