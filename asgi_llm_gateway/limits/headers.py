"""OpenAI's rate-limit headers from the buckets an admission touched.

    header                           value
    x-ratelimit-limit-requests       the requests limit (per its period)
    x-ratelimit-remaining-requests   requests left
    x-ratelimit-reset-requests       time until the bucket is full again: `20ms`, `1s`, `6m0s`, `1h2m3.5s`
    x-ratelimit-*-tokens             the same for tokens
    retry-after                      whole seconds until a refused call would fit (on a 429 only)
    retry-after-ms                   the same in milliseconds (OpenAI's SDKs prefer it)

OpenAI sends one limit per kind; with several rules of a kind (a key's and a model's), the headers show
the tightest: the fewest remaining, then the latest reset. The reset format is Go's duration format, which
OpenAI's values follow (`6m0s`, `12ms`): hours and minutes when non-zero, seconds with up to three decimals,
and milliseconds alone below one second.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .base import BucketState, Demand

__all__ = ["format_reset", "rate_limit_headers", "retry_after_headers"]


def format_reset(seconds: float) -> str:
    """A duration as OpenAI writes it in `x-ratelimit-reset-*`: `0s`, `20ms`, `1.5s`, `6m0s`, `2h0m0s`."""
    milliseconds = max(0, math.ceil(seconds * 1000 - 1e-3))  # within a µs of a millisecond is that ms
    if milliseconds == 0:
        return "0s"
    if milliseconds < 1000:
        return f"{milliseconds}ms"
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    text = f"{rest / 1000:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    return f"{minutes}m{text}" if minutes else text


def _tightest(states: Sequence[BucketState]) -> BucketState:
    return min(states, key=lambda state: (state.remaining, -state.reset))


def rate_limit_headers(demands: Sequence[Demand], states: Sequence[BucketState]) -> dict[str, str]:
    """The x-ratelimit-* headers for the requests and tokens buckets among `demands`."""
    headers: dict[str, str] = {}
    for kind in ("requests", "tokens"):
        of_kind = [state for demand, state in zip(demands, states, strict=True) if demand.kind == kind]
        if of_kind:
            state = _tightest(of_kind)
            headers[f"x-ratelimit-limit-{kind}"] = str(state.limit)
            headers[f"x-ratelimit-remaining-{kind}"] = str(max(0, state.remaining))
            headers[f"x-ratelimit-reset-{kind}"] = format_reset(state.reset)
    return headers


def retry_after_headers(seconds: float) -> dict[str, str]:
    """`retry-after` (whole seconds, rounded up: HTTP's form) and `retry-after-ms`."""
    return {
        "retry-after": str(max(1, math.ceil(seconds))),
        "retry-after-ms": str(max(1, math.ceil(seconds * 1000))),
    }
