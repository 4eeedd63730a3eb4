"""The OpenAI-family provider classes: one implementation, each subclass naming its `Quirks` row."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from ...model_ids import path_segment
from ..base import Request
from ..http import HTTPProvider
from ..streams import one_by_one, translate_reads
from ._quirks import COMPATIBLE, DEEPSEEK, GROQ, MISTRAL, OPENAI, XAI, Quirks
from ._request import to_native
from ._response import to_completion
from ._stream import StreamTranslator

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

    def _body(self, request: Request, model: str, stream: bool) -> dict[str, Any]:
        return to_native(request, model, self.quirks, provider=self.kind, stream=stream)

    def error_details(self, status: int, body: Any, text: str) -> tuple[str, str | None]:
        message, code = super().error_details(status, body, text)
        if isinstance(body, dict) and isinstance(body.get("message"), (dict, list)):  # Mistral's 422 detail
            message = text[:1000]
        return message, code

    async def complete(self, request: Request, model: str) -> dict[str, Any]:
        native = await self.post_json(self.chat_url(model), self._body(request, model, stream=False))
        return to_completion(native, self.kind)

    def stream(self, request: Request, model: str) -> AsyncIterator[dict[str, Any]]:
        return one_by_one(self.stream_batches(request, model))

    def stream_batches(self, request: Request, model: str) -> AsyncIterator[list[dict[str, Any]]]:
        translator = StreamTranslator(self.kind)
        reads = self.post_sse(self.chat_url(model), self._body(request, model, stream=True))
        return translate_reads(reads, translator)

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
        if self.base_url.endswith("/openai/v1"):
            return f"{self.base_url}/chat/completions"
        if self.api_version:
            return (
                f"{self.base_url}/openai/deployments/{path_segment(model)}/chat/completions"
                f"?api-version={quote(self.api_version, safe='')}"
            )
        return f"{self.base_url}/openai/v1/chat/completions"

    async def list_models(self) -> list[str]:
        return list(self.models or ())
