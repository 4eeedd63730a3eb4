"""What the Redis-backed parts (`state.redis`, `limits.redis`) share: the optional import of the `[redis]`
extra (every name they use from it is imported here, so that a missing package says what to install),
where the URL comes from, and a client created on first use and closed only if it is ours.

    given          client                                   closed by aclose()
    url            ours, from the URL, on first use         yes (a later use opens a new one)
    client         the host's, used as is                   no
    neither        ours, from REDIS_URL, else DEFAULT_URL   yes
"""

from __future__ import annotations

import os
from typing import Any

try:
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.commands.core import AsyncScript
    from redis.exceptions import RedisError
except ImportError as error:  # pragma: no cover - exercised in a subprocess without redis
    message = "the Redis store and limiter need the `redis` package: pip install 'asgi-llm-gateway[redis]'"
    raise ImportError(message) from error

__all__ = ["DEFAULT_URL", "AsyncScript", "NoBackoff", "RedisClient", "RedisError", "Retry", "aioredis"]

DEFAULT_URL = "redis://localhost:6379/0"


class RedisClient:
    """A Redis client for `owner` (its name, for errors): the one given, or one made from `url` with
    `options` (redis-py's `from_url` keywords; the URL's query may set more)."""

    def __init__(self, owner: str, url: str | None, client: aioredis.Redis | None, **options: Any) -> None:
        if url is not None and client is not None:
            raise ValueError(f"give {owner} a url or a client, not both")
        self.url = url if url is not None or client is not None else os.environ.get("REDIS_URL", DEFAULT_URL)
        self.options = options
        self._client = client
        self._owned = client is None

    def get(self) -> aioredis.Redis:
        """The client: the one given, or ours, created now if there is none."""
        if self._client is None:
            assert self.url is not None
            self._client = aioredis.Redis.from_url(self.url, **self.options)
        return self._client

    async def aclose(self) -> None:
        """Close our client and its connection pool (a client passed in is left open)."""
        if self._owned and self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
