"""The Gateway ASGI app: its routes and the request pipeline, in one place.

    HTTP ─▶ route ─▶ auth hook ─▶ read body (size-capped) ─▶ parse JSON ─▶ validate (JSON Schema)
         ─▶ policy (allowed models) ─▶ resolve model → [targets]
         ─▶ for target in targets: provider.complete / provider.stream   (fallback on retryable errors)
         ─▶ OpenAI-shaped result ─▶ JSON response | SSE stream ─▶ usage hook

Auth runs before the body is read, so an unauthenticated client cannot make the gateway buffer or parse
anything. While an upstream call runs, a watcher listens for the client's disconnect and cancels the call,
so an abandoned request never holds an upstream connection.
"""

from __future__ import annotations

import contextlib
import logging
import random
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import unquote

import anyio
from starlette.requests import Request

from .asgi import ClientGone, Receive, Scope, Send, local_path, read_body, send_body, send_error, send_json
from .auth import AuthHook, Principal
from .errors import GatewayError
from .legacy import as_function_call_chunk, as_function_call_completion, uses_functions, with_tools
from .model_ids import check_model_id
from .policy import DEFAULT_POLICY, HealthBook, Policy, retry_delay
from .providers.base import Provider, aclose_iterator
from .providers.streams import stream_ended_early
from .routing import Router, RouteSpec, Target
from .schemas import parse_json_body, validate_chat_request
from .usage import UsageHook, UsageRecord
from .watch import Spawn, watched
from .wire import SSE_DONE, sse_event

__all__ = ["Gateway"]

logger = logging.getLogger("asgi_llm_gateway")

#: The status usage records carry for calls the client abandoned (nginx's convention).
CLIENT_CLOSED_REQUEST = 499
#: Large enough for several base64 images in one request.
DEFAULT_MAX_BODY_SIZE = 32 * 1024 * 1024
MODELS_TIMEOUT = 10.0
#: Upstream model lists change rarely; a listing is reused this long rather than fetched on every call.
MODELS_CACHE_SECONDS = 300.0


class Gateway:
    """An OpenAI-compatible chat-completions gateway, as an ASGI 3 application.

    Mounted at path P it serves `P/v1/chat/completions` (POST), `P/v1/models` and `P/v1/models/{id}` (GET),
    and `P/healthz` / `P/readyz` for load balancers.
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
        self.health = HealthBook()
        self.rng = random.Random()
        self._limiters: dict[str, anyio.CapacityLimiter] = {}
        self._model_lists: dict[str, tuple[float, list[str]]] = {}  # provider → (expires, model ids)

    def policy_for(self, provider_name: str) -> Policy:
        return self.provider_policies.get(provider_name, self.policy)

    async def acquire_slot(self, provider_name: str, policy: Policy) -> Callable[[], None] | None:
        """Wait for one of the provider's concurrency slots; 503 when the queue wait runs out."""
        limit = self.policy_for(provider_name).max_concurrency
        if limit is None:
            return None
        limiter = self._limiters.get(provider_name)
        if limiter is None:  # created lazily: a limiter belongs to the running event loop
            limiter = self._limiters[provider_name] = anyio.CapacityLimiter(limit)
        token = object()
        with anyio.move_on_after(policy.queue_timeout):
            await limiter.acquire_on_behalf_of(token)
            return lambda: limiter.release_on_behalf_of(token)
        raise GatewayError(
            f"The provider '{provider_name}' is at its limit of {limit} concurrent requests; try again soon.",
            status=503,
            code="provider_busy",
            headers={"retry-after": "1"},
        )

    # -- lifecycle -----------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close every provider's connections. Hosts call this on shutdown (mounted apps get no lifespan)."""
        for provider in self.providers.values():
            try:
                await provider.aclose()
            except Exception:  # one provider failing to close must not keep the others open
                logger.exception("closing a provider failed")

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

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = "req_" + secrets.token_hex(12)
        method = scope["method"]
        path = local_path(scope)
        try:
            if path == "/chat/completions":
                if method != "POST":
                    raise _method_not_allowed(method, path, "POST")
                await self._chat(scope, receive, send, request_id)
            elif path in ("/healthz", "/readyz"):
                # Liveness/readiness for load balancers: answers without touching any upstream.
                await send_json(send, 200, {"status": "ok"}, request_id)
            elif path == "/models" or path.startswith("/models/"):
                if method not in ("GET", "HEAD"):
                    raise _method_not_allowed(method, path, "GET")
                principal = await self._authenticate(scope)
                model_id = unquote(path[len("/models/") :]) if path != "/models" else None
                if model_id is not None:
                    check_model_id(model_id)
                body = await self._models(model_id, principal)
                await send_json(send, 200, body, request_id)
            else:
                raise GatewayError(
                    f"Unknown request URL: {method} {path}. Use /v1/chat/completions or /v1/models.",
                    status=404,
                    code="unknown_url",
                )
        except GatewayError as error:
            await send_error(send, error, request_id)
        except ClientGone:
            return
        except Exception:
            # A bug in a host's hook (or ours): log it, and still answer in OpenAI's shape.
            logger.exception("request %s failed", request_id)
            with contextlib.suppress(Exception):  # the response may already have started
                await send_error(
                    send,
                    GatewayError(
                        "The gateway failed to handle the request.", status=500, code="internal_error"
                    ),
                    request_id,
                )

    # -- /v1/chat/completions --------------------------------------------------------------------------

    async def _chat(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        started = time.perf_counter()
        principal = await self._authenticate(scope)
        body = parse_json_body(await read_body(scope, receive, self.max_body_size))
        validate_chat_request(body)
        model: str = body["model"]
        check_model_id(model)  # it goes into response headers and, for some providers, upstream URLs
        if isinstance(principal, Principal) and not principal.may_use(model):
            raise GatewayError(
                f"The key in use may not call the model '{model}'.",
                status=403,
                param="model",
                code="model_not_allowed",
            )
        targets, route_policy = self.router.plan(model, self.health, self.rng, time.monotonic())
        legacy_answer = False
        if uses_functions(body):  # deprecated function calling: every provider gets tools
            legacy_answer = body.get("functions") is not None
            body = with_tools(body)
        call = _Call(self, request_id, principal, model, body, started, legacy_answer)
        async with watched(receive) as spawn:
            try:
                if body.get("stream"):
                    await call.stream(targets, route_policy, send, spawn)
                else:
                    await call.complete(targets, route_policy, send)
            except OSError:  # the client went away while we were sending
                pass

    async def _authenticate(self, scope: Scope) -> Any:
        if self.auth is None:
            return None
        principal = await self.auth(Request(scope))
        if principal is None:
            raise GatewayError(
                "Incorrect API key provided. Send your gateway key as 'Authorization: Bearer <key>'.",
                status=401,
                code="invalid_api_key",
            )
        return principal

    # -- /v1/models --------------------------------------------------------------------------------

    async def _models(self, model_id: str | None, principal: Any) -> dict[str, Any]:
        allowed = principal.may_use if isinstance(principal, Principal) else None
        if model_id is not None:
            self.router.resolve(model_id)  # 404 for what cannot be called
            if allowed is not None and not allowed(model_id):
                raise GatewayError(
                    f"The model '{model_id}' does not exist.", status=404, code="model_not_found"
                )
            owner = "gateway" if model_id in self.router.routes else model_id.partition("/")[0]
            return _model_object(model_id, owner)
        data = [_model_object(alias, "gateway") for alias in self.router.routes]
        listed: dict[str, list[str]] = {}
        now = time.monotonic()

        async def collect(name: str, provider: Provider) -> None:
            cached = self._model_lists.get(name)
            if cached is not None and cached[0] > now:
                listed[name] = cached[1]
                return
            with anyio.move_on_after(MODELS_TIMEOUT):
                try:
                    listed[name] = await provider.list_models()
                    self._model_lists[name] = (now + MODELS_CACHE_SECONDS, listed[name])
                except GatewayError as error:
                    logger.warning("listing models of provider %r failed: %s", name, error.message)
                except Exception:  # one broken provider must not hide the others' models
                    logger.exception("listing models of provider %r failed", name)

        async with anyio.create_task_group() as group:
            for name, provider in self.providers.items():
                group.start_soon(collect, name, provider)
        for name in self.providers:
            data.extend(_model_object(f"{name}/{model}", name) for model in listed.get(name, ()))
        if allowed is not None:
            data = [model for model in data if allowed(model["id"])]
        return {"object": "list", "data": data}


class _Call:
    """One chat-completions call: tries the planned targets under the policy, and reports usage once."""

    __slots__ = (
        "attempts",
        "body",
        "gateway",
        "legacy_answer",
        "model",
        "policy",
        "principal",
        "release",
        "request_id",
        "started",
        "target",
        "usage",
    )

    def __init__(
        self,
        gateway: Gateway,
        request_id: str,
        principal: Any,
        model: str,
        body: dict[str, Any],
        started: float,
        legacy_answer: bool = False,
    ) -> None:
        self.gateway = gateway
        #: The client asked with `functions`: answer with `function_call` (see legacy.py).
        self.legacy_answer = legacy_answer
        self.request_id = request_id
        self.principal = principal
        self.model = model
        self.body = body
        self.started = started
        self.target: Target | None = None
        self.policy = gateway.policy
        self.usage: dict[str, Any] | None = None
        self.attempts = 0
        self.release: Callable[[], None] | None = None  # frees the concurrency slot a stream holds

    def _headers(self) -> list[tuple[bytes, bytes]]:
        assert self.target is not None
        return [
            (b"x-llm-gateway-provider", self.target.provider_name.encode()),
            (b"x-llm-gateway-target", self.target.name.encode()),
            (b"x-llm-gateway-attempts", str(self.attempts).encode()),
        ]

    async def _answer_or_error(
        self,
        targets: Sequence[Target],
        route_policy: Policy | None,
        attempt: Callable[[Target], Awaitable[Any]],
        send: Send,
    ) -> Any:
        """The first successful attempt's result; None once the client has been sent the error."""
        try:
            return await self._attempt_all(targets, route_policy, attempt)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                self._release()
                await self._report(CLIENT_CLOSED_REQUEST)
            raise
        except GatewayError as error:
            await send_error(send, error, self.request_id, self._headers() if self.target else ())
            await self._report(error.status, error)
            return None

    async def complete(self, targets: Sequence[Target], route_policy: Policy | None, send: Send) -> None:
        result = await self._answer_or_error(targets, route_policy, self._complete_once, send)
        if result is None:
            return
        assert self.target is not None
        result["model"] = self.target.name
        if self.legacy_answer:
            as_function_call_completion(result)
        self.usage = result.get("usage")
        await send_json(send, 200, result, self.request_id, self._headers())
        await self._report(200)

    async def stream(
        self, targets: Sequence[Target], route_policy: Policy | None, send: Send, spawn: Spawn
    ) -> None:
        opened = await self._answer_or_error(targets, route_policy, self._open_stream_once, send)
        if opened is None:
            return
        batches, first = opened
        assert self.target is not None
        include_usage = bool((self.body.get("stream_options") or {}).get("include_usage"))
        failure: GatewayError | None = None
        status = CLIENT_CLOSED_REQUEST  # unless the stream runs to its end
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        (b"cache-control", b"no-cache"),
                        (b"x-accel-buffering", b"no"),
                        (b"x-request-id", self.request_id.encode()),
                        *self._headers(),
                    ],
                }
            )
            failure = await self._pump(first, batches, send, include_usage, spawn)
            status = failure.status if failure else 200
        finally:
            with anyio.CancelScope(shield=True):
                await aclose_iterator(batches)
                self._release()
                await self._report(status, failure)

    async def _pump(
        self,
        first: list[dict[str, Any]],
        batches: AsyncIterator[list[dict[str, Any]]],
        send: Send,
        include_usage: bool,
        spawn: Spawn,
    ) -> GatewayError | None:
        """Relay chunks as SSE events, one send per batch; returns the error that ended the stream, if any."""
        assert self.target is not None
        model = self.target.name
        legacy_answer = self.legacy_answer
        idle = _IdleWatch(self.policy.idle_timeout)
        open_choices: set[int] = set()
        finished = False
        batch: list[dict[str, Any]] | None = first
        failure: GatewayError | None = None
        try:
            with anyio.CancelScope() as idle.scope:
                spawn(idle.run)
                while batch is not None:
                    events: list[bytes] = []
                    for chunk in batch:
                        chunk["model"] = model
                        choices = chunk.get("choices")
                        if not choices:
                            if chunk.get("usage") is not None:
                                self.usage = chunk["usage"]
                                if include_usage:
                                    events.append(sse_event(chunk))
                            continue
                        for choice in choices:
                            if choice.get("finish_reason"):
                                open_choices.discard(choice["index"])
                                finished = True
                            else:
                                open_choices.add(choice["index"])
                        if include_usage:
                            chunk["usage"] = None
                        elif "usage" in chunk:
                            del chunk["usage"]
                        if legacy_answer:
                            as_function_call_chunk(chunk)
                        events.append(sse_event(chunk))
                    if events:
                        await send_body(send, events[0] if len(events) == 1 else b"".join(events))
                    batch = await anext(batches, None)
                    idle.last = time.monotonic()
            idle.scope.cancel()  # stops the watch
            if idle.expired:
                failure = _timed_out(self.target, f"no chunk for {idle.timeout:g} s")
            elif open_choices or not finished:
                failure = stream_ended_early(self.target.provider.kind)
        except GatewayError as error:
            failure = error
        except Exception as exc:
            failure = _provider_bug(self.target, exc)
        if failure is not None:
            logger.warning("stream %s failed: %s", self.request_id, failure.message)
            await send_body(send, sse_event(failure.to_dict()), more=False)
        else:
            await send_body(send, SSE_DONE, more=False)
        return failure

    async def _complete_once(self, target: Target) -> dict[str, Any]:
        try:
            with anyio.fail_after(self.policy.total_timeout):
                return await target.provider.complete(self.body, target.model)
        except TimeoutError:
            raise _timed_out(target, f"no answer within {self.policy.total_timeout:g} s") from None

    async def _open_stream_once(
        self, target: Target
    ) -> tuple[AsyncIterator[list[dict[str, Any]]], list[dict[str, Any]]]:
        """Start the provider's stream and wait for its first chunks, so that failures before the first byte
        reach the client as a proper HTTP status, and can be retried or fall back."""
        batches = target.provider.stream_batches(self.body, target.model)
        try:
            with anyio.fail_after(self.policy.first_token_timeout):
                first = await anext(batches)
        except StopAsyncIteration:
            raise stream_ended_early(target.provider.kind) from None
        except TimeoutError:
            with anyio.CancelScope(shield=True):
                await aclose_iterator(batches)
            raise _timed_out(target, f"no first chunk within {self.policy.first_token_timeout:g} s") from None
        except BaseException:
            with anyio.CancelScope(shield=True):
                await aclose_iterator(batches)
            raise
        return batches, first

    async def _attempt_all(
        self,
        targets: Sequence[Target],
        route_policy: Policy | None,
        attempt: Callable[[Target], Awaitable[Any]],
    ) -> Any:
        """Retry each target under its policy, then fall back to the next, within the call's time budget."""
        gateway = self.gateway
        deadline: float | None = None
        last_error: GatewayError | None = None
        for position, target in enumerate(targets):
            policy = route_policy or gateway.policy_for(target.provider_name)
            self.policy = policy
            if deadline is None:
                deadline = time.monotonic() + policy.budget
            for tries in range(1, policy.max_attempts + 1):
                if last_error is not None and time.monotonic() >= deadline:
                    raise last_error
                self.target = target
                self.attempts += 1
                try:
                    self.release = await gateway.acquire_slot(target.provider_name, policy)
                    result = await attempt(target)
                except GatewayError as error:
                    last_error = error
                except Exception as exc:
                    last_error = _provider_bug(target, exc)
                else:
                    gateway.health.succeeded(target.name)
                    if not self.body.get("stream"):
                        self._release()
                    return result
                self._release()
                if not policy.should_fall_back(last_error):
                    raise last_error
                retry = policy.should_retry(last_error)
                if retry and last_error.retryable:  # the target is in trouble, not just this request
                    gateway.health.failed(target.name, policy, time.monotonic())
                if not retry or tries == policy.max_attempts:
                    break
                delay = retry_delay(policy, tries, last_error, gateway.rng)
                more_targets = position + 1 < len(targets)
                if (more_targets and delay > policy.max_backoff) or time.monotonic() + delay > deadline:
                    break  # a long Retry-After: let the next target answer instead of waiting
                logger.info("retrying %s in %.2f s after: %s", target.name, delay, last_error.message)
                await anyio.sleep(delay)
            if last_error is not None and position + 1 < len(targets):
                logger.warning("target %s failed (%s), trying the next one", target.name, last_error.message)
        assert last_error is not None
        raise last_error

    def _release(self) -> None:
        release, self.release = self.release, None
        if release is not None:
            release()

    async def _report(self, status: int, error: GatewayError | None = None) -> None:
        hook = self.gateway.on_usage
        if hook is None:
            return
        record = UsageRecord(
            request_id=self.request_id,
            principal=self.principal,
            model=self.model,
            target=self.target.name if self.target else None,
            provider=self.target.provider_name if self.target else None,
            stream=bool(self.body.get("stream")),
            usage=self.usage,
            latency_ms=(time.perf_counter() - self.started) * 1000,
            status=status,
            error=error.to_dict()["error"] if error else None,
        )
        try:
            await hook(record)
        except Exception:  # the client already has its answer; a broken hook must not change it
            logger.exception("on_usage hook failed")


class _IdleWatch:
    """Ends a stream whose upstream goes quiet for `timeout` seconds.

    One sleeping task per stream that re-arms itself, rather than a timeout scope around every chunk: the
    relay loop only records the time of each chunk, which costs next to nothing."""

    __slots__ = ("expired", "last", "scope", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.last = time.monotonic()
        self.expired = False
        self.scope: anyio.CancelScope | None = None

    async def run(self) -> None:
        assert self.scope is not None
        while not self.scope.cancel_called:
            remaining = self.last + self.timeout - time.monotonic()
            if remaining <= 0:
                self.expired = True
                self.scope.cancel()
                return
            await anyio.sleep(remaining)


def _timed_out(target: Target, detail: str) -> GatewayError:
    return GatewayError(
        f"{target.provider.kind}: upstream timed out ({detail})", status=504, code="upstream_timeout"
    )


def _provider_bug(target: Target, exc: Exception) -> GatewayError:
    """An unexpected exception inside a provider: almost always an upstream answer it could not read."""
    logger.error(
        "provider %r failed on an unexpected %s", target.provider_name, type(exc).__name__, exc_info=exc
    )
    return GatewayError(
        f"{target.provider.kind}: the upstream response could not be translated ({type(exc).__name__})",
        status=502,
        code="upstream_bad_response",
    )


def _method_not_allowed(method: str, path: str, allowed: str) -> GatewayError:
    return GatewayError(
        f"Method {method} is not allowed on {path}; use {allowed}.", status=405, code="method_not_allowed"
    )


def _model_object(model_id: str, owner: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": owner}
