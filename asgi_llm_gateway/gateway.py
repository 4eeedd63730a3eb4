"""The Gateway ASGI app: construction, lifecycle, and dispatch over its route table. The map:

    ASGI ─▶ Gateway: route table {path: endpoint} ─▶ endpoint (endpoints/…)
         ─▶ auth hook ─▶ read body (size-capped) ─▶ parse JSON ─▶ validate (JSON Schema) ─▶ canonical
         ─▶ Router.plan: model → [targets] (checks the model id; cooling targets last)
         ─▶ hooks: request_started, admit                                   (pipeline/hooks.py)
         ─▶ Attempts.run: retry, back off, fall back, slots, time budget   (pipeline/attempts.py)
              └─ attempt(target): provider.complete / provider.stream_batches  (providers/…)
         ─▶ answer: JSON | relay(door's encoder): SSE, idle watch, end checks   (pipeline/relay.py)
         ─▶ settle: the call's record to hooks (on_usage, …)                   (pipeline/call.py)

Auth runs before the body is read, so an unauthenticated client cannot make the gateway buffer or parse
anything. While an upstream call runs, a watcher listens for the client's disconnect and cancels the call,
so an abandoned request never holds an upstream connection. Errors are answered in the OpenAI envelope.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Mapping, Sequence
from types import TracebackType

import anyio

from .asgi import ClientGone, Receive, Scope, Send, accept_request_id, local_path, stamped
from .auth import AuthHook
from .endpoints import Endpoint, Exchange, OpenAIErrors
from .endpoints.chat import ChatEndpoint
from .endpoints.embeddings import EmbeddingsEndpoint
from .endpoints.health import HealthEndpoint
from .endpoints.messages import CountTokensEndpoint, MessagesEndpoint
from .endpoints.models import ModelsEndpoint
from .endpoints.responses import ResponsesEndpoint
from .errors import GatewayError
from .pipeline.attempts import Attempts
from .pipeline.call import Call
from .pipeline.hooks import HookChain, Hooks, UsageHooks
from .policy import DEFAULT_POLICY, HealthBook, Policy
from .pricing import Price, target_cost
from .providers.base import Provider
from .rewrite import Rewrite
from .routing import Router, RouteSpec
from .state import ResponseStore
from .state.memory import MemoryResponseStore
from .usage import UsageHook
from .watch import Lookout

__all__ = ["Gateway"]

logger = logging.getLogger("asgi_llm_gateway")

#: Large enough for several base64 images in one request.
DEFAULT_MAX_BODY_SIZE = 32 * 1024 * 1024
#: Who answers errors for paths no endpoint serves.
_NO_ENDPOINT = OpenAIErrors()


class Gateway:
    """An OpenAI-compatible LLM gateway, as an ASGI 3 application.

    Mounted at path P it serves `P/v1/chat/completions` and `P/v1/embeddings` (POST), OpenAI's
    `P/v1/responses` (POST; GET and DELETE `P/v1/responses/{id}`, GET `…/input_items`, POST `…/cancel`),
    Anthropic's `P/v1/messages` and
    `P/v1/messages/count_tokens` (POST), `P/v1/models` and `P/v1/models/{id}` (GET), and `P/healthz` /
    `P/readyz` for load balancers (the `/v1` is optional). `hooks` see every call's
    steps (see `Hooks`); `on_usage` is the simplest of them, called with each call's `UsageRecord`, which
    carries its cost when `prices` are given (e.g. `asgi_llm_gateway.pricing.DEFAULT_PRICES`). `rewrite`
    (e.g. a `RequestPolicy`) may change each request after validation, before it is routed.
    """

    def __init__(
        self,
        providers: Mapping[str, Provider] | None = None,
        routes: Mapping[str, RouteSpec] | None = None,
        auth: AuthHook | None = None,
        on_usage: UsageHook | None = None,
        *,
        policy: Policy = DEFAULT_POLICY,
        provider_policies: Mapping[str, Policy] | None = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        hooks: Sequence[Hooks] = (),
        response_store: ResponseStore | None = None,
        drop_builtin_tools: bool = True,
        prices: Mapping[str, Price] | None = None,
        rewrite: Rewrite | None = None,
        health: HealthBook | None = None,
    ) -> None:
        if providers is None:
            from .providers.echo import EchoProvider

            providers = {"echo": EchoProvider()}
        for name in providers:
            if not name or "/" in name:
                raise ValueError(f"provider name {name!r} must be non-empty and contain no '/'")
        self.providers = dict(providers)
        self.router = Router(self.providers, routes or {})
        self.auth = auth
        self.on_usage = on_usage
        self.max_body_size = max_body_size
        self.policy = policy
        self.provider_policies = dict(provider_policies or {})
        unknown = set(self.provider_policies) - set(self.providers)
        if unknown:
            raise ValueError(f"provider_policies names unknown providers: {sorted(unknown)}")
        #: Where `/v1/responses` keeps conversations: in memory unless given (e.g. `RedisResponseStore`).
        # `is None`, not `or`: an empty MemoryResponseStore has len 0 and would be swapped for a default one.
        self.response_store: ResponseStore = (
            response_store if response_store is not None else MemoryResponseStore()
        )
        #: Built-in Responses tools a translated upstream cannot run: dropped (named in a header), or a 400.
        self.drop_builtin_tools = drop_builtin_tools
        #: What usage costs (`UsageRecord.cost`); None: no cost computed, no price looked up.
        self.prices = prices
        #: The host's last word on each validated request, before routing (see `asgi_llm_gateway.rewrite`).
        self.rewrite = rewrite
        #: The circuit breaker's book: this process's own unless given. A book that is also a hook (e.g.
        #: `SharedHealth`, which shares cooldowns through Redis) joins the hooks: that is how it syncs.
        book = health if health is not None else HealthBook()
        chain = [*hooks, *([book] if isinstance(book, Hooks) and book not in hooks else [])]
        self.hooks = HookChain.of([*chain, UsageHooks(on_usage)] if on_usage else chain)
        #: Starts the disconnect watch of plain calls that last (`watch.Lookout`).
        self.lookout = Lookout()
        self.attempts = Attempts(self.policy_for, health=book, hooks=self.hooks)
        models = ModelsEndpoint(self)
        responses = ResponsesEndpoint(self)
        probes = HealthEndpoint()
        #: Paths below the mount (and the optional `/v1`) → endpoints; a key ending in "/" is a prefix.
        self.routes: Mapping[str, Endpoint] = {
            "/chat/completions": ChatEndpoint(self),
            "/embeddings": EmbeddingsEndpoint(self),
            "/messages": MessagesEndpoint(self),
            "/messages/count_tokens": CountTokensEndpoint(self),
            "/responses": responses,
            "/responses/": responses,
            "/models": models,
            "/models/": models,
            "/healthz": probes,
            "/readyz": probes,
        }
        self._prefixes = tuple((path, found) for path, found in self.routes.items() if path.endswith("/"))

    def policy_for(self, provider_name: str) -> Policy:
        """The policy for calls to one provider: its own, else the gateway's."""
        return self.provider_policies.get(provider_name, self.policy)

    @property
    def health(self) -> HealthBook:
        """Which targets are cooling down after failures (shared by every call)."""
        return self.attempts.health

    @property
    def rng(self) -> random.Random:
        """The randomness behind weighted routing and retry jitter (tests seed it)."""
        return self.attempts.rng

    @rng.setter
    def rng(self, value: random.Random) -> None:
        self.attempts.rng = value

    async def settle(self, call: Call, status: int, error: GatewayError | None = None) -> None:
        """The call is over: hand its record to the hooks (`on_usage` among them). Shielded: once the answer
        is complete the client's `http.disconnect` makes the disconnect watch cancel the request, and a hook
        that awaits (a database write, a limits settlement) must still get its record."""
        if self.hooks is not None:
            cost = None
            if self.prices is not None and call.usage is not None and call.target is not None:
                cost = target_cost(self.prices, call.target.name, call.target.model, call.usage)
            with anyio.CancelScope(shield=True):
                await self.hooks.request_ended(call, call.record(status, error, cost))

    # -- lifecycle -----------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close every provider's connections, the hooks (e.g. a Redis limiter's pool) and the response store.
        Hosts call this on shutdown (mounted apps get no lifespan)."""
        closers = [provider.aclose for provider in self.providers.values()]
        if self.hooks is not None:
            closers.append(self.hooks.aclose)
        for aclose in [*closers, self.response_store.aclose]:
            try:
                await aclose()
            except Exception:  # one failing to close must not keep the others open
                logger.exception("closing %r failed", aclose)

    async def __aenter__(self) -> Gateway:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- ASGI ------------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1000})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _match(self, path: str) -> Endpoint | None:
        endpoint = self.routes.get(path)
        if endpoint is None:
            endpoint = next((found for prefix, found in self._prefixes if path.startswith(prefix)), None)
        return endpoint

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = accept_request_id(scope)
        path = local_path(scope)
        endpoint = self._match(path)
        door = endpoint or _NO_ENDPOINT
        stamp = request_id.encode()
        send = stamped(send, [(name, stamp) for name in door.request_id_headers])
        exchange = Exchange(scope, receive, send, request_id, path)
        try:
            if endpoint is None:
                raise GatewayError(
                    f"Unknown request URL: {scope['method']} {path}. "
                    "Use /v1/chat/completions, /v1/responses, /v1/messages, /v1/embeddings or /v1/models.",
                    status=404,
                    code="unknown_url",
                )
            if scope["method"] not in endpoint.methods:
                allowed = " or ".join(sorted(endpoint.methods - {"HEAD"}))
                raise GatewayError(
                    f"Method {scope['method']} is not allowed on {path}; use {allowed}.",
                    status=405,
                    code="method_not_allowed",
                )
            await endpoint(exchange)
        except GatewayError as error:
            await door.send_error(exchange, error)
        except ClientGone:
            return
        except Exception:
            # A bug in a host's hook (or ours): log it, and still answer in the door's envelope.
            logger.exception("request %s failed", request_id)
            with contextlib.suppress(Exception):  # the response may already have started
                failure = GatewayError(
                    "The gateway failed to handle the request.", status=500, code="internal_error"
                )
                await door.send_error(exchange, failure)
