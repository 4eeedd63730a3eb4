"""`Call`: one request's record as it moves through the pipeline — what hooks see, and what settles it.

It is written in one place per fact: the endpoint fills in who and what, the attempts unit records each
attempt and the target that answered, the answer records the usage; `record()` turns it into the
`UsageRecord` that `on_usage` receives. Nothing else is handed between pipeline steps by side effect.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..errors import GatewayError
from ..routing import Target
from ..usage import UsageRecord

__all__ = ["CLIENT_CLOSED_REQUEST", "Call"]

#: The status a call gets when the client abandoned it before the answer was complete (nginx's convention).
CLIENT_CLOSED_REQUEST = 499


@dataclass(slots=True, eq=False)
class Call:
    """One request to one endpoint, from validation to its last byte.

    `endpoint` names the door (`"chat.completions"`, `"messages"`, …); `body` is the request as that door
    received it, validated (an OpenAI chat request on `chat.completions`, an Anthropic one on `messages`);
    `state` is free space for hooks to keep what they need until the call ends (e.g. a limit reservation),
    keyed by something of their own."""

    request_id: str
    endpoint: str
    principal: Any
    model: str
    body: Mapping[str, Any]
    started: float = field(default_factory=time.perf_counter)
    #: The target of the latest attempt (the one that answered, once there is an answer).
    target: Target | None = None
    #: Attempts made so far, over every target.
    attempts: int = 0
    #: The OpenAI usage object of the answer, once known.
    usage: dict[str, Any] | None = None
    state: dict[Any, Any] = field(default_factory=dict)
    #: Response headers a hook adds to every answer of the call, success or error (`LimitsHook` puts
    #: OpenAI's x-ratelimit-* here at admission). A tuple: the default costs nothing per call.
    extra_headers: tuple[tuple[bytes, bytes], ...] = ()
    #: The request id the upstream gave the latest attempt's answer (recorded when the gateway has hooks).
    upstream_request_id: str | None = None

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    def record(
        self, status: int, error: GatewayError | None = None, cost: Decimal | None = None
    ) -> UsageRecord:
        """The call as it ended: `status` is what the client got (499 when it left first); `cost` is what
        its usage cost by the gateway's prices, if it has any."""
        target = self.target
        return UsageRecord(
            request_id=self.request_id,
            principal=self.principal,
            model=self.model,
            target=target.name if target else None,
            provider=target.provider_name if target else None,
            stream=self.stream,
            usage=self.usage,
            latency_ms=(time.perf_counter() - self.started) * 1000,
            status=status,
            error=error.to_dict()["error"] if error else None,
            endpoint=self.endpoint,
            cost=cost,
        )

    def headers(self) -> list[tuple[bytes, bytes]]:
        """Which target answered and after how many attempts, then the hooks' `extra_headers`, for the
        client's response headers."""
        target = self.target
        if target is None:
            return list(self.extra_headers)
        return [
            (b"x-llm-gateway-provider", target.provider_name.encode()),
            (b"x-llm-gateway-target", target.name.encode()),
            (b"x-llm-gateway-attempts", str(self.attempts).encode()),
            *self.extra_headers,
        ]
