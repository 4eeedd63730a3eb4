"""`RedisResponseStore`: responses in Redis, so that a chain started on one replica continues on any other.

Needs the `[redis]` extra (the official `redis` package, its asyncio client). A response is two JSON
strings (see `asgi_llm_gateway.state` for why links and not the whole history): `{prefix}r:{id}`, its
record (the response, its metadata and its link: the ids of the responses it continues and the length of
its history), and `{prefix}i:{id}`, its own items. Both are written with `SET … PX` by one Lua script,
which first checks that every response of the chain is still there and then pushes back their expiry, so
a write is atomic: linked to a whole chain, or not made (and then made again with the items whole). A
whole chain's items are read with one `MGET`, a consistent snapshot. Round trips: `put` two (the previous
response's record, then the script), `get` one for a response that continues none and two otherwise,
`delete` one, whatever the length of the chain. Not for Redis Cluster: a chain's keys span hash slots.

The client is created on first use from `url` (or `REDIS_URL`, else `redis://localhost:6379/0`), with
connect and socket timeouts of 5 and 10 seconds unless the URL's query sets them (`?socket_timeout=…`),
and closed with its connection pool by `aclose()`. A client passed in is the host's: used, never closed.
An unreachable Redis raises `redis.exceptions.ConnectionError` (or `TimeoutError`) from the call.
"""

from __future__ import annotations

from typing import Any

from .._redis import DEFAULT_URL, AsyncScript, RedisClient, aioredis
from ..wire import dumps
from . import StoredResponse
from ._links import Link, assemble, decode_record, encode_record, split

__all__ = ["DEFAULT_URL", "RedisResponseStore"]

DEFAULT_PREFIX = "asgi-llm-gateway:response:"

#: KEYS: the record and items keys of the response, then the items and record keys of each response it
#: continues; ARGV: ttl in ms, record, items. Writes only if every response of the chain is still there,
#: pushing their expiry back: answers 1 if written, 0 if not (nothing changed).
_WRITE = """
for i = 3, #KEYS, 2 do
    if redis.call('EXISTS', KEYS[i]) == 0 then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[1])
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[1])
for i = 3, #KEYS do redis.call('PEXPIRE', KEYS[i], ARGV[1]) end
return 1
"""


class RedisResponseStore:
    """Responses in Redis under `prefix`, each for `ttl` seconds after its last `put` or the last `put` of a
    response continuing it. Give `url` (`redis://…`, `rediss://…`, `unix://…`) or a `redis.asyncio.Redis`
    `client`, not both."""

    def __init__(
        self,
        url: str | None = None,
        *,
        client: aioredis.Redis | None = None,
        prefix: str = DEFAULT_PREFIX,
        ttl: float = 30 * 24 * 3600,
    ) -> None:
        options = {"socket_connect_timeout": 5, "socket_timeout": 10}
        self._redis = RedisClient("RedisResponseStore", url, client, **options)
        if not ttl > 0:
            raise ValueError("ttl must be a positive number of seconds")
        self.url = self._redis.url
        self.prefix = prefix
        self.ttl = ttl
        self._ttl_ms = max(1, round(ttl * 1000))
        self._write: tuple[aioredis.Redis, AsyncScript] | None = None

    @property
    def client(self) -> aioredis.Redis:
        """The Redis client: the one given, or one of ours created on first use."""
        return self._redis.get()

    def record_key(self, response_id: str) -> str:
        return f"{self.prefix}r:{response_id}"

    def items_key(self, response_id: str) -> str:
        return f"{self.prefix}i:{response_id}"

    async def _put(self, stored: StoredResponse, link: Link, own: list[dict[str, Any]]) -> bool:
        keys = [self.record_key(stored.id), self.items_key(stored.id)]
        for ancestor_id in link.chain:
            keys += (self.items_key(ancestor_id), self.record_key(ancestor_id))
        args = (self._ttl_ms, encode_record(stored, link), dumps(own))
        client = self.client
        if self._write is None or self._write[0] is not client:
            self._write = (client, client.register_script(_WRITE))
        return bool(await self._write[1](keys=keys, args=args))

    async def put(self, stored: StoredResponse) -> None:
        previous: Link | None = None
        if stored.previous_response_id is not None:
            raw = await self.client.get(self.record_key(stored.previous_response_id))
            decoded = None if raw is None else decode_record(raw)
            previous = None if decoded is None else decoded[1]
        link, own = split(stored, previous)
        if not await self._put(stored, link, own):  # a response of the chain went meanwhile: keep it whole
            await self._put(stored, Link((), len(stored.items)), stored.items)

    async def get(self, response_id: str) -> StoredResponse | None:
        client = self.client
        record, own = await client.mget([self.record_key(response_id), self.items_key(response_id)])
        decoded = None if record is None or own is None else decode_record(record)
        if decoded is None:
            return None
        fields, link = decoded
        parts: list[bytes | str | None] = []
        if link.chain:
            parts = await client.mget([self.items_key(ancestor_id) for ancestor_id in link.chain])
        parts.append(own)
        return assemble(fields, link, parts)

    async def delete(self, response_id: str) -> bool:
        return bool(await self.client.delete(self.record_key(response_id), self.items_key(response_id)))

    async def aclose(self) -> None:
        """Close our client and its connection pool (a client passed in is left open); the next call
        opens a new one."""
        await self._redis.aclose()

    def __repr__(self) -> str:
        return f"RedisResponseStore(prefix={self.prefix!r}, ttl={self.ttl})"
