"""`/v1/responses`: OpenAI's Responses API as a door, with the conversation state the gateway keeps.

    POST /v1/responses:
      auth ─▶ read + validate (Responses schema) ─▶ plan ─▶ history of previous_response_id (ResponseStore)
           ─▶ attempts: native Responses upstream? the whole conversation as input, store=false upstream
                        otherwise: to_chat (ingress) ─▶ provider ─▶ to_response / ResponsesStreamEncoder
           ─▶ JSON response | relay(SSE events) ─▶ store (unless store=false) ─▶ settle
    GET /v1/responses/{id}, GET /v1/responses/{id}/input_items, DELETE /v1/responses/{id}
    `background: true` and POST /v1/responses/{id}/cancel: see responses_background.py

The gateway owns the state, never the upstream: a chain started on one provider continues on any other
(and, with a shared store such as Redis, on any replica). A stored response is readable only by the
principal that created it; anyone else gets the same 404 as for an id that does not exist.

Built-in tools (`web_search`, `file_search`, …) that a translated upstream cannot run are dropped, named in
the `x-llm-gateway-dropped-tools` header and logged, unless the gateway was built with
`drop_builtin_tools=False`: then they are a 400 naming the tool.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import anyio

from ..asgi import Message, Send, send_body, send_json
from ..auth import Principal, authenticate
from ..errors import GatewayError
from ..ingress.responses import (
    ResponsesStreamEncoder,
    failure_error,
    input_items,
    output_items,
    skeleton,
    to_chat,
    to_response,
)
from ..pipeline.attempts import Outcome, WithinTotalTimeout
from ..pipeline.call import CLIENT_CLOSED_REQUEST, Call
from ..pipeline.relay import SSE_HEADERS
from ..policy import Policy
from ..providers.base import ChatItem
from ..routing import Plan, Target
from ..schemas import validate_responses_request
from ..state import StoredResponse
from ..watch import Spawn
from . import Exchange, Headers, OpenAIErrors
from .door import Door, first_batch, read_request
from .responses_background import (
    RUNNING,
    BackgroundRun,
    BackgroundRuns,
    background_needs_store,
    not_cancellable,
    still_running,
    stream_resume_unsupported,
    tolerant,
    with_status,
)
from .responses_native import NativeResponseEvents, NativeResponseProgress, chat_usage

if TYPE_CHECKING:
    from ..gateway import Gateway

__all__ = ["ResponsesEndpoint", "owner_of"]

logger = logging.getLogger("asgi_llm_gateway")

DROPPED_TOOLS_HEADER = b"x-llm-gateway-dropped-tools"
#: What a tool type may look like to be named in that header (every real one does: `web_search_preview`, …).
_TOKEN = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
#: Request fields that are the gateway's business, never a native upstream's: it keeps the conversation and
#: runs background responses itself (the upstream is asked synchronously, with the whole conversation).
_NOT_UPSTREAM = frozenset({"previous_response_id", "background"})
#: `error` of a background response whose run the server cancelled (shutting down) before it ended.
_STOPPED = {"code": "server_error", "message": "The gateway stopped before the response was complete."}
#: `error` of a background response whose run failed unexpectedly (a bug: logged).
_BROKEN = {"code": "server_error", "message": "The gateway failed to complete the response."}
#: `error` of a background response whose upstream stream ended before its final event.
_CUT = {"code": "server_error", "message": "The upstream stream ended before the response was complete."}


def owner_of(principal: Any) -> str | None:
    """Whose a stored response is: the principal's name (None when the gateway has no auth)."""
    if principal is None:
        return None
    if isinstance(principal, Principal):
        return principal.name
    return principal if isinstance(principal, str) else repr(principal)


def not_found(response_id: str, param: str | None = None) -> GatewayError:
    """OpenAI's 404 for a response id; for `previous_response_id`, its own message and code."""
    if param == "previous_response_id":
        return GatewayError(
            f"Previous response with id '{response_id}' not found.",
            status=404,
            param=param,
            code="previous_response_not_found",
        )
    return GatewayError(
        f"Response with id '{response_id}' not found.", status=404, param=param, code="response_not_found"
    )


class Conversation:
    """One request with the conversation it continues: `items` is the whole input, history first."""

    __slots__ = ("_chat", "body", "created_at", "dropped", "history", "id", "new_items")

    def __init__(self, body: dict[str, Any], history: list[dict[str, Any]]) -> None:
        self.body = body
        self.history = history
        self.new_items = _with_ids(_resolved(input_items(body), history))
        self.id = "resp_" + secrets.token_hex(24)
        self.created_at = int(time.time())
        self.dropped: list[str] = []
        self._chat: dict[str, Any] | None = None

    @property
    def items(self) -> list[dict[str, Any]]:
        return [*self.history, *self.new_items]

    @property
    def background(self) -> bool:
        return self.body.get("background") is True

    def skeleton(self, model: str) -> dict[str, Any]:
        """The response before any output (what a stream starts from, and a background response is first)."""
        return skeleton(
            self.body, response_id=self.id, created_at=self.created_at, model=model, items=self.items
        )

    def fields(self, model: str) -> dict[str, Any]:
        """What a native upstream's response gets from the gateway: the model by the gateway's name, and for a
        background response the gateway's id (answered before the upstream was asked) and `background`. The
        upstream was sent `store: false` and no `previous_response_id` (the gateway keeps the state): the
        client gets back what it asked for, as on a translated upstream."""
        fields = {
            "model": model,
            "store": self.body.get("store") is not False,
            "previous_response_id": self.body.get("previous_response_id"),
        }
        if self.background:
            fields.update(id=self.id, background=True)
        return fields

    def chat(self, strict_tools: bool) -> dict[str, Any]:
        if self._chat is None:
            self._chat, self.dropped = to_chat(self.body, self.items, strict_tools=strict_tools)
            if self.dropped:
                logger.info("response %s: dropped built-in tools %s", self.id, ", ".join(self.dropped))
        return self._chat

    def native(self, stream: bool) -> dict[str, Any]:
        """The body for a native upstream: the whole conversation as input, no upstream state."""
        body = {key: value for key, value in self.body.items() if key not in _NOT_UPSTREAM}
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

    def __init__(self, gateway: Gateway) -> None:
        super().__init__(gateway)
        #: The background responses running on this process (one registry per gateway, no global state).
        self.runs = BackgroundRuns()

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
            if _query(exchange).get("stream", ["false"])[0].lower() in ("true", "1"):
                raise stream_resume_unsupported()
            await send_json(exchange.send, 200, stored.response)
        elif rest == "cancel" and method == "POST":
            await self._cancel(exchange, response_id)
        elif rest == "" and method == "DELETE":
            await self._owned(exchange, response_id)
            await self.runs.cancel(response_id)  # a deleted response's run has nowhere to go
            await self.gateway.response_store.delete(response_id)
            body = {"id": response_id, "object": "response", "deleted": True}
            await send_json(exchange.send, 200, body)
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
        query = _query(exchange)
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
        await send_json(exchange.send, 200, body)

    async def _create(self, exchange: Exchange) -> None:
        principal, body, model, plan, started = await read_request(self.gateway, exchange, _validate)
        conversation = Conversation(body, await self._history(body, principal))
        call = Call(exchange.request_id, "responses", principal, model, body, started)
        if conversation.background:
            exchange = exchange._replace(send=tolerant(exchange.send))
            run = partial(self._background, call, conversation, plan, exchange)
            await self.serve(call, exchange, run, run, detached=True)
            return
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
        status = stored.response.get("status")
        if status in RUNNING:  # its items are not final yet (and would not link: see state)
            raise still_running(previous, status)
        return list(stored.items)

    async def _complete(self, call: Call, conversation: Conversation, plan: Plan, exchange: Exchange) -> None:
        attempt = partial(_complete_once, conversation, call, self.gateway.drop_builtin_tools)
        outcome = await self.attempt(call, plan, exchange, attempt)
        if outcome is None:
            return
        response = outcome.result
        response.update(conversation.fields(outcome.target.name))
        await self._store(call, conversation, response, outcome.target.provider_name)
        headers = [*call.headers(), *conversation.headers()]
        await send_json(exchange.send, 200, response, headers)
        await self.gateway.settle(call, 200)

    async def _stream(
        self, call: Call, conversation: Conversation, plan: Plan, exchange: Exchange, spawn: Spawn
    ) -> None:
        attempt = partial(_open_stream_once, conversation, self.gateway.drop_builtin_tools)
        outcome = await self.attempt(call, plan, exchange, attempt, keep_slot=True)
        if outcome is None:
            return
        if conversation.body.get("store") is False:  # nothing to keep: no hook on the sends, no shield
            await self._relay(call, conversation, outcome, exchange, spawn)
            return
        stored = False

        async def store(final: dict[str, Any]) -> None:
            nonlocal stored
            stored = True
            await self._store(call, conversation, final, outcome.target.provider_name)

        final = await self._relay(call, conversation, outcome, exchange, spawn, before_final=store)
        if final is not None and not stored:
            with anyio.CancelScope(shield=True):
                await store(final)

    async def _relay(
        self,
        call: Call,
        conversation: Conversation,
        outcome: Outcome[Opened],
        exchange: Exchange,
        spawn: Spawn,
        before_final: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    ) -> dict[str, Any] | None:
        """Relay the opened stream as `response.*` events (the call is settled after it); the response it
        ended with (`failed` after a failure), or None when a native stream gave none. `before_final` gets
        that response before the bytes that end the stream leave: a client that continues the chain the
        moment it reads `response.completed` must find it stored (on any replica)."""
        native, batches, first = outcome.result
        model = outcome.target.name
        headers = conversation.headers()
        if native:
            progress = NativeResponseProgress(call)
            events = NativeResponseEvents(conversation.fields(model))
            sending = _before_final(exchange, lambda: progress.response, before_final)
            await self.relay(call, outcome, first, batches, events, sending, spawn, progress, headers)
            return progress.response
        encoder = ResponsesStreamEncoder(conversation.skeleton(model))
        sending = _before_final(exchange, lambda: encoder.response, before_final)
        await self.relay(call, outcome, first, batches, encoder, sending, spawn, headers=headers)
        return encoder.response

    # -- background responses (responses_background.py) ----------------------------------------------------

    async def _background(
        self,
        call: Call,
        conversation: Conversation,
        plan: Plan,
        exchange: Exchange,
        spawn: Spawn | None = None,
    ) -> None:
        """`background: true`: admitted and stored `queued` (a refusal or a store outage is answered now),
        then run here to its end whatever the client does; streamed when `spawn` is given, else answered
        `queued`."""
        if not await self.admit(call, plan, exchange):
            return
        queued = with_status(conversation.skeleton(call.model), "queued")
        try:
            await self.gateway.response_store.put(self._stored(call, conversation, queued, None))
        except Exception:
            logger.exception("storing response %s failed", conversation.id)
            await self.refuse(call, exchange, store_unavailable())
            return
        with self.runs.run(conversation.id) as run:
            await self._run(call, conversation, plan, exchange, spawn, run, queued)

    async def _run(
        self,
        call: Call,
        conversation: Conversation,
        plan: Plan,
        exchange: Exchange,
        spawn: Spawn | None,
        run: BackgroundRun,
        queued: dict[str, Any],
    ) -> None:
        """A background response's run, from its `queued` answer (when not streamed): each state stored, one
        terminal state whatever ends it, and the call settled once (by the relay, for a stream that
        opened)."""
        gateway = self.gateway
        running = with_status(queued, "in_progress")
        status, failure, settled = CLIENT_CLOSED_REQUEST, None, False
        try:
            if spawn is None:
                await send_json(exchange.send, 200, queued, call.headers())
            await self._advance(call, conversation, running)
            if spawn is None:
                attempt = partial(_complete_once, conversation, call, gateway.drop_builtin_tools)
                completed = await gateway.attempts.run(call, plan.targets, plan.policy, attempt)
                completed.result.update(conversation.fields(completed.target.name))
                final: dict[str, Any] | None = completed.result
                status, target = 200, completed.target
            else:
                opener = partial(_open_stream_once, conversation, gateway.drop_builtin_tools)
                opened = await gateway.attempts.run(call, plan.targets, plan.policy, opener, keep_slot=True)
                settled, target = True, opened.target  # the relay settles the call
                final = await self._relay(call, conversation, opened, exchange, spawn)
            with anyio.CancelScope(shield=True):
                ended = final if final is not None else with_status(running, "failed", _CUT)
                await self._advance(call, conversation, ended, target.provider_name)
        except GatewayError as error:  # every attempt failed (a stream's: before its first byte)
            status, failure = error.status, error
            if spawn is not None:  # a stream that never began still tells the id and the failure, in events
                failed = ResponsesStreamEncoder(conversation.skeleton(call.model)).close(error)
                await _send_events(exchange.send, failed, call.headers())
            with anyio.CancelScope(shield=True):
                await self._advance(call, conversation, with_status(running, "failed", failure_error(error)))
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                cancelled = run.cancel_requested
                ended = (
                    with_status(running, "cancelled")
                    if cancelled
                    else with_status(running, "failed", _STOPPED)
                )
                await self._advance(call, conversation, ended)
            raise
        except Exception:
            logger.exception("background response %s failed", conversation.id)
            status, failure = 500, GatewayError(_BROKEN["message"], status=500, code="internal_error")
            with anyio.CancelScope(shield=True):
                await self._advance(call, conversation, with_status(running, "failed", _BROKEN))
        finally:
            if not settled:
                with anyio.CancelScope(shield=True):
                    await gateway.settle(call, status, failure)

    async def _advance(
        self, call: Call, conversation: Conversation, response: dict[str, Any], provider: str | None = None
    ) -> None:
        """Store a background response's next state, unless it was cancelled (on any replica) or deleted
        since: the store is re-read first (the race this leaves is in responses_background.py)."""
        store = self.gateway.response_store
        try:
            current = await store.get(conversation.id)
            if current is None or current.response.get("status") == "cancelled":
                logger.info(
                    "background response %s is cancelled or deleted: its run stores nothing", conversation.id
                )
                return
            await store.put(self._stored(call, conversation, response, provider))
        except Exception:  # nobody waits for the answer: it is logged, and the response stays as it was
            logger.exception("storing response %s failed", conversation.id)

    async def _cancel(self, exchange: Exchange, response_id: str) -> None:
        """POST /v1/responses/{id}/cancel: a running background response ends `cancelled` (a run on this
        process is stopped and waited for; one elsewhere is marked in the store); one that ended already is
        answered as it is, so a second cancel answers the first's result."""
        stored = await self._owned(exchange, response_id)
        if stored.response.get("background") is not True:
            raise not_cancellable()
        answer = stored.response
        if answer.get("status") in RUNNING:
            if await self.runs.cancel(response_id):
                # the run stored how it ended: cancelled, or its result if that came first
                ended = await _read(self.gateway, response_id)
                if ended is None:  # deleted meanwhile
                    raise not_found(response_id)
                answer = ended.response
            else:  # it runs on another replica (or nowhere any more): mark it in the store
                answer = with_status(answer, "cancelled")
                try:
                    await self.gateway.response_store.put(dataclasses.replace(stored, response=answer))
                except Exception:
                    logger.exception("storing response %s failed", response_id)
                    raise store_unavailable() from None
        await send_json(exchange.send, 200, answer)

    # -- the store -------------------------------------------------------------------------------------------

    def _stored(
        self, call: Call, conversation: Conversation, response: dict[str, Any], provider: str | None
    ) -> StoredResponse:
        return StoredResponse(
            id=response["id"],
            owner=owner_of(call.principal),
            response=response,
            items=[*conversation.items, *output_items(response)],
            input_count=len(conversation.new_items),
            provider=provider,
            created_at=time.time(),
            previous_response_id=conversation.body.get("previous_response_id"),
        )

    async def _store(
        self, call: Call, conversation: Conversation, response: dict[str, Any], provider: str | None
    ) -> None:
        if conversation.body.get("store") is False or not isinstance(response.get("id"), str):
            return
        stored = self._stored(call, conversation, response, provider)
        try:
            await self.gateway.response_store.put(stored)
        except Exception:  # the client has its answer; a store outage must not turn it into an error
            logger.exception("storing response %s failed", stored.id)


async def _complete_once(
    conversation: Conversation, call: Call, drop_builtin_tools: bool, target: Target, policy: Policy
) -> dict[str, Any]:
    provider = target.provider
    async with WithinTotalTimeout(target, policy):
        if provider.speaks_responses(target.model):
            response = await provider.responses(conversation.native(stream=False), target.model)
            call.usage = chat_usage(response.get("usage"))
            return response
        chat = conversation.chat(strict_tools=not drop_builtin_tools)
        completion = await provider.complete(chat, target.model)
    call.usage = completion.get("usage")
    return to_response(
        completion,
        response_id=conversation.id,
        created_at=conversation.created_at,
        model=target.name,
        body=conversation.body,
        items=conversation.items,
    )


#: Whether the events are native, the stream, its first batch (native events, or `chat_batches` items).
Opened = tuple[bool, AsyncIterator[list[ChatItem]], list[ChatItem]]


async def _open_stream_once(
    conversation: Conversation, drop_builtin_tools: bool, target: Target, policy: Policy
) -> Opened:
    provider = target.provider
    native = provider.speaks_responses(target.model)
    if native:
        batches: AsyncIterator[list[Any]] = provider.responses_batches(
            conversation.native(stream=True), target.model
        )
    else:
        chat = conversation.chat(strict_tools=not drop_builtin_tools)
        batches = provider.chat_batches(chat, target.model)  # text runs come as they are
    return native, batches, await first_batch(batches, target, policy)


async def _read(gateway: Gateway, response_id: str) -> StoredResponse | None:
    """A stored response; a store that cannot be reached is a 503 (retryable), never a 500."""
    try:
        return await gateway.response_store.get(response_id)
    except Exception:
        logger.exception("reading response %s from the store failed", response_id)
        raise store_unavailable() from None


def store_unavailable() -> GatewayError:
    """The store cannot be reached: a 503 (retryable), never a 500."""
    return GatewayError(
        "The gateway's response store is unavailable; try again soon.", status=503, code="store_unavailable"
    )


async def _send_events(send: Send, events: bytes, headers: Headers = ()) -> None:
    """A whole event stream in one body (a stream that failed before it began)."""
    start_headers = [*SSE_HEADERS, *headers]
    await send({"type": "http.response.start", "status": 200, "headers": start_headers})
    await send_body(send, events, more=False)


def _query(exchange: Exchange) -> dict[str, list[str]]:
    return parse_qs(exchange.scope.get("query_string", b"").decode("latin-1"))


def _before_final(
    exchange: Exchange,
    final: Callable[[], dict[str, Any] | None],
    hook: Callable[[dict[str, Any]], Awaitable[None]] | None,
) -> Exchange:
    """`exchange` whose sends first hand the stream's final response to `hook`, once, as soon as there is
    one (shielded: a client that leaves then must not cost the chain its last turn)."""
    if hook is None:
        return exchange
    send, handed = exchange.send, False

    async def sending(message: Message) -> None:
        nonlocal handed
        if not handed and (response := final()) is not None:
            handed = True
            with anyio.CancelScope(shield=True):
                await hook(response)
        await send(message)

    return exchange._replace(send=sending)


def _validate(body: dict[str, Any]) -> None:
    validate_responses_request(body)
    if body.get("background") and body.get("store") is False:
        raise background_needs_store()


def _resolved(items: list[dict[str, Any]], history: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """`item_reference` items replaced by the items they name, from the conversation this request continues:
    the gateway keeps the state, so neither a native upstream (sent `store: false`) nor a translated one could
    resolve them. An id that is not in that conversation is a 404 naming the item."""
    if not any(item.get("type") == "item_reference" for item in items):
        return items
    known = {item["id"]: item for item in history if isinstance(item.get("id"), str)}
    resolved = []
    for index, item in enumerate(items):
        if item.get("type") == "item_reference":
            found = known.get(item.get("id"))
            if found is None:
                raise GatewayError(
                    f"Item with id '{item.get('id')}' not found.",
                    status=404,
                    param=f"input[{index}].id",
                    code="item_not_found",
                )
            item = found
        resolved.append(item)
    return resolved


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
