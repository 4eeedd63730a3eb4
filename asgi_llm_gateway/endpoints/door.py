"""`Door`: what every model-calling endpoint shares, written once.

A request's first checks (`read_request`): auth, the body read and validated by the door's schema, the plan
and the model check, in that order. Then admission and the attempts, with a failure answered in the door's own
envelope; and the relay of a stream, after which the call is settled (its slot freed, its record handed to the
hooks) whatever happened. A detached call (a background response) is served the same way but outlives its
client: no disconnect watch cancels it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import anyio

from ..asgi import Message, read_body
from ..auth import authenticate, check_model_allowed
from ..deadline import Deadline
from ..errors import GatewayError
from ..pipeline.attempts import Attempt, Outcome, timed_out
from ..pipeline.call import CLIENT_CLOSED_REQUEST, Call
from ..pipeline.relay import StreamEncoder, StreamProgress, relay
from ..policy import Policy
from ..providers.base import aclose_iterator
from ..providers.streams import stream_ended_early
from ..routing import Plan, Target
from ..schemas import parse_json_body
from ..watch import Spawn, watched
from . import Exchange, Headers

if TYPE_CHECKING:
    from ..gateway import Gateway

__all__ = ["Door", "Incoming", "first_batch", "read_request"]

Batch = TypeVar("Batch")


class Incoming(NamedTuple):
    """A request past the checks every model-calling door makes before anything else."""

    principal: Any
    body: dict[str, Any]
    model: str
    plan: Plan
    #: `time.perf_counter()` when the door took the request (a call's latency counts from here).
    started: float


async def read_request(
    gateway: Gateway, exchange: Exchange, validate: Callable[[dict[str, Any]], None]
) -> Incoming:
    """Auth, then the body read and checked by `validate` (the door's schema) and given to the gateway's
    `rewrite`, then the plan and the model check. The order is the contract: a bad key is a 401 before the
    body is read; an invalid body a 400 before any routing; an unknown model a 404 before a model the
    principal may not use is a 403. The rewrite sees the door's name as `Call.endpoint` spells it, which is
    the path below `/v1` dotted (`/chat/completions` → `chat.completions`)."""
    started = time.perf_counter()
    scope = exchange.scope
    principal = await authenticate(gateway.auth, scope)
    body = parse_json_body(await read_body(scope, exchange.receive, gateway.max_body_size))
    validate(body)
    if gateway.rewrite is not None:
        body = gateway.rewrite(principal, exchange.path.strip("/").replace("/", "."), body)
    model: str = body["model"]
    health = gateway.health
    if health.syncs:  # cooldowns shared across replicas: learn theirs before choosing targets
        await health.sync()
    plan = gateway.router.plan(model, health, gateway.rng, time.monotonic(), body)  # body: cache affinity
    check_model_allowed(principal, model)
    return Incoming(principal, body, model, plan, started)


class Door:
    """Base of the endpoints that call models. A subclass mixes in its error envelope (`send_error`)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def send_error(self, exchange: Exchange, error: GatewayError, headers: Headers = ()) -> None:
        raise NotImplementedError  # pragma: no cover - every door mixes in its envelope

    async def serve(
        self,
        call: Call,
        exchange: Exchange,
        complete: Callable[[], Awaitable[None]],
        stream: Callable[[Spawn], Awaitable[None]] | None = None,
        *,
        detached: bool = False,
    ) -> None:
        """Run one call: `request_started` for the hooks, then `stream` (when the request asks for a stream)
        or `complete`, while a watcher cancels everything if the client disconnects — unless `detached`: then
        the call runs to its end whatever the client does (its sends must not raise once it left)."""
        hooks = self.gateway.hooks
        streamed = stream is not None and call.stream
        # Hooks admit and settle in shields; a stream closes its upstream in one (and the Responses door
        # stores a stream's answer in one). A plain call with no hook enters none: the cheaper kind to cancel
        # (`watched`). A detached call is never cancelled by its watch.
        shielded = streamed or hooks is not None
        receive = _never_disconnects if detached else exchange.receive
        async with watched(receive, shielded=shielded, lookout=self.gateway.lookout) as spawn:
            try:
                if hooks is not None:
                    await hooks.request_started(call)
                if streamed:
                    assert stream is not None
                    await stream(spawn)
                else:
                    await complete()
            except OSError:  # the client went away while we were sending
                pass

    async def attempt(
        self, call: Call, plan: Plan, exchange: Exchange, attempt: Attempt[Any], *, keep_slot: bool = False
    ) -> Outcome[Any] | None:
        """Admission, then the attempts: the successful one, or None once the client has been sent the error
        (a refusal included) and the call settled."""
        gateway = self.gateway
        try:
            if gateway.hooks is not None:
                await gateway.hooks.admit(call, plan.targets)
            return await gateway.attempts.run(call, plan.targets, plan.policy, attempt, keep_slot=keep_slot)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await gateway.settle(call, CLIENT_CLOSED_REQUEST)
            raise
        except GatewayError as error:
            await self.refuse(call, exchange, error)
            return None

    async def admit(self, call: Call, plan: Plan, exchange: Exchange) -> bool:
        """Admission alone, for a call whose attempts run later (a background response): False once a refusal
        has been answered and the call settled."""
        try:
            if self.gateway.hooks is not None:
                await self.gateway.hooks.admit(call, plan.targets)
        except GatewayError as error:
            await self.refuse(call, exchange, error)
            return False
        return True

    async def refuse(self, call: Call, exchange: Exchange, error: GatewayError) -> None:
        """Answer `error` in the door's envelope and settle the call with it."""
        await self.send_error(exchange, error, call.headers())
        await self.gateway.settle(call, error.status, error)

    async def relay(
        self,
        call: Call,
        outcome: Outcome[Any],
        first: list[Any],
        batches: AsyncIterator[list[Any]],
        encoder: StreamEncoder,
        exchange: Exchange,
        spawn: Spawn,
        progress: StreamProgress | None = None,
        headers: Headers = (),
    ) -> GatewayError | None:
        """Relay the opened stream to the client, then settle the call (status 499 if the client left);
        returns the error that ended the stream, if any."""
        failure: GatewayError | None = None
        status = CLIENT_CLOSED_REQUEST  # unless the stream runs to its end
        try:
            failure = await relay(
                call,
                outcome.target,
                first,
                batches,
                encoder,
                exchange.send,
                idle_timeout=outcome.policy.idle_timeout,
                spawn=spawn,
                headers=[*call.headers(), *headers],
                progress=progress,
            )
            status = failure.status if failure else 200
        finally:
            with anyio.CancelScope(shield=True):
                await aclose_iterator(batches)
                if outcome.release is not None:
                    outcome.release()
                await self.gateway.settle(call, status, failure)
        return failure


async def _never_disconnects() -> Message:
    """The `receive` a detached call is watched with: its helpers (a stream's idle timer) still end with the
    call, but the client leaving cancels nothing."""
    await anyio.sleep_forever()
    raise AssertionError("unreachable")  # pragma: no cover


async def first_batch(batches: AsyncIterator[Batch], target: Target, policy: Policy) -> Batch:
    """Wait for a just-opened stream's first batch, so that a failure before the first byte reaches the
    client as a proper HTTP status and can be retried or fall back. The stream is closed if it fails."""
    try:
        async with Deadline(policy.first_token_timeout):
            return await anext(batches)
    except StopAsyncIteration:
        raise stream_ended_early(target.provider.kind) from None
    except TimeoutError:
        with anyio.CancelScope(shield=True):
            await aclose_iterator(batches)
        raise timed_out(target, f"no first chunk within {policy.first_token_timeout:g} s") from None
    except BaseException:
        with anyio.CancelScope(shield=True):
            await aclose_iterator(batches)
        raise
