"""What every observing hook derives from a call, in one place: its attempts, time to first chunk, tokens,
error class, and who called.

Each hook keeps its own `Progress` in `call.state` (keyed by the hook), so hooks never depend on one
another and a hook that is not installed costs nothing.

    fact              from
    attempts          attempt_started / attempt_ended, in order (target name, error or None)
    retries           attempts on the target of the attempt before
    fallbacks         distinct targets tried beyond the first
    first_chunk       a stream's first successful attempt_ended: the attempt returns with the first batch
    tokens            the OpenAI usage object (cached and reasoning counted within input and output)
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, NamedTuple

from ..errors import GatewayError, redact
from ..pipeline.call import CLIENT_CLOSED_REQUEST, Call
from ..routing import Target
from ..usage import UsageRecord

__all__ = [
    "OPERATIONS",
    "Progress",
    "Tokens",
    "error_class",
    "principal_name",
    "progress",
    "redacted",
]

#: The door a call came through → the GenAI conventions' `gen_ai.operation.name` (a door the conventions
#: have no value for keeps a name of its own, as they allow).
OPERATIONS: Mapping[str, str] = {
    "chat.completions": "chat",
    "messages": "chat",
    "responses": "chat",
    "embeddings": "embeddings",
    "messages.count_tokens": "count_tokens",
}


@dataclass(slots=True)
class Progress:
    """One call as one hook saw it pass."""

    #: (target name, the error that ended the attempt or None), in order; an attempt still running is
    #: the last entry with `running` set.
    attempts: list[tuple[str, GatewayError | None]] = field(default_factory=list)
    running: bool = False
    #: Seconds from the call's start to its stream's first chunk (None: not a stream, or no chunk yet).
    first_chunk: float | None = None
    #: perf_counter() when the attempt that answered returned (its answer, or a stream's first chunk).
    answered: float | None = None
    #: Whatever the hook keeps beside (its span, its labels…).
    extra: dict[str, Any] = field(default_factory=dict)

    def started(self, target: Target) -> str | None:
        """Record an attempt on `target`; returns "retry" or "fallback" when one came before it."""
        previous = self.attempts[-1][0] if self.attempts else None
        self.attempts.append((target.name, None))
        self.running = True
        if previous is None:
            return None
        return "retry" if previous == target.name else "fallback"

    def ended(self, call: Call, target: Target, error: GatewayError | None) -> None:
        self.running = False
        if self.attempts:
            self.attempts[-1] = (target.name, error)
        if error is None:
            self.answered = time.perf_counter()
            if call.stream and self.first_chunk is None:
                self.first_chunk = self.answered - call.started

    @property
    def fallbacks(self) -> int:
        """Targets tried beyond the first."""
        return max(0, len(dict.fromkeys(name for name, _ in self.attempts)) - 1)

    @property
    def retries(self) -> int:
        """Attempts on the same target as the attempt before."""
        names = [name for name, _ in self.attempts]
        return sum(1 for before, after in pairwise(names) if before == after)


def progress(call: Call, owner: object) -> Progress:
    """`owner`'s record of `call`, created on first use."""
    found = call.state.get(owner)
    if found is None:
        found = call.state[owner] = Progress()
    return found


class Tokens(NamedTuple):
    """A call's tokens from its OpenAI usage object: cached and cache-write tokens are within `input`,
    reasoning tokens within `output` (the gateway's usage objects all follow OpenAI's convention)."""

    input: int
    output: int
    cached: int
    cache_write: int
    reasoning: int

    @classmethod
    def of(cls, usage: Mapping[str, Any] | None) -> Tokens | None:
        if not usage:
            return None
        prompt_details = usage.get("prompt_tokens_details") or {}
        completion_details = usage.get("completion_tokens_details") or {}
        return cls(
            _count(usage.get("prompt_tokens")),
            _count(usage.get("completion_tokens")),
            _count(prompt_details.get("cached_tokens")),
            _count(prompt_details.get("cache_write_tokens")),
            _count(completion_details.get("reasoning_tokens")),
        )


def _count(value: Any) -> int:
    """A token count: missing, null or nonsense (a bool, a float, a string…) counts as 0."""
    return value if type(value) is int and value > 0 else 0


def error_class(record: UsageRecord) -> str | None:
    """A low-cardinality name for how a call failed: the error's code, else its type, else the status;
    None for a success and for a client that left (499 is not the gateway's failure)."""
    if record.status == CLIENT_CLOSED_REQUEST or record.status < 400:
        return None
    error = record.error or {}
    return str(error.get("code") or error.get("type") or record.status)


def attempt_error_class(error: GatewayError) -> str:
    """The same name for one failed attempt."""
    return str(error.code or error.type or error.status)


def principal_name(principal: Any) -> str | None:
    """Who called, safe to log: a `Principal`'s name (or any object's `name` string), a string principal
    with anything key-shaped removed; never the repr of an unknown object (it might hold a key)."""
    if principal is None:
        return None
    name = principal if isinstance(principal, str) else getattr(principal, "name", None)
    return redact(name) if isinstance(name, str) else None


def redacted(message: str, target: Target | None) -> str:
    """`message` without the target provider's secrets or anything shaped like a key."""
    secrets = getattr(target.provider, "secrets", None) if target is not None else None
    return redact(message, secrets() if callable(secrets) else ())
