"""The OpenAI-family provider classes: one implementation, each subclass naming its `Quirks` row."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from functools import cached_property
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from ...errors import GatewayError
from ...model_ids import path_segment
from ...wire import loads
from ..base import ChatItem, EventRun, Request
from ..embeddings import EmbeddingRequest, input_texts, is_token_input
from ..http import HTTPProvider
from ..streams import one_by_one, translate_reads
from ._delta_runs import NativeEventsReader
from ._embeddings import embeddings_answer, embeddings_body
from ._quirks import COMPATIBLE, DEEPSEEK, GROQ, MISTRAL, OPENAI, XAI, Quirks
from ._request import to_native
from ._response import to_completion
from ._responses import ResponsesStreamTranslator, check_response, native_responses_body
from ._stream import StreamTranslator, VerbatimReader, VerbatimTranslator
from ._template import TemplatePatterns

__all__ = [
    "AzureOpenAIProvider",
    "DeepSeekProvider",
    "GroqProvider",
    "MistralProvider",
    "OpenAICompatibleProvider",
    "OpenAIProvider",
    "XAIProvider",
]


class OpenAICompatibleProvider(HTTPProvider):
    """Any server that speaks OpenAI chat completions: vLLM, Ollama, llama.cpp, LM Studio…

    `base_url` includes `/v1` (what the OpenAI SDK means by it); requests go to `{base_url}/chat/completions`.
    """

    kind = "openai-compatible"
    quirks: ClassVar[Quirks] = COMPATIBLE

    def chat_url(self, model: str) -> str:
        return f"{self.base_url}/chat/completions"

    def responses_url(self, model: str) -> str:
        return f"{self.base_url}/responses"

    def _body(self, request: Request, model: str, stream: bool) -> dict[str, Any]:
        return to_native(request, model, self.quirks, provider=self.kind, stream=stream)

    def error_details(self, status: int, body: Any, text: str) -> tuple[str, str | None]:
        message, code = super().error_details(status, body, text)
        if isinstance(body, dict) and isinstance(body.get("message"), (dict, list)):  # Mistral's 422 detail
            message = text[:1000]
        return message, code

    def error_from_response(self, response: httpx.Response, content: bytes) -> GatewayError:
        """The shared mapping, keeping the upstream's `param` on a 400: it names the client's own field
        (the Responses API's errors name it, `input[2].call_id`, and its clients show it)."""
        error = super().error_from_response(response, content)
        if error.status == 400 and error.param is None:
            try:
                body = loads(content) if content else None
            except ValueError:
                body = None
            detail = body.get("error") if isinstance(body, dict) else None
            param = detail.get("param") if isinstance(detail, dict) else None
            if isinstance(param, str) and param:
                error.param = param
        return error

    async def complete(self, request: Request, model: str) -> dict[str, Any]:
        native = await self.post_json(self.chat_url(model), self._body(request, model, stream=False))
        return to_completion(native, self.kind)

    def stream(self, request: Request, model: str) -> AsyncIterator[dict[str, Any]]:
        return one_by_one(self.stream_batches(request, model))

    def stream_batches(self, request: Request, model: str) -> AsyncIterator[list[dict[str, Any]]]:
        translator = StreamTranslator(self.kind)
        reads = self.post_sse_data(self.chat_url(model), self._body(request, model, stream=True))
        return translate_reads(reads, translator)

    @cached_property
    def _template_patterns(self) -> TemplatePatterns:
        """The text-chunk patterns of this provider's streams (`_template.py`), built once per layout."""
        return TemplatePatterns()

    def chat_batches(self, request: Request, model: str) -> AsyncIterator[list[ChatItem]]:
        """The same stream for the chat door, whose client reads the upstream's own format: plain content
        chunks are handed over as the bytes the upstream sent (`VerbatimTranslator`)."""
        translator = VerbatimTranslator(self.kind, self._template_patterns)
        body = self._body(request, model, stream=True)
        reads = self._post_events(self.chat_url(model), body, None, VerbatimReader(translator))
        return translate_reads(reads, translator)

    # -- the Responses door: native passthrough where the upstream speaks it (`Quirks.responses`) ---------

    def speaks_responses(self, model: str) -> bool:
        return self.quirks.responses

    async def responses(self, body: Mapping[str, Any], model: str) -> dict[str, Any]:
        """`POST {base}/responses` with the client's body (`model` replaced, input unsealed for this
        provider); the answer's encrypted reasoning sealed for it."""
        if not self.speaks_responses(model):
            return await super().responses(body, model)
        scope = self.reasoning_scope
        native = native_responses_body(body, model, stream=False, provider_name=scope)
        answer = await self.post_json(self.responses_url(model), native)
        response: dict[str, Any] = check_response(answer, self.kind, scope, self.secrets())
        return response

    def responses_batches(
        self, body: Mapping[str, Any], model: str
    ) -> AsyncIterator[list[dict[str, Any] | EventRun]]:
        if not self.speaks_responses(model):
            return super().responses_batches(body, model)
        scope = self.reasoning_scope
        translator = ResponsesStreamTranslator(self.kind, scope, secrets=tuple(self.secrets()))
        native = native_responses_body(body, model, stream=True, provider_name=scope)
        reads = self._post_events(self.responses_url(model), native, None, NativeEventsReader())
        return translate_reads(reads, translator)

    # -- the embeddings door: `POST {base}/embeddings` where the row says the upstream has it -------------

    def embeds(self, model: str) -> bool:
        return self.quirks.embeddings

    def embeddings_url(self, model: str) -> str:
        return f"{self.base_url}/embeddings"

    async def embed(self, request: EmbeddingRequest, model: str) -> dict[str, Any]:
        """The request as the row says (`_embeddings.py`), token arrays decoded unless the upstream takes
        them; floats back, in input order."""
        if not self.embeds(model):
            return await super().embed(request, model)
        texts = None
        if is_token_input(request) and not self.quirks.embedding_tokens:
            texts = await input_texts(request, self.kind)
        body = embeddings_body(request, model, self.quirks, texts)
        native = await self.post_json(self.embeddings_url(model), body)
        return embeddings_answer(native, model, len(body["input"]), self.kind)

    async def list_models(self) -> list[str]:
        if self.models is not None:
            return list(self.models)
        if not self.base_url:
            return []
        listing = await self.get_json(f"{self.base_url}/models")
        data = listing.get("data") if isinstance(listing, dict) else None
        return [
            item["id"] for item in data or () if isinstance(item, dict) and isinstance(item.get("id"), str)
        ]


class OpenAIProvider(OpenAICompatibleProvider):
    """OpenAI itself: the request passes through with only what reasoning models require changed."""

    kind = "openai"
    #: OpenAI takes a request id of the client's own, which its support can look calls up by.
    client_request_id_header = "X-Client-Request-Id"
    api_key_env = "OPENAI_API_KEY"
    default_base_url = "https://api.openai.com/v1"
    quirks = OPENAI


class MistralProvider(OpenAICompatibleProvider):
    kind = "mistral"
    api_key_env = "MISTRAL_API_KEY"
    default_base_url = "https://api.mistral.ai/v1"
    quirks = MISTRAL


class GroqProvider(OpenAICompatibleProvider):
    kind = "groq"
    api_key_env = "GROQ_API_KEY"
    default_base_url = "https://api.groq.com/openai/v1"
    quirks = GROQ


class DeepSeekProvider(OpenAICompatibleProvider):
    kind = "deepseek"
    api_key_env = "DEEPSEEK_API_KEY"
    default_base_url = "https://api.deepseek.com"
    quirks = DEEPSEEK


class XAIProvider(OpenAICompatibleProvider):
    kind = "xai"
    api_key_env = "XAI_API_KEY"
    default_base_url = "https://api.x.ai/v1"
    quirks = XAI


class AzureOpenAIProvider(OpenAICompatibleProvider):
    """Azure OpenAI. `base_url` is the resource endpoint (`https://<resource>.openai.azure.com`).

    With an `api_version` (argument or OPENAI_API_VERSION) requests use the deployments URL, the model being
    the deployment name; without one they use the v1 API (`/openai/v1/chat/completions`).
    """

    kind = "azure"
    client_request_id_header = None  # the Azure OpenAI spec documents none
    #: The id Azure's answers carry for troubleshooting (its spec documents this one).
    request_id_header = "apim-request-id"
    api_key_env = "AZURE_OPENAI_API_KEY"
    quirks = OPENAI

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = 600.0,
        *,
        api_version: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(api_key, base_url or os.environ.get("AZURE_OPENAI_ENDPOINT"), timeout, **options)
        self.api_version = api_version or os.environ.get("OPENAI_API_VERSION")

    def auth_headers(self) -> dict[str, str]:
        return {"api-key": self.api_key} if self.api_key else {}

    def chat_url(self, model: str) -> str:
        return self._deployment_url(model, "chat/completions")

    def embeddings_url(self, model: str) -> str:
        return self._deployment_url(model, "embeddings")

    def _deployment_url(self, model: str, operation: str) -> str:
        """The v1 API's `/openai/v1/{operation}`; with an `api_version`, the deployment's own URL."""
        if self.base_url.endswith("/openai/v1"):
            return f"{self.base_url}/{operation}"
        if self.api_version:
            return (
                f"{self.base_url}/openai/deployments/{path_segment(model)}/{operation}"
                f"?api-version={quote(self.api_version, safe='')}"
            )
        return f"{self.base_url}/openai/v1/{operation}"

    def responses_url(self, model: str) -> str:
        """The v1 API's `/openai/v1/responses`; with an `api_version`, the versioned `/openai/responses`
        (no deployment in the path there: the deployment is the body's `model`, as the Azure SDK sends it;
        the version must be one that has the Responses API, 2025-03-01-preview or later)."""
        if self.base_url.endswith("/openai/v1"):
            return f"{self.base_url}/responses"
        if self.api_version:
            return f"{self.base_url}/openai/responses?api-version={quote(self.api_version, safe='')}"
        return f"{self.base_url}/openai/v1/responses"

    async def list_models(self) -> list[str]:
        return list(self.models or ())
