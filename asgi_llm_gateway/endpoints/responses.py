"""`/v1/responses`: OpenAI's Responses API as a door, with the conversation state the gateway keeps.

    POST /v1/responses:
      auth ─▶ read + validate (Responses schema) ─▶ plan ─▶ history of previous_response_id (ResponseStore)
           ─▶ attempts: native Responses upstream? the whole conversation as input, store=false upstream
                        otherwise: to_chat (ingress) ─▶ provider ─▶ to_response / ResponsesStreamEncoder
           ─▶ JSON response | relay(SSE events) ─▶ store (unless store=false) ─▶ settle
    GET /v1/responses/{id}, GET /v1/responses/{id}/input_items, DELETE /v1/responses/{id}

The gateway owns the state, never the upstream: a chain started on one provider continues on any other
(and, with a shared store such as Redis, on any replica). A stored response is readable only by the
principal that created it; anyone else gets the same 404 as for an id that does not exist.

Built-in tools (`web_search`, `file_search`, …) that a translated upstream cannot run are dropped, named in
the `x-llm-gateway-dropped-tools` header and logged, unless the gateway was built with
`drop_builtin_tools=False`: then they are a 400 naming the tool.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import anyio

from ..asgi import read_body, send_json
from ..auth import Principal, authenticate, check_model_allowed
from ..errors import GatewayError
from ..ingress.responses import (
    ResponsesStreamEncoder,
    input_items,
    output_items,
    skeleton,
    to_chat,
    to_response,
)
from ..pipeline.attempts import timed_out
from ..pipeline.call import Call
from ..policy import Policy
from ..routing import Plan, Target
from ..schemas import parse_json_body, validate_responses_request
from ..state import StoredResponse
from ..watch import Spawn
from . import Exchange, OpenAIErrors
from .door import Door, first_batch
from .responses_native import NativeResponseEvents, NativeResponseProgress, chat_usage

if TYPE_CHECKING:
    from ..gateway import Gateway

__all__ = ["ResponsesEndpoint", "owner_of"]

logger = logging.getLogger("asgi_llm_gateway")

DROPPED_TOOLS_HEADER = b"x-llm-gateway-dropped-tools"
#: What a tool type may look like to be named in that header (every real one does: `web_search_preview`, …).
_TOKEN = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def owner_of(principal: Any) -> str | None:
    """Whose a stored response is: the principal's name (None when the gateway has no auth)."""
    if principal is None:
        return None
    if isinstance(principal, Principal):
        return principal.name
    return principal if isinstance(principal, str) else repr(principal)


def not_found(response_id: str, param: str | None = None) -> GatewayError:
    return GatewayError(
        f"Response with id '{response_id}' not found.", status=404, param=param, code="response_not_found"
    )


class Conversation:
    """One request with the conversation it continues: `items` is the whole input, history first."""

    __slots__ = ("_chat", "body", "created_at", "dropped", "history", "id", "new_items")

    def __init__(self, body: dict[str, Any], history: list[dict[str, Any]]) -> None:
        self.body = body
        self.history = history
        self.new_items = _with_ids(input_items(body))
        self.id = "resp_" + secrets.token_hex(24)
        self.created_at = int(time.time())
        self.dropped: list[str] = []
        self._chat: dict[str, Any] | None = None

    @property
    def items(self) -> list[dict[str, Any]]:
        return [*self.history, *self.new_items]

    def chat(self, strict_tools: bool) -> dict[str, Any]:
        if self._chat is None:
            self._chat, self.dropped = to_chat(self.body, self.items, strict_tools=strict_tools)
            if self.dropped:
                logger.info("response %s: dropped built-in tools %s", self.id, ", ".join(self.dropped))
        return self._chat

    def native(self, stream: bool) -> dict[str, Any]:
        """The body for a native upstream: the whole conversation as input, no upstream state."""
        body = {key: value for key, value in self.body.items() if key != "previous_response_id"}
        body["input"] = self.items
        body["store"] = False
        body["stream"] = stream
        return body

    def headers(self) -> list[tuple[bytes, bytes]]:
        """The dropped tools' types, for the client; a type is the client's own string, so one that is not a
        plain token is named `unnamed` rather than copied into a header."""
        if not self.dropped:
            return []
        names = [name if _TOKEN.fullmatch(name) else "unnamed" for name in self.dropped]
        return [(DROPPED_TOOLS_HEADER, ", ".join(names).encode())]


class ResponsesEndpoint(OpenAIErrors, Door):
    methods = frozenset({"GET", "HEAD", "POST", "DELETE"})

    async def __call__(self, exchange: Exchange) -> None:
        method, path = exchange.scope["method"], exchange.path
        if path == "/responses":
            if method != "POST":
                raise _method_not_allowed(method, path, "POST")
            await self._create(exchange)
            return
        response_id, _, rest = path[len("/responses/") :].partition("/")
        if rest == "input_items" and method in ("GET", "HEAD"):
            await self._input_items(exchange, response_id)
        elif rest == "" and method in ("GET", "HEAD"):
            stored = await self._owned(exchange, response_id)
            await send_json(exchange.send, 200, stored.response, exchange.request_id)
        elif rest == "" and method == "DELETE":
            await self._owned(exchange, response_id)
            await self.gateway.response_store.delete(response_id)
            body = {"id": response_id, "object": "response", "deleted": True}
            await send_json(exchange.send, 200, body, exchange.request_id)
        else:
            raise GatewayError(f"Unknown request URL: {method} {path}.", status=404, code="unknown_url")

    async def _owned(self, exchange: Exchange, response_id: str) -> StoredResponse:
        principal = await authenticate(self.gateway.auth, exchange.scope)
        stored = await _read(self.gateway, response_id) if response_id else None
        if stored is None or (stored.owner is not None and stored.owner != owner_of(principal)):
            raise not_found(response_id)
        return stored

    async def _input_items(self, exchange: Exchange, response_id: str) -> None:
        stored = await self._owned(exchange, response_id)
        query = parse_qs(exchange.scope.get("query_string", b"").decode("latin-1"))
        items = stored.items[len(stored.items) - stored.input_count - len(output_items(stored.response)) :][
            : stored.input_count
        ]
        if query.get("order", ["desc"])[0] != "asc":
            items = items[::-1]
        limit = _limit(query.get("limit", ["20"])[0])
        after = query.get("after", [None])[0]
        if after is not None:
            ids = [item.get("id") for item in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
        page = items[:limit]
        body = {
            "object": "list",
            "data": page,
            "first_id": page[0].get("id") if page else None,
            "last_id": page[-1].get("id") if page else None,
            "has_more": len(items) > limit,
        }
        await send_json(exchange.send, 200, body, exchange.request_id)

    async def _create(self, exchange: Exchange) -> None:
        started = time.perf_counter()
        gateway = self.gateway
        principal = await authenticate(gateway.auth, exchange.scope)
        body = parse_json_body(await read_body(exchange.scope, exchange.receive, gateway.max_body_size))
        validate_responses_request(body)
        model: str = body["model"]
        plan = gateway.router.plan(model, gateway.health, gateway.rng, time.monotonic())
        check_model_allowed(principal, model)
        conversation = Conversation(body, await self._history(body, principal))
        call = Call(exchange.request_id, "responses", principal, model, body, started)
        await self.serve(
            call,
            exchange,
            partial(self._complete, call, conversation, plan, exchange),
            partial(self._stream, call, conversation, plan, exchange),
        )

    async def _history(self, body: dict[str, Any], principal: Any) -> list[dict[str, Any]]:
        previous = body.get("previous_response_id")
        if not previous:
            return []
        stored = await _read(self.gateway, previous)
        if stored is None or (stored.owner is not None and stored.owner != owner_of(principal)):
            raise not_found(previous, param="previous_response_id")
        return list(stored.items)

    async def _complete(self, call: Call, conversation: Conversation, plan: Plan, exchange: Exchange) -> None:
        attempt = partial(_complete_once, conversation, call, self.gateway.drop_builtin_tools)
        outcome = await self.attempt(call, plan, exchange, attempt)
        if outcome is None:
            return
        response = outcome.result
        response["model"] = outcome.target.name
        await self._store(call, conversation, outcome.target, response)
        headers = [*call.headers(), *conversation.headers()]
        await send_json(exchange.send, 200, response, call.request_id, headers)
        await self.gateway.settle(call, 200)

    async def _stream(
        self, call: Call, conversation: Conversation, plan: Plan, exchange: Exchange, spawn: Spawn
    ) -> None:
        attempt = partial(_open_stream_once, conversation, self.gateway.drop_builtin_tools)
        outcome = await self.attempt(call, plan, exchange, attempt, keep_slot=True)
        if outcome is None:
            return
        native, batches, first = outcome.result
        model = outcome.target.name
        headers = conversation.headers()
        if native:
            progress = NativeResponseProgress(call)
            events = NativeResponseEvents(model)
            await self.relay(call, outcome, first, batches, events, exchange, spawn, progress, headers)
            final = progress.response
        else:
            encoder = ResponsesStreamEncoder(
                skeleton(
                    conversation.body,
                    response_id=conversation.id,
                    created_at=conversation.created_at,
                    model=model,
                )
            )
            await self.relay(call, outcome, first, batches, encoder, exchange, spawn, headers=headers)
            final = encoder.response
        if final is not None:
            with anyio.CancelScope(shield=True):
                await self._store(call, conversation, outcome.target, final)

    async def _store(
        self, call: Call, conversation: Conversation, target: Target, response: dict[str, Any]
    ) -> None:
        if conversation.body.get("store") is False or not isinstance(response.get("id"), str):
            return
        stored = StoredResponse(
            id=response["id"],
            owner=owner_of(call.principal),
            response=response,
            items=[*conversation.items, *output_items(response)],
            input_count=len(conversation.new_items),
            provider=target.provider_name,
            created_at=time.time(),
            previous_response_id=conversation.body.get("previous_response_id"),
        )
        try:
            await self.gateway.response_store.put(stored)
        except Exception:  # the client has its answer; a store outage must not turn it into an error
            logger.exception("storing response %s failed", stored.id)


async def _complete_once(
    conversation: Conversation, call: Call, drop_builtin_tools: bool, target: Target, policy: Policy
) -> dict[str, Any]:
    provider = target.provider
    try:
        with anyio.fail_after(policy.total_timeout):
            if provider.speaks_responses(target.model):
                response = await provider.responses(conversation.native(stream=False), target.model)
                call.usage = chat_usage(response.get("usage"))
                return response
            chat = conversation.chat(strict_tools=not drop_builtin_tools)
            completion = await provider.complete(chat, target.model)
    except TimeoutError:
        raise timed_out(target, f"no answer within {policy.total_timeout:g} s") from None
    call.usage = completion.get("usage")
    return to_response(
        completion,
        response_id=conversation.id,
        created_at=conversation.created_at,
        model=target.name,
        body=conversation.body,
    )


Opened = tuple[bool, AsyncIterator[list[dict[str, Any]]], list[dict[str, Any]]]


async def _open_stream_once(
    conversation: Conversation, drop_builtin_tools: bool, target: Target, policy: Policy
) -> Opened:
    provider = target.provider
    native = provider.speaks_responses(target.model)
    if native:
        batches = provider.responses_batches(conversation.native(stream=True), target.model)
    else:
        chat = conversation.chat(strict_tools=not drop_builtin_tools)
        batches = provider.stream_batches(chat, target.model)
    return native, batches, await first_batch(batches, target, policy)


async def _read(gateway: Gateway, response_id: str) -> StoredResponse | None:
    """A stored response; a store that cannot be reached is a 503 (retryable), never a 500."""
    try:
        return await gateway.response_store.get(response_id)
    except Exception:
        logger.exception("reading response %s from the store failed", response_id)
        raise GatewayError(
            "The gateway's response store is unavailable; try again soon.",
            status=503,
            code="store_unavailable",
        ) from None


def _with_ids(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Input items with ids (input_items lists them by id); ids the client gave are kept."""
    result = []
    for item in items:
        if "id" not in item:
            prefix = "msg" if item.get("type", "message") == "message" else "item"
            item = {"id": f"{prefix}_{secrets.token_hex(16)}", **item}
        result.append(item)
    return result


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 100:
        raise GatewayError("limit must be an integer from 1 to 100.", param="limit", code="invalid_value")
    return value


def _method_not_allowed(method: str, path: str, allowed: str) -> GatewayError:
    return GatewayError(
        f"Method {method} is not allowed on {path}; use {allowed}.", status=405, code="method_not_allowed"
    )
