"""`Attempts`: try the planned targets under their policies until one answers.

Retries with backoff (honouring Retry-After), falls back to the next target, cools down targets that keep
failing, holds a concurrency slot per attempt and keeps the whole call within the first policy's time
budget. What to do on a target is the caller's `attempt(target, policy)` callable, so every endpoint (chat,
streams, embeddings, …) reuses this unit as is. The result comes back as an `Outcome`; each attempt is also
recorded on the `Call` (so an abandoned or failed call still reports where it got to).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, TypeVar, cast

import anyio

from ..deadline import Deadline
from ..errors import GatewayError
from ..policy import HealthBook, Policy, retry_delay
from ..providers.upstream import ATTEMPT, REQUEST_ID, UpstreamAttempt
from ..routing import Target
from .call import Call
from .hooks import HookChain
from .slots import Release, Slots

__all__ = ["Attempt", "Attempts", "Outcome", "WithinTotalTimeout", "provider_bug", "timed_out"]

logger = logging.getLogger("asgi_llm_gateway")

T = TypeVar("T")
#: One try on one target under the policy in force.
Attempt = Callable[[Target, Policy], Awaitable[T]]


@dataclass(slots=True)  # not frozen: a frozen dataclass costs twice as much to build, on every call
class Outcome(Generic[T]):
    """The successful attempt: its result, the target that answered, the policy it ran under, how many
    attempts it took in all, and — when the caller kept it — the release of its concurrency slot."""

    result: T
    target: Target
    policy: Policy
    attempts: int
    release: Release | None = None


class Attempts:
    """The retry/fallback loop, with the state it shares across calls (health, slots, randomness)."""

    __slots__ = ("health", "hooks", "policy_for", "rng", "slots")

    def __init__(
        self,
        policy_for: Callable[[str], Policy],
        *,
        health: HealthBook | None = None,
        slots: Slots | None = None,
        rng: random.Random | None = None,
        hooks: HookChain | None = None,
    ) -> None:
        self.policy_for = policy_for
        self.health = health or HealthBook()
        self.slots = slots or Slots()
        self.rng = rng or random.Random()
        self.hooks = hooks

    async def run(
        self,
        call: Call,
        targets: Sequence[Target],
        route_policy: Policy | None,
        attempt: Attempt[T],
        *,
        keep_slot: bool = False,
    ) -> Outcome[T]:
        """The first successful attempt, or the last error raised. With `keep_slot` the successful attempt's
        slot stays held and `Outcome.release` frees it (a stream holds its slot until its last chunk)."""
        token = REQUEST_ID.set(call.request_id)  # for providers that send it upstream
        try:
            deadline: float | None = None
            last_error: GatewayError | None = None
            for position, target in enumerate(targets):
                provider_policy = self.policy_for(target.provider_name)
                policy = route_policy or provider_policy
                if deadline is None:
                    deadline = time.monotonic() + policy.budget
                for tries in range(1, policy.max_attempts + 1):
                    if last_error is not None and time.monotonic() >= deadline:
                        raise last_error
                    result, last_error, release = await self._once(
                        call, target, policy, provider_policy, attempt
                    )
                    if last_error is None:
                        self.health.succeeded(target.name)
                        if release is not None and not keep_slot:
                            release()
                            release = None
                        return Outcome(cast(T, result), target, policy, call.attempts, release)
                    delay = self._after_failure(target, policy, last_error, tries)
                    if delay is None:
                        break
                    more_targets = position + 1 < len(targets)
                    if (more_targets and delay > policy.max_backoff) or time.monotonic() + delay > deadline:
                        break  # a long Retry-After: let the next target answer instead of waiting
                    logger.info("retrying %s in %.2f s after: %s", target.name, delay, last_error.message)
                    await anyio.sleep(delay)
                if last_error is not None and position + 1 < len(targets):
                    logger.warning(
                        "target %s failed (%s), trying the next one", target.name, last_error.message
                    )
            assert last_error is not None
            raise last_error
        finally:
            REQUEST_ID.reset(token)

    async def _once(
        self, call: Call, target: Target, policy: Policy, provider_policy: Policy, attempt: Attempt[T]
    ) -> tuple[T | None, GatewayError | None, Release | None]:
        """One attempt inside a concurrency slot (the provider's own `max_concurrency`, waited for under the
        policy in force): (result, None, release) or (None, error, None)."""
        call.target = target
        call.attempts += 1
        hooks = self.hooks
        if hooks is not None:
            await hooks.attempt_started(call, target)
        release: Release | None = None
        error: GatewayError | None = None
        result: T | None = None
        try:
            limit = provider_policy.max_concurrency
            if limit is not None:
                release = await self.slots.acquire(target.provider_name, limit, policy.queue_timeout)
            if hooks is not None:  # the hooks' headers go upstream; the upstream's request id comes back
                upstream = UpstreamAttempt(hooks.upstream_headers(call, target))
                token = ATTEMPT.set(upstream)
                try:
                    result = await attempt(target, policy)
                finally:
                    ATTEMPT.reset(token)
                    call.upstream_request_id = upstream.request_id
            else:
                result = await attempt(target, policy)
        except GatewayError as exc:
            error = exc
        except Exception as exc:
            error = provider_bug(target, exc)
        except BaseException:  # cancelled: the client left, or the call's scope ended
            if release is not None:
                release()
            raise
        if error is not None and release is not None:
            release()
            release = None
        if hooks is not None:
            await hooks.attempt_ended(call, target, error)
        return result, error, release

    def _after_failure(self, target: Target, policy: Policy, error: GatewayError, tries: int) -> float | None:
        """How long to wait before trying `target` again, or None to move on (raises when fallback is not
        allowed for this error)."""
        if not policy.should_fall_back(error):
            raise error
        retry = policy.should_retry(error)
        if retry and error.retryable:  # the target is in trouble, not just this request
            self.health.failed(target.name, policy, time.monotonic())
        if not retry or tries == policy.max_attempts:
            return None
        return retry_delay(policy, tries, error, self.rng)


def timed_out(target: Target, detail: str) -> GatewayError:
    return GatewayError(
        f"{target.provider.kind}: upstream timed out ({detail})", status=504, code="upstream_timeout"
    )


class WithinTotalTimeout:
    """`async with WithinTotalTimeout(target, policy):` one non-streamed upstream call within the policy's
    `total_timeout`, else a 504 `upstream_timeout` naming the target (never a bare TimeoutError, which the
    attempts unit would report as a provider bug). A class, not a generator: it is on every call's path."""

    __slots__ = ("_deadline", "_policy", "_target")

    def __init__(self, target: Target, policy: Policy) -> None:
        self._target = target
        self._policy = policy
        self._deadline = Deadline(policy.total_timeout)

    async def __aenter__(self) -> None:
        await self._deadline.__aenter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        try:
            return await self._deadline.__aexit__(exc_type, exc, tb)
        except TimeoutError:
            raise timed_out(self._target, f"no answer within {self._policy.total_timeout:g} s") from None


def provider_bug(target: Target, exc: Exception) -> GatewayError:
    """An unexpected exception inside a provider: almost always an upstream answer it could not read."""
    logger.error(
        "provider %r failed on an unexpected %s", target.provider_name, type(exc).__name__, exc_info=exc
    )
    return GatewayError(
        f"{target.provider.kind}: the upstream response could not be translated ({type(exc).__name__})",
        status=502,
        code="upstream_bad_response",
    )
