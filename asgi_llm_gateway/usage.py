"""Usage records handed to the host's `on_usage` hook after each call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

__all__ = ["UsageHook", "UsageRecord"]


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One call as the gateway served it (a chat completion, an Anthropic message, …).

    `usage` is the OpenAI usage object (None when the upstream reported none, or the call failed);
    `error` is the OpenAI error envelope's inner object for a failed call. `status` is the HTTP status the
    client got, or 499 when the client disconnected before the answer was complete. `cost` is what the
    usage cost, in the currency of the gateway's `prices` (USD for `DEFAULT_PRICES`), or None when the
    gateway has no prices, the call reported no usage, or no price matches its target.
    """

    request_id: str
    principal: Any
    model: str
    target: str | None
    provider: str | None
    stream: bool
    usage: dict[str, Any] | None
    latency_ms: float
    status: int
    error: dict[str, Any] | None = None
    #: The door the call came through: "chat.completions", "messages", "messages.count_tokens", ….
    endpoint: str = "chat.completions"
    cost: Decimal | None = None


UsageHook = Callable[[UsageRecord], Awaitable[None]]
