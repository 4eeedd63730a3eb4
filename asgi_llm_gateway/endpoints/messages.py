"""`POST /v1/messages` and `POST /v1/messages/count_tokens`: Anthropic's Messages API as a door.

    auth (x-api-key or Bearer) ─▶ read + validate (Messages schema) ─▶ plan targets ─▶ hooks
         ─▶ attempts: native Messages upstream? pass through untouched
                      otherwise: to_chat (ingress) ─▶ provider ─▶ from_completion / MessagesStreamEncoder
         ─▶ JSON message | relay(SSE events) ─▶ settle

Errors are always Anthropic's envelope `{"type": "error", "error": {"type", "message"}}` with its statuses
(503 becomes 529 `overloaded_error`, so Anthropic clients retry it as they do Anthropic's own). The query
string (Claude Code sends `?beta=true`) is ignored; `anthropic-version` is accepted, and `anthropic-beta`
values go to native upstreams, which filter them for what they accept (see docs/providers/).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from ..asgi import Scope, send_json
from ..ingress.anthropic import MessagesStreamEncoder, from_completion, to_chat
from ..pipeline.attempts import WithinTotalTimeout
from ..pipeline.call import Call
from ..policy import Policy
from ..providers.anthropic import usage_of
from ..providers.base import ChatItem
from ..routing import Plan, Target
from ..schemas import validate_messages_request
from ..tokens import estimate_tokens
from ..watch import Spawn
from . import AnthropicErrors, Exchange
from .anthropic_native import NativeEvents, NativeProgress
from .door import Door, first_batch, read_request

if TYPE_CHECKING:
    from ..gateway import Gateway

__all__ = ["CountTokensEndpoint", "MessagesEndpoint", "MessagesRequest"]

#: Says whether `input_tokens` came from the upstream's counting API or is the gateway's estimate.
TOKEN_COUNT_HEADER = b"x-llm-gateway-token-count"


class MessagesRequest:
    """A validated Messages request, its `anthropic-beta` values, and its canonical form once a target
    that does not speak Messages needs it (translated at most once, however many such targets are tried)."""

    __slots__ = ("_chat", "beta", "body")

    def __init__(self, body: dict[str, Any], beta: Sequence[str]) -> None:
        self.body = body
        self.beta = tuple(beta)
        self._chat: dict[str, Any] | None = None

    def chat(self) -> dict[str, Any]:
        if self._chat is None:
            self._chat = to_chat(self.body)
        return self._chat


async def read_messages_request(
    gateway: Gateway, exchange: Exchange, *, count_tokens: bool = False
) -> tuple[Any, MessagesRequest, Plan]:
    """The first checks (`read_request`) with the Messages schema, for both Messages endpoints."""
    validate = partial(validate_messages_request, count_tokens=count_tokens)
    principal, body, _, plan, _ = await read_request(gateway, exchange, validate)
    return principal, MessagesRequest(body, beta_values(exchange.scope)), plan


def beta_values(scope: Scope) -> list[str]:
    """Every `anthropic-beta` value, from one or several headers of comma-separated values."""
    values: list[str] = []
    for name, value in scope.get("headers", ()):
        if name == b"anthropic-beta":
            values.extend(part.strip() for part in value.decode("latin-1").split(",") if part.strip())
    return values


class MessagesEndpoint(AnthropicErrors, Door):
    methods = frozenset({"POST"})

    async def __call__(self, exchange: Exchange) -> None:
        started = time.perf_counter()
        principal, request, plan = await read_messages_request(self.gateway, exchange)
        call = Call(exchange.request_id, "messages", principal, request.body["model"], request.body, started)
        await self.serve(
            call,
            exchange,
            partial(self._create, call, request, plan, exchange),
            partial(self._stream, call, request, plan, exchange),
        )

    async def _create(self, call: Call, request: MessagesRequest, plan: Plan, exchange: Exchange) -> None:
        outcome = await self.attempt(call, plan, exchange, partial(_create_once, request, call))
        if outcome is None:
            return
        message = outcome.result
        message["model"] = outcome.target.name
        await send_json(exchange.send, 200, message, call.headers())
        await self.gateway.settle(call, 200)

    async def _stream(
        self, call: Call, request: MessagesRequest, plan: Plan, exchange: Exchange, spawn: Spawn
    ) -> None:
        outcome = await self.attempt(
            call, plan, exchange, partial(_open_stream_once, request), keep_slot=True
        )
        if outcome is None:
            return
        native, batches, first = outcome.result
        model = outcome.target.name
        if native:
            await self.relay(
                call, outcome, first, batches, NativeEvents(model), exchange, spawn, NativeProgress(call)
            )
        else:
            await self.relay(call, outcome, first, batches, MessagesStreamEncoder(model), exchange, spawn)


async def _create_once(
    request: MessagesRequest, call: Call, target: Target, policy: Policy
) -> dict[str, Any]:
    provider = target.provider
    async with WithinTotalTimeout(target, policy):
        if provider.speaks_messages(target.model):
            message = await provider.messages(request.body, target.model, request.beta)
            call.usage = usage_of_message(message)
            return message
        completion = await provider.complete(request.chat(), target.model)
    call.usage = completion.get("usage")
    return from_completion(completion, target.name)


def usage_of_message(message: dict[str, Any]) -> dict[str, Any] | None:
    usage = message.get("usage")
    return usage_of(usage) if isinstance(usage, dict) else None


#: Whether the events are native, the stream, its first batch (native events, or `chat_batches` items).
Opened = tuple[bool, AsyncIterator[list[ChatItem]], list[ChatItem]]


async def _open_stream_once(request: MessagesRequest, target: Target, policy: Policy) -> Opened:
    """Start the stream (native events, or canonical chunks) and wait for its first batch, so that a
    failure before the first byte is a proper HTTP error that may be retried or fall back."""
    provider = target.provider
    native = provider.speaks_messages(target.model)
    if native:
        batches: AsyncIterator[list[Any]] = provider.messages_batches(
            request.body, target.model, request.beta
        )
    else:
        batches = provider.chat_batches(request.chat(), target.model)  # text runs come as they are
    return native, batches, await first_batch(batches, target, policy)


class CountTokensEndpoint(AnthropicErrors, Door):
    """`input_tokens` by the first target that answers: natively where the upstream counts (Anthropic,
    Bedrock, Gemini), else an estimate, marked as one by the `x-llm-gateway-token-count` header."""

    methods = frozenset({"POST"})

    async def __call__(self, exchange: Exchange) -> None:
        started = time.perf_counter()
        principal, request, plan = await read_messages_request(self.gateway, exchange, count_tokens=True)
        model = request.body["model"]
        call = Call(exchange.request_id, "messages.count_tokens", principal, model, request.body, started)
        await self.serve(call, exchange, partial(self._count, call, request, plan, exchange))

    async def _count(self, call: Call, request: MessagesRequest, plan: Plan, exchange: Exchange) -> None:
        outcome = await self.attempt(call, plan, exchange, partial(_count_once, request))
        if outcome is None:
            return
        count, source = outcome.result
        headers = [*call.headers(), (TOKEN_COUNT_HEADER, source)]
        await send_json(exchange.send, 200, {"input_tokens": count}, headers)
        await self.gateway.settle(call, 200)


async def _count_once(request: MessagesRequest, target: Target, policy: Policy) -> tuple[int, bytes]:
    provider = target.provider
    async with WithinTotalTimeout(target, policy):
        if provider.speaks_messages(target.model):
            return await provider.count_message_tokens(request.body, target.model, request.beta), b"upstream"
        counted = await provider.count_tokens(request.chat(), target.model)
    if counted is not None:
        return counted, b"upstream"
    return estimate_tokens(request.body), b"estimate"
