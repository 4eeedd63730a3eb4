"""Per-provider concurrency slots (`Policy.max_concurrency`), waited for up to `Policy.queue_timeout`."""

from __future__ import annotations

from collections.abc import Callable

import anyio

from ..errors import GatewayError

__all__ = ["Release", "Slots"]

#: Frees one slot; called exactly once.
Release = Callable[[], None]


class Slots:
    """One capacity limiter per provider that has a limit, created on first use: a limiter belongs to the
    running event loop, which does not exist yet when the gateway is built."""

    __slots__ = ("_limiters",)

    def __init__(self) -> None:
        self._limiters: dict[str, anyio.CapacityLimiter] = {}

    async def acquire(self, provider_name: str, limit: int | None, wait: float) -> Release | None:
        """Wait for one of the provider's `limit` slots; None when it has no limit; 503 after `wait` s."""
        if limit is None:
            return None
        limiter = self._limiters.get(provider_name)
        if limiter is None:
            limiter = self._limiters[provider_name] = anyio.CapacityLimiter(limit)
        token = object()
        with anyio.move_on_after(wait):
            await limiter.acquire_on_behalf_of(token)
            return lambda: limiter.release_on_behalf_of(token)
        raise GatewayError(
            f"The provider '{provider_name}' is at its limit of {limit} concurrent requests; try again soon.",
            status=503,
            code="provider_busy",
            headers={"retry-after": "1"},
        )
