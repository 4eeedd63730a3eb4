"""`AnthropicProvider`: the Messages API over HTTP. The translation is pure (`_request`, `_response`,
`_stream`, and `_native` for requests passed through as they are); this module only adds the endpoints, the
headers and the model list."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, cast

import httpx

from ...sse import SSEDecoder
from ..base import ChatItem, Chunk, Request
from ..caching import AutoCache, auto_cache_policy
from ..http import HTTPProvider
from ..reasoning import ReasoningStore, replays, scope_for
from ..streams import bad_upstream_data, one_by_one, translate_reads
from ._errors import KIND, error_message
from ._native import NativeStreamTranslator, count_body, input_tokens, native_body, native_headers
from ._request import NativeRequest, to_native
from ._response import to_completion
from ._stream import StreamTranslator, TextDeltaReader

__all__ = ["API_VERSION", "AnthropicProvider"]

# The version every Anthropic document describes; the constructor takes another.
API_VERSION = "2023-06-01"


class AnthropicProvider(HTTPProvider):
    """Claude through Anthropic's native Messages API."""

    kind = KIND
    request_id_header = "request-id"
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
        auto_cache: AutoCache | bool = False,
    ) -> None:
        """`auto_cache` places prompt-cache breakpoints on chat requests that carry none (`AutoCache`; True
        for its defaults: after the tools, after the system prompt, on the last user turn)."""
        super().__init__(api_key, base_url, timeout, models=models, headers=headers, client=client)
        self.version = version
        self.default_max_tokens = default_max_tokens
        self.auto_cache = auto_cache_policy(auto_cache)
        #: Signed thinking of recent answers that called tools, for clients that drop `reasoning_details`.
        self.reasoning_store = ReasoningStore()

    @property
    def url(self) -> str:
        return f"{self.base_url}/v1/messages"

    @property
    def count_url(self) -> str:
        return f"{self.base_url}/v1/messages/count_tokens"

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
        scope = scope_for(self.reasoning_scope, model)
        native = self._native(request, model, scope, stream=False)
        message = await self.post_json(self.url, native.body)
        completion = to_completion(message, json_tool=native.json_tool, scope=scope)
        self.reasoning_store.remember_completion(completion)
        return completion

    def stream(self, request: Request, model: str) -> AsyncIterator[dict[str, Any]]:
        return one_by_one(self.stream_batches(request, model))

    def stream_batches(self, request: Request, model: str) -> AsyncIterator[list[Chunk]]:
        # only the chat door's reader makes `TextRun`s, the one input that gives more than dicts
        return cast("AsyncIterator[list[Chunk]]", self._stream(request, model, SSEDecoder()))

    def chat_batches(self, request: Request, model: str) -> AsyncIterator[list[ChatItem]]:
        """The same stream for the chat door: runs of text deltas become content chunks written around
        Anthropic's own strings (`TextDeltaReader`, `runs.py`), without a parse and an encode each."""
        return self._stream(request, model, TextDeltaReader())

    def _stream(
        self, request: Request, model: str, reader: SSEDecoder | TextDeltaReader
    ) -> AsyncIterator[list[ChatItem]]:
        """The Messages stream for `request`, its events read by `reader`, translated."""
        scope = scope_for(self.reasoning_scope, model)
        native = self._native(request, model, scope, stream=True)
        translator = StreamTranslator(
            model,
            json_tool=native.json_tool,
            secrets=tuple(self.secrets()),
            scope=scope,
            on_reasoning=self.reasoning_store.remember,
        )
        return translate_reads(self._post_events(self.url, native.body, None, reader), translator)

    def _native(self, request: Request, model: str, scope: str, *, stream: bool) -> NativeRequest:
        """The Messages body, with the signed thinking this provider and model made put back."""
        return to_native(
            request,
            model,
            stream=stream,
            default_limit=self.default_max_tokens,
            auto_cache=self.auto_cache,
            thoughts=replays(request, scope, self.reasoning_store),
        )

    # -- the Messages door: native passthrough ---------------------------------------------------------

    def speaks_messages(self, model: str) -> bool:
        return True

    async def messages(self, body: Mapping[str, Any], model: str, beta: Sequence[str]) -> dict[str, Any]:
        """The client's request as it is (`model` replaced), with the client's anthropic-beta values."""
        headers = native_headers(body, beta, self.version)
        message = await self.post_json(self.url, native_body(body, model, stream=False), headers)
        if not isinstance(message, dict) or not isinstance(message.get("content"), list):
            raise bad_upstream_data(KIND, "the response is not a message")
        return message

    def messages_batches(
        self, body: Mapping[str, Any], model: str, beta: Sequence[str]
    ) -> AsyncIterator[list[dict[str, Any] | bytes]]:
        translator = NativeStreamTranslator(secrets=tuple(self.secrets()))
        headers = native_headers(body, beta, self.version)
        reads = self._post_events(self.url, native_body(body, model, stream=True), headers, TextDeltaReader())
        return translate_reads(reads, translator)

    async def count_message_tokens(self, body: Mapping[str, Any], model: str, beta: Sequence[str]) -> int:
        """`POST /v1/messages/count_tokens` with the fields that endpoint takes."""
        headers = native_headers(body, beta, self.version)
        answer = await self.post_json(self.count_url, count_body(body, model), headers)
        return input_tokens(answer, "input_tokens")

    async def count_tokens(self, request: Request, model: str) -> int | None:
        """The chat request as `complete` would send it, counted by Anthropic."""
        native = to_native(request, model, default_limit=self.default_max_tokens, auto_cache=self.auto_cache)
        return await self.count_message_tokens(native.body, model, ())
