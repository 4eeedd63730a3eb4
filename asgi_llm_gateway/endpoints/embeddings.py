"""`POST /v1/embeddings`: OpenAI's embeddings API over every provider that embeds.

    auth ─▶ read + validate (schemas/embeddings.py) ─▶ plan targets, keep those that embed
         ─▶ hooks: request_started, admit ─▶ attempts(provider.embed) ─▶ JSON answer ─▶ settle (hooks, usage)

The request reaches providers as an `EmbeddingRequest` (providers/embeddings.py): the validated body with
`input` always a list. Every provider answers with float vectors; when the client asked for
`encoding_format: "base64"` (the OpenAI SDK's default call does, and decodes the answer itself) the door
encodes each vector as OpenAI does, little-endian float32.

A model whose targets include none that embeds is a 400 `model_not_supported` naming `model` before anything
is sent; in a route with some targets that embed and some that do not, the others are skipped.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from ..asgi import send_json
from ..errors import GatewayError
from ..pipeline.attempts import WithinTotalTimeout
from ..pipeline.call import Call
from ..policy import Policy
from ..providers.embeddings import EmbeddingRequest, encode_base64
from ..routing import Plan, Target
from ..schemas.embeddings import validate_embeddings_request
from . import Exchange, OpenAIErrors
from .door import Door, read_request

__all__ = ["EmbeddingsEndpoint", "embedding_request"]


class EmbeddingsEndpoint(OpenAIErrors, Door):
    methods = frozenset({"POST"})

    async def __call__(self, exchange: Exchange) -> None:
        principal, body, model, plan, started = await read_request(
            self.gateway, exchange, validate_embeddings_request
        )
        targets = [target for target in plan.targets if target.provider.embeds(target.model)]
        if not targets:
            raise GatewayError(
                f"The model '{model}' does not serve embeddings: none of its providers "
                f"({', '.join(sorted({target.provider.kind for target in plan.targets}))}) embeds it.",
                status=400,
                param="model",
                code="model_not_supported",
            )
        call = Call(exchange.request_id, "embeddings", principal, model, body, started)
        request = embedding_request(body)
        await self.serve(
            call, exchange, partial(self._complete, call, Plan(targets, plan.policy), exchange, request)
        )

    async def _complete(self, call: Call, plan: Plan, exchange: Exchange, request: EmbeddingRequest) -> None:
        outcome = await self.attempt(call, plan, exchange, partial(_embed_once, request))
        if outcome is None:
            return
        result: dict[str, Any] = outcome.result
        result["model"] = outcome.target.name
        if request.get("encoding_format") == "base64":
            for item in result["data"]:
                item["embedding"] = encode_base64(item["embedding"])
        call.usage = result.get("usage")
        await send_json(exchange.send, 200, result, call.headers())
        await self.gateway.settle(call, 200)


def embedding_request(body: dict[str, Any]) -> EmbeddingRequest:
    """The validated body with `input` as a list: a string or a single token array becomes a list of one."""
    items = body["input"]
    if isinstance(items, str) or (items and isinstance(items[0], int)):
        return {**body, "input": [items]}
    return body


async def _embed_once(request: EmbeddingRequest, target: Target, policy: Policy) -> dict[str, Any]:
    async with WithinTotalTimeout(target, policy):
        return await target.provider.embed(request, target.model)
