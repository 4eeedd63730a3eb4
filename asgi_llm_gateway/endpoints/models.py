"""`GET /v1/models` and `GET /v1/models/{id}`: route aliases plus what each provider lists.

Anthropic clients (Claude Code discovers models here) get Anthropic's shapes — `{"data": [{"type": "model",
"id", "display_name", "created_at"}], "has_more", "first_id", "last_id"}` and its error envelope — when the
request carries `anthropic-version`, as Anthropic's SDKs always send.

Each provider's listing holds its chat models and, where it can tell them apart, its embedding models
(`Provider.list_embedding_models`: Gemini's `embedContent` models). Upstream listings are fetched
concurrently, each within `MODELS_TIMEOUT`, and reused for `MODELS_CACHE_SECONDS`; one provider failing to
list never hides the others' models. A principal limited to some models sees only those, and gets a 404
(not a 403) for the others, so a key learns nothing about models it may not use.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import anyio

from ..asgi import send_json
from ..auth import Principal, authenticate
from ..errors import GatewayError
from ..providers.base import Provider
from . import ANTHROPIC_REQUEST_ID, AnthropicErrors, Exchange, Headers, OpenAIErrors

if TYPE_CHECKING:
    from ..gateway import Gateway

__all__ = ["MODELS_CACHE_SECONDS", "MODELS_TIMEOUT", "ModelsEndpoint"]

logger = logging.getLogger("asgi_llm_gateway")

MODELS_TIMEOUT = 10.0
#: Upstream model lists change rarely; a listing is reused this long rather than fetched on every call.
MODELS_CACHE_SECONDS = 300.0


class ModelsEndpoint:
    methods = frozenset({"GET", "HEAD"})
    #: It answers Anthropic's clients too (in their shape), so it names the id their way as well.
    request_id_headers = ANTHROPIC_REQUEST_ID

    async def send_error(self, exchange: Exchange, error: GatewayError, headers: Headers = ()) -> None:
        door = _ANTHROPIC if _from_anthropic_client(exchange) else _OPENAI
        await door.send_error(exchange, error, headers)

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._listings: dict[str, tuple[float, list[str]]] = {}  # provider → (expires, model ids)

    async def __call__(self, exchange: Exchange) -> None:
        principal = await authenticate(self.gateway.auth, exchange.scope)
        allowed = principal.may_use if isinstance(principal, Principal) else None
        anthropic = _from_anthropic_client(exchange)
        if exchange.path == "/models":
            body = await self._list(allowed)
            if anthropic:
                body = _anthropic_list(body["data"])
        else:
            body = self._one(unquote(exchange.path[len("/models/") :]), allowed)
            if anthropic:
                body = _anthropic_model(body)
        await send_json(exchange.send, 200, body)

    def _one(self, model_id: str, allowed: Any) -> dict[str, Any]:
        router = self.gateway.router
        router.resolve(model_id)  # 400 for an invalid id, 404 for what cannot be called
        if allowed is not None and not allowed(model_id):
            raise GatewayError(f"The model '{model_id}' does not exist.", status=404, code="model_not_found")
        owner = "gateway" if model_id in router.routes else model_id.partition("/")[0]
        return _model_object(model_id, owner)

    async def _list(self, allowed: Any) -> dict[str, Any]:
        providers = self.gateway.providers
        data = [_model_object(alias, "gateway") for alias in self.gateway.router.routes]
        listed: dict[str, list[str]] = {}
        now = time.monotonic()
        async with anyio.create_task_group() as group:
            for name, provider in providers.items():
                group.start_soon(self._collect, name, provider, now, listed)
        for name in providers:
            data.extend(_model_object(f"{name}/{model}", name) for model in listed.get(name, ()))
        if allowed is not None:
            data = [model for model in data if allowed(model["id"])]
        return {"object": "list", "data": data}

    async def _collect(self, name: str, provider: Provider, now: float, listed: dict[str, list[str]]) -> None:
        cached = self._listings.get(name)
        if cached is not None and cached[0] > now:
            listed[name] = cached[1]
            return
        with anyio.move_on_after(MODELS_TIMEOUT):
            try:
                models = await provider.list_models()
                embedding = [model for model in await provider.list_embedding_models() if model not in models]
                listed[name] = [*models, *embedding]
                self._listings[name] = (now + MODELS_CACHE_SECONDS, listed[name])
            except GatewayError as error:
                logger.warning("listing models of provider %r failed: %s", name, error.message)
            except Exception:  # one broken provider must not hide the others' models
                logger.exception("listing models of provider %r failed", name)


def _model_object(model_id: str, owner: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": owner}


def _from_anthropic_client(exchange: Exchange) -> bool:
    return any(name == b"anthropic-version" for name, _ in exchange.scope.get("headers", ()))


def _anthropic_model(model: dict[str, Any]) -> dict[str, Any]:
    return {"type": "model", "id": model["id"], "display_name": model["id"], "created_at": _EPOCH}


def _anthropic_list(models: list[dict[str, Any]]) -> dict[str, Any]:
    data = [_anthropic_model(model) for model in models]
    return {
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


#: `created_at` for models whose date the gateway does not know (OpenAI's shape says 0 for the same reason).
_EPOCH = "1970-01-01T00:00:00Z"
_OPENAI = OpenAIErrors()
_ANTHROPIC = AnthropicErrors()
