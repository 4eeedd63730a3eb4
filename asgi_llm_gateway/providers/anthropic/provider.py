"""`AnthropicProvider`: the Messages API over HTTP. The translation is pure (`_request`, `_response`,
`_stream`); this module only adds the endpoint, the headers and the model list."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import httpx

from ..base import Request
from ..http import HTTPProvider
from ..streams import one_by_one, translate_reads
from ._errors import KIND, error_message
from ._request import to_native
from ._response import to_completion
from ._stream import StreamTranslator

__all__ = ["API_VERSION", "AnthropicProvider"]

# The version every Anthropic document describes; the constructor takes another.
API_VERSION = "2023-06-01"


class AnthropicProvider(HTTPProvider):
    """Claude through Anthropic's native Messages API."""

    kind = KIND
    api_key_env = "ANTHROPIC_API_KEY"
    default_base_url = "https://api.anthropic.com"

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = 600.0,
        *,
        models: Sequence[str] | None = None,
        headers: Mapping[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
        version: str = API_VERSION,
        default_max_tokens: int | None = None,
    ) -> None:
        super().__init__(api_key, base_url, timeout, models=models, headers=headers, client=client)
        self.version = version
        self.default_max_tokens = default_max_tokens

    @property
    def url(self) -> str:
        return f"{self.base_url}/v1/messages"

    def auth_headers(self) -> dict[str, str]:
        headers = {"anthropic-version": self.version}
        if self.api_key:
            headers["x-api-key"] = self.api_key
        return headers

    def error_details(self, status: int, body: Any, text: str) -> tuple[str, str | None]:
        # The code is left to the shared mapping, so clients see the same codes whatever the provider.
        return error_message(status, body, text), None

    async def list_models(self) -> list[str]:
        if self.models is not None:
            return list(self.models)
        listing = await self.get_json(f"{self.base_url}/v1/models?limit=1000")
        data = listing.get("data") if isinstance(listing, dict) else None
        return [
            item["id"] for item in data or () if isinstance(item, dict) and isinstance(item.get("id"), str)
        ]

    async def complete(self, request: Request, model: str) -> dict[str, Any]:
        native = to_native(request, model, default_limit=self.default_max_tokens)
        message = await self.post_json(self.url, native.body)
        return to_completion(message, json_tool=native.json_tool)

    def stream(self, request: Request, model: str) -> AsyncIterator[dict[str, Any]]:
        return one_by_one(self.stream_batches(request, model))

    def stream_batches(self, request: Request, model: str) -> AsyncIterator[list[dict[str, Any]]]:
        native = to_native(request, model, stream=True, default_limit=self.default_max_tokens)
        translator = StreamTranslator(model, json_tool=native.json_tool, secrets=tuple(self.secrets()))
        return translate_reads(self.post_sse(self.url, native.body), translator)
