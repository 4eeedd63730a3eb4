"""Where `/v1/responses` keeps its state: `StoredResponse` and the `ResponseStore` interface.

Two stores implement it: `memory.MemoryResponseStore` (the default: one process, bounded, with a TTL) and
`redis.RedisResponseStore` (the `[redis]` extra: every replica that shares one Redis continues every chain).
Importing this package imports neither Redis nor its client; only `asgi_llm_gateway.state.redis` does.

The contract, the same for both stores (tests/test_state.py runs one suite over both):

- `put` stores a response; `get` answers it with its **whole** history in `items`, or `None`. Never a part:
  a response whose history is incomplete, because a response it continues expired, was evicted or was
  deleted, reads as missing (the endpoint answers 404), exactly as if it had expired itself.
- Values go through JSON (`asgi_llm_gateway.wire`) in both stores: what `get` answers is a fresh copy
  that the caller may change, and a value JSON cannot carry fails `put` in memory as it would in Redis.
- A response lives `ttl` seconds from its last `put`, or from the last `put` of a response continuing it:
  a chain in use does not expire under its newest turns.
- `delete` removes a response and answers whether it was there. Nothing of it stays behind: the responses
  that continue it lose their history and read as missing too.

**Layout: a chain of links, not the whole history per response.** A response is stored as a link: its own
items (`items[len(previous.items):]`: this request's input and its output) and the ids of the responses
it continues, oldest first. `get` reads the response, then the items of its whole chain in one more round
trip, and concatenates them; `put` reads the previous response's link and writes only this turn. Storing
`items` whole instead rewrites the entire history on every turn: a chain of N turns keeps O(N²) bytes, and
a long Codex or Agents SDK session (tool outputs with whole files in them, hundreds of turns) runs to
gigabytes of Redis within its 30-day TTL. Measured here (redis-server 7.0 on loopback, redis-py with
hiredis, orjson; each turn a 5.5 KB tool output and a function call, each `response` object 20 KB of tools
and instructions), the put and get of the last turn, and Redis's memory for that one conversation:

    turns  history   whole: put / get / memory        links: put / get / memory
      100   0.6 MB   0.6 ms /  0.8 ms /   35 MB      0.9 ms /  1.2 ms /  3.0 MB
      500   3.1 MB   3.5 ms /  6.4 ms /  846 MB      3.5 ms /  7.2 ms /   16 MB
     1000   6.2 MB   6.7 ms / 12.6 ms / 3387 MB      4.8 ms / 14.0 ms /   35 MB

Reading is O(history) either way (the caller needs the whole history to send it upstream); links read one
value per turn of the chain instead of a single one: about 10% slower at 1000 turns (1.6 times without
hiredis). Writing a link sends O(turn) bytes, plus a few µs per response of the chain (its id, its expiry
pushed back): from a few hundred turns on, cheaper than rewriting the history. The memory store keeps the
same links (as JSON bytes): at 1000 turns, put 0.4 ms and get 6 ms (parsing the 6 MB of history).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["ResponseStore", "StoredResponse"]


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """One stored response of the Responses API, with the conversation through it."""

    id: str
    #: Who may read it (the endpoint derives it from the principal); `None`: anyone.
    owner: str | None
    #: The Responses API `response` object as the client got it.
    response: dict[str, Any]
    #: The whole conversation as Responses input items, through this response's output.
    items: list[dict[str, Any]]
    #: How many of `items`, counted from the end of the previous response's items, were this request's
    #: input (what `input_items` lists); the output items follow them.
    input_count: int
    #: Name of the provider that produced the output (encrypted reasoning goes back only there).
    provider: str | None
    #: Unix time, seconds.
    created_at: float
    #: The response this one continues (the request's `previous_response_id`), whose items must be the
    #: start of `items`. With it, a store keeps only this turn's items and a link; without it (or when that
    #: response is gone by the time of `put`) it keeps `items` whole.
    previous_response_id: str | None = None


@runtime_checkable
class ResponseStore(Protocol):
    """Keeps `StoredResponse`s for `/v1/responses` (`previous_response_id`, retrieve, input_items, delete)."""

    async def put(self, stored: StoredResponse) -> None:
        """Store `stored` (replacing a response with its id); raises if a value is not JSON."""
        ...

    async def get(self, response_id: str) -> StoredResponse | None:
        """The response with its whole history, or `None` if it or any response it continues is gone."""
        ...

    async def delete(self, response_id: str) -> bool:
        """Remove the response; `True` if it was there."""
        ...

    async def aclose(self) -> None:
        """Release connections (the store may be used again afterwards: it reconnects)."""
        ...
