"""`GeminiProvider`: the Gemini Developer API's HTTP side (URLs, auth, errors); translation is in the sibling
modules."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from functools import partial
from typing import Any, cast

import httpx

from ...errors import GatewayError, upstream_error
from ...model_ids import path_segment
from ...wire import loads
from ..base import ChatItem, Chunk
from ..embeddings import EmbeddingRequest, embedding_list, gather_limited, input_texts
from ..http import HTTPProvider
from ..reasoning import scope_for
from ..streams import bad_upstream_data, one_by_one, translate_reads
from ._embeddings import BATCH_SIZE, batch_body, batch_vectors, content_body, content_vector
from ._errors import KIND, google_error_details, key_rejected, payload_error, retry_delay
from ._request import to_native
from ._response import to_completion
from ._stream import StreamDecoder, StreamTranslator, TextRunDecoder

__all__ = ["GeminiProvider"]

Request = Mapping[str, Any]


class GeminiProvider(HTTPProvider):
    """Google's Gemini Developer API, spoken natively.

    Thought signatures ride in the tool-call ids bound to `reasoning_scope` and the model (`_ids.py`): a
    fallback to another model, key or endpoint never replays them.

    `api_version` picks the URL segment; on "v1" schemas are converted to the OpenAPI subset because the
    JSON Schema fields (`parametersJsonSchema`, `responseJsonSchema`) are a v1beta feature.
    """

    kind = KIND
    #: Gemini's answers carry no request id header (the body's `responseId` names the answer).
    request_id_header = None
    api_key_env = "GEMINI_API_KEY"
    api_key_env_aliases = ("GOOGLE_API_KEY",)  # the other name Google's SDKs read
    default_base_url = "https://generativelanguage.googleapis.com"

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = 600.0,
        *,
        api_version: str = "v1beta",
        models: Sequence[str] | None = None,
        headers: Mapping[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(api_key, base_url, timeout, models=models, headers=headers, client=client)
        self.api_version = api_version.strip("/")

    @property
    def json_schema(self) -> bool:
        return self.api_version != "v1"

    def auth_headers(self) -> dict[str, str]:
        # A header, never `?key=`: query strings end up in access logs.
        return {"x-goog-api-key": self.api_key} if self.api_key else {}

    def url(self, model: str, method: str) -> str:
        """`{version}/models/{id}:{method}`; a `models/` or `tunedModels/` prefix names the collection, and
        the rest of the id is one path segment whatever it contains (never a way into another API)."""
        collection, name = _resource(model)
        return f"{self.base_url}/{self.api_version}/{collection}/{path_segment(name)}:{method}"

    def error_details(self, status: int, body: Any, text: str) -> tuple[str, str | None]:
        """Google's envelope when the body is one (see `_errors.py`), else the shared reading."""
        if isinstance(body, list) and body:
            body = body[0]  # a stream answered without `alt=sse` wraps everything in an array
        return google_error_details(status, body, text) or super().error_details(status, body, text)

    def error_from_response(self, response: httpx.Response, content: bytes) -> GatewayError:
        try:
            body = loads(content) if content else None
        except ValueError:
            body = None
        if key_rejected(body):
            # Google answers a bad key with 400 INVALID_ARGUMENT, but it is the gateway's credential that
            # failed, not the client's request: report it as the authentication failure it is.
            message, _ = self.error_details(response.status_code, body, "")
            return upstream_error(self.kind, 401, message, secrets=self.secrets())
        error = super().error_from_response(response, content)
        delay = retry_delay(body)
        if error.status in (429, 503) and "retry-after" not in error.headers and delay is not None:
            error.headers["retry-after"] = delay
        return error

    async def complete(self, request: Request, model: str) -> dict[str, Any]:
        scope = scope_for(self.reasoning_scope, model)
        body = to_native(request, model, scope=scope, json_schema=self.json_schema)
        response = await self.post_json(self.url(model, "generateContent"), body)
        if not isinstance(response, dict):
            raise bad_upstream_data(self.kind, "the response is not a JSON object")
        if "error" in response:
            raise payload_error(response, self.secrets())
        return to_completion(response, model, scope=scope)

    def stream(self, request: Request, model: str) -> AsyncIterator[dict[str, Any]]:
        return one_by_one(self.stream_batches(request, model))

    def stream_batches(self, request: Request, model: str) -> AsyncIterator[list[Chunk]]:
        # only `TextRunDecoder` makes `TextRun`s, the one input that gives more than dicts
        return cast("AsyncIterator[list[Chunk]]", self._stream(request, model, StreamDecoder()))

    def chat_batches(self, request: Request, model: str) -> AsyncIterator[list[ChatItem]]:
        """The same stream for the chat door: runs of text deltas become content chunks written around
        Google's own strings (`TextRunDecoder`, `runs.py`), without a parse and an encode each."""
        return self._stream(request, model, TextRunDecoder())

    def _stream(self, request: Request, model: str, decoder: StreamDecoder) -> AsyncIterator[list[ChatItem]]:
        scope = scope_for(self.reasoning_scope, model)
        body = to_native(request, model, scope=scope, json_schema=self.json_schema)
        translator = StreamTranslator(model, scope=scope, secrets=tuple(self.secrets()))
        url = self.url(model, "streamGenerateContent") + "?alt=sse"
        return translate_reads(self._post_events(url, body, None, decoder), translator)

    async def count_tokens(self, request: Request, model: str) -> int | None:
        """`countTokens` over the request `complete` would send: its contents, system instruction and tools,
        as a `generateContentRequest` (which names its model) → `totalTokens`."""
        body = to_native(
            request, model, scope=scope_for(self.reasoning_scope, model), json_schema=self.json_schema
        )
        collection, name = _resource(model)
        counted: dict[str, Any] = {"model": f"{collection}/{name}"}
        counted.update((key, body[key]) for key in ("contents", "systemInstruction", "tools") if key in body)
        answer = await self.post_json(self.url(model, "countTokens"), {"generateContentRequest": counted})
        total = answer.get("totalTokens") if isinstance(answer, dict) else None
        if not isinstance(total, int) or isinstance(total, bool) or total < 0:
            raise bad_upstream_data(self.kind, "the token count has no 'totalTokens'")
        return total

    # -- the embeddings door ---------------------------------------------------------------------------

    def embeds(self, model: str) -> bool:
        """Gemini's embedding models are the ones named so (`gemini-embedding-001`, `text-embedding-004`);
        its generative models have no embedding method."""
        return "embedding" in model

    async def embed(self, request: EmbeddingRequest, model: str) -> dict[str, Any]:
        """One text: `embedContent`; more: `batchEmbedContents`, `BATCH_SIZE` at a time, a few calls at
        once (`_embeddings.py` has the mapping)."""
        if not self.embeds(model):
            return await super().embed(request, model)
        texts = await input_texts(request, self.kind)
        if len(texts) == 1:
            vector, tokens = content_vector(
                self._answer(
                    await self.post_json(self.url(model, "embedContent"), content_body(texts[0], request))
                )
            )
            return embedding_list([vector], model, tokens)
        collection, name = _resource(model)
        url = self.url(model, "batchEmbedContents")
        chunks = [texts[start : start + BATCH_SIZE] for start in range(0, len(texts), BATCH_SIZE)]

        async def call(chunk: list[str]) -> tuple[list[list[float]], int]:
            answer = await self.post_json(url, batch_body(chunk, request, f"{collection}/{name}"))
            return batch_vectors(self._answer(answer), len(chunk))

        results = await gather_limited([partial(call, chunk) for chunk in chunks], _CONCURRENT_BATCHES)
        vectors = [vector for found, _ in results for vector in found]
        return embedding_list(vectors, model, sum(tokens for _, tokens in results))

    def _answer(self, answer: Any) -> Any:
        """An answer that is an error object despite its 200 raises that error."""
        if isinstance(answer, dict) and "error" in answer:
            raise payload_error(answer, self.secrets())
        return answer

    async def list_models(self) -> list[str]:
        """The configured models, else every model the key can call `generateContent` on."""
        if self.models is not None:
            return list(self.models)
        return await self._listed("generateContent")

    async def list_embedding_models(self) -> list[str]:
        """Every model the key can call `embedContent` on (none when `models` is configured: the host
        listed what it serves)."""
        return [] if self.models is not None else await self._listed("embedContent")

    async def _listed(self, method: str) -> list[str]:
        listing = await self.get_json(f"{self.base_url}/{self.api_version}/models?pageSize=1000")
        found = listing.get("models") if isinstance(listing, dict) else None
        return [
            str(item["name"]).removeprefix("models/")
            for item in found or ()
            if isinstance(item, dict)
            and isinstance(item.get("name"), str)
            and method in (item.get("supportedGenerationMethods") or ())
        ]


#: How many `batchEmbedContents` calls one request makes at once (each takes `BATCH_SIZE` texts).
_CONCURRENT_BATCHES = 4


def _resource(model: str) -> tuple[str, str]:
    """(collection, name) of a model id: `tunedModels/t` → ("tunedModels", "t"); `gemini-x` → models."""
    collection, slash, name = model.partition("/")
    if not (slash and collection in ("models", "tunedModels")):
        return "models", model
    return collection, name
