"""`MemoryResponseStore`: the default `ResponseStore`, in this process's memory.

Bounded by a count and by the bytes it holds (least recently used responses go first), and by a TTL. Each
response is kept as a link (see `asgi_llm_gateway.state`): its record and its own items as JSON bytes, and
the ids of the responses it continues. JSON bytes keep the store compact (a fraction of the size of the same
data as Python objects) and measurable, hand every `get` a fresh copy, and refuse in `put` what Redis would
refuse. The byte bound matters for clients that resend the whole conversation on every request instead of
`previous_response_id` (the Agents SDK does unless told to chain): each of their responses holds the whole
history.

Every operation is synchronous inside its coroutine (no `await` between reading and writing), so
concurrent asyncio tasks cannot interleave within one; the store belongs to one event loop, as the gateway
does. `get` and `put` touch one entry per response of the chain (O(chain) dictionary operations, no scan);
expired entries go when they are next looked at, or when they reach the old end of the LRU order.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from ..wire import dumps
from . import StoredResponse
from ._links import Link, assemble, decode_record, encode_record, split

__all__ = ["MemoryResponseStore"]


class _Entry:
    __slots__ = ("expires", "items", "link", "record")

    def __init__(self, record: bytes, items: bytes, link: Link, expires: float) -> None:
        self.record = record
        self.items = items
        self.link = link
        self.expires = expires

    @property
    def size(self) -> int:
        return len(self.record) + len(self.items)


class MemoryResponseStore:
    """Responses in memory: at most `max_responses` of them and `max_bytes` of JSON (the newest response
    stays, however big), each for `ttl` seconds after its last `put` or the last `put` of a response
    continuing it."""

    def __init__(
        self, max_responses: int = 10_000, ttl: float = 30 * 24 * 3600, *, max_bytes: int = 256 * 1024 * 1024
    ) -> None:
        if max_responses < 1 or max_bytes < 1:
            raise ValueError("max_responses and max_bytes must be at least 1")
        if not ttl > 0:
            raise ValueError("ttl must be a positive number of seconds")
        self.max_responses = max_responses
        self.max_bytes = max_bytes
        self.ttl = ttl
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        """How many responses are held (expired ones included until they are noticed)."""
        return len(self._entries)

    @property
    def size(self) -> int:
        """How many bytes of JSON are held."""
        return self._bytes

    def _drop(self, response_id: str) -> _Entry | None:
        entry = self._entries.pop(response_id, None)
        if entry is not None:
            self._bytes -= entry.size
        return entry

    def _drop_oldest(self) -> None:
        self._bytes -= self._entries.popitem(last=False)[1].size

    def _live(self, response_id: str, now: float) -> _Entry | None:
        entry = self._entries.get(response_id)
        if entry is not None and entry.expires <= now:
            self._drop(response_id)
            return None
        return entry

    async def put(self, stored: StoredResponse) -> None:
        now = time.monotonic()
        previous: Link | None = None
        if stored.previous_response_id is not None:
            parent = self._live(stored.previous_response_id, now)
            # link only to a whole chain; with a piece of it gone, keep the items whole
            if parent is not None and all(self._live(id_, now) is not None for id_ in parent.link.chain):
                previous = parent.link
        link, own = split(stored, previous)
        # a value JSON cannot carry fails here, before anything changes
        entry = _Entry(encode_record(stored, link), dumps(own), link, now + self.ttl)
        entries = self._entries
        for ancestor_id in link.chain:  # the chain is in use again: keep it for another ttl
            entries[ancestor_id].expires = entry.expires
            entries.move_to_end(ancestor_id)
        self._drop(stored.id)
        entries[stored.id] = entry
        self._bytes += entry.size
        while len(entries) > self.max_responses or (self._bytes > self.max_bytes and len(entries) > 1):
            self._drop_oldest()
        while next(iter(entries.values())).expires <= now:  # expired at the old end: go now
            self._drop_oldest()

    async def get(self, response_id: str) -> StoredResponse | None:
        now = time.monotonic()
        entry = self._live(response_id, now)
        if entry is None:
            return None
        parts: list[bytes] = []
        for ancestor_id in entry.link.chain:
            ancestor = self._live(ancestor_id, now)
            if ancestor is None:
                return None
            parts.append(ancestor.items)
            self._entries.move_to_end(ancestor_id)
        parts.append(entry.items)
        self._entries.move_to_end(response_id)
        decoded = decode_record(entry.record)
        return None if decoded is None else assemble(decoded[0], entry.link, parts)

    async def delete(self, response_id: str) -> bool:
        entry = self._drop(response_id)
        return entry is not None and entry.expires > time.monotonic()

    async def aclose(self) -> None:
        """Nothing to release: the responses stay (a gateway may be used again after closing)."""

    def __repr__(self) -> str:
        limits = f"max_responses={self.max_responses}, max_bytes={self.max_bytes}, ttl={self.ttl}"
        return f"MemoryResponseStore({limits})"
