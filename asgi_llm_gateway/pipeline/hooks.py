"""`Hooks`: where cross-cutting concerns (usage, limits, logs, metrics, traces) plug into the pipeline.

ASGI middleware sees one request and one response; it cannot see retries, fallback targets or tokens. A hook
sees the `Call` at each step:

    request_started ─▶ admit ─▶ (attempt_started ─▶ attempt_ended)+ ─▶ request_ended(record)

Every method is a no-op: subclass `Hooks` and override what you need; `aclose` runs when the gateway closes. A
gateway with no hooks calls none (`HookChain.of` returns None), so unused hooks cost nothing on the request
path.

`admit` may refuse a call by raising a `GatewayError` (e.g. 429); it runs once, after the targets are
planned and before the first attempt. Every call that started also ends: `request_ended` comes after a
refusal too, and after a client left (status 499). Errors raised by any hook but `admit` are logged and
ignored: observing a call must never change its answer.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from ..errors import GatewayError
from ..routing import Target
from ..usage import UsageHook, UsageRecord
from .call import Call

__all__ = ["HookChain", "Hooks", "UsageHooks"]

logger = logging.getLogger("asgi_llm_gateway")


class Hooks:
    """The pipeline's hook points, each a no-op. Override the ones you need."""

    async def request_started(self, call: Call) -> None:
        """The request is valid and its model known; nothing has been sent upstream yet."""

    async def admit(self, call: Call, targets: Sequence[Target]) -> None:
        """Admission before the first attempt: raise a `GatewayError` to refuse the call."""

    async def attempt_started(self, call: Call, target: Target) -> None:
        """One attempt on `target` begins (`call.attempts` counts it)."""

    def upstream_headers(self, call: Call, target: Target) -> Mapping[str, str]:
        """Headers to add to the upstream request of the attempt just started (e.g. `traceparent`)."""
        return {}

    async def attempt_ended(self, call: Call, target: Target, error: GatewayError | None) -> None:
        """The attempt on `target` succeeded (`error` is None) or failed with `error`."""

    async def request_ended(self, call: Call, record: UsageRecord) -> None:
        """The call is over (answered, failed or abandoned); `record` says how it ended and what it used."""

    async def aclose(self) -> None:
        """The gateway is closing: release what the hook holds (connections, exporters)."""


class UsageHooks(Hooks):
    """The `on_usage` callable as a hook: it receives the record of every call that reached an attempt."""

    def __init__(self, on_usage: UsageHook) -> None:
        self.on_usage = on_usage

    async def request_ended(self, call: Call, record: UsageRecord) -> None:
        try:
            await self.on_usage(record)
        except Exception:  # the client already has its answer; a broken hook must not change it
            logger.exception("on_usage hook failed")


class HookChain:
    """Several hooks called in order; failures of observing hooks are logged and ignored."""

    __slots__ = ("hooks",)

    def __init__(self, hooks: Sequence[Hooks]) -> None:
        self.hooks = tuple(hooks)

    @classmethod
    def of(cls, hooks: Sequence[Hooks]) -> HookChain | None:
        """A chain of `hooks`, or None when there are none (so callers skip the calls entirely)."""
        return cls(hooks) if hooks else None

    async def request_started(self, call: Call) -> None:
        for hook in self.hooks:
            try:
                await hook.request_started(call)
            except Exception:
                logger.exception("%s.request_started failed", type(hook).__name__)

    async def admit(self, call: Call, targets: Sequence[Target]) -> None:
        for hook in self.hooks:  # a refusal (or a bug) here ends the call before any attempt
            await hook.admit(call, targets)

    async def attempt_started(self, call: Call, target: Target) -> None:
        for hook in self.hooks:
            try:
                await hook.attempt_started(call, target)
            except Exception:
                logger.exception("%s.attempt_started failed", type(hook).__name__)

    def upstream_headers(self, call: Call, target: Target) -> Mapping[str, str]:
        headers: dict[str, str] = {}
        for hook in self.hooks:
            try:
                headers.update(hook.upstream_headers(call, target))
            except Exception:
                logger.exception("%s.upstream_headers failed", type(hook).__name__)
        return headers

    async def attempt_ended(self, call: Call, target: Target, error: GatewayError | None) -> None:
        for hook in self.hooks:
            try:
                await hook.attempt_ended(call, target, error)
            except Exception:
                logger.exception("%s.attempt_ended failed", type(hook).__name__)

    async def request_ended(self, call: Call, record: UsageRecord) -> None:
        for hook in self.hooks:
            try:
                await hook.request_ended(call, record)
            except Exception:  # the client already has its answer; a broken hook must not change it
                logger.exception("%s.request_ended failed", type(hook).__name__)

    async def aclose(self) -> None:
        for hook in self.hooks:  # one failing to close must not keep the others open
            try:
                await hook.aclose()
            except Exception:
                logger.exception("%s.aclose failed", type(hook).__name__)
