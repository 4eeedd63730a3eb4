"""`BedrockProvider`: Converse and ConverseStream over HTTP, authenticated by a Bedrock API key or SigV4;
for Claude also InvokeModel (native Anthropic Messages requests) and CountTokens.

The translation is pure (`_request`, `_response`, `_stream`, `_native`); signing lives in `_sigv4`. This
module only picks the region and the endpoint, and moves bytes.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import aclosing
from functools import partial
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import httpx

from ...errors import GatewayError
from ...eventstream import EventStreamError, Frame, FrameDecoder, event_stream_decoder
from ...model_ids import path_segment
from ...wire import loads
from ..anthropic._native import input_tokens
from ..base import ChatItem, Chunk, Request, Translator
from ..caching import AutoCache, auto_cache_policy
from ..embeddings import EmbeddingRequest, embedding_list, gather_limited, input_texts
from ..http import HTTPProvider
from ..reasoning import ReasoningStore, replays, scope_for
from ..runs import TextRun
from ..streams import bad_upstream_data, one_by_one, translate_reads
from ._embeddings import (
    COHERE_BATCH,
    TITAN,
    TITAN_CONCURRENCY,
    cohere_body,
    cohere_vectors,
    embedding_family,
    titan_body,
    titan_vector,
)
from ._errors import KIND, bedrock_error, error_message_of, error_type_of
from ._names import base_model_id, is_claude
from ._native import NativeStreamTranslator, converse_count_input, invoke_body, invoke_count_input
from ._request import NativeRequest, to_native
from ._response import to_completion
from ._sigv4 import SigV4Signer, botocore_missing, has_botocore
from ._stream import StreamTranslator, chat_items

__all__ = ["BedrockProvider"]

EVENT_STREAM = "application/vnd.amazon.eventstream"

T = TypeVar("T")
Out = TypeVar("Out")


def _region_from_url(base_url: str | None) -> str | None:
    """The region in a `https://bedrock-runtime[-fips].<region>.amazonaws.com` style endpoint."""
    if not base_url:
        return None
    match = re.match(r"bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.", urlsplit(base_url).hostname or "")
    return match.group(1) if match else None


class BedrockProvider(HTTPProvider):
    """Any model Amazon Bedrock serves through Converse, with SigV4 (botocore) or a Bedrock API key."""

    kind = KIND
    request_id_header = "x-amzn-requestid"
    signs_requests = True  # SigV4
    api_key_env = "AWS_BEARER_TOKEN_BEDROCK"

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = 600.0,
        *,
        region: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        profile: str | None = None,
        models: Sequence[str] | None = None,
        headers: Mapping[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
        auto_cache: AutoCache | bool = False,
    ) -> None:
        """`auto_cache` places cache points on chat requests that carry no breakpoints (`AutoCache`; True for
        its defaults: after the tools, after the system prompt, on the last user turn)."""
        super().__init__(api_key, base_url, timeout, models=models, headers=headers, client=client)
        self.auto_cache = auto_cache_policy(auto_cache)
        #: Signed reasoning of recent answers that called tools, for clients that drop `reasoning_details`.
        self.reasoning_store = ReasoningStore()
        if (aws_access_key_id is None) != (aws_secret_access_key is None):
            raise ValueError("pass aws_access_key_id and aws_secret_access_key together")
        if api_key is None and (aws_access_key_id is not None or profile is not None):
            self.api_key = None  # explicit AWS credentials win over AWS_BEARER_TOKEN_BEDROCK
        self.profile = profile
        self._signer = SigV4Signer(
            profile=profile,
            access_key=aws_access_key_id,
            secret_key=aws_secret_access_key,
            session_token=aws_session_token,
        )
        if not self.api_key and not has_botocore():
            raise botocore_missing()
        self.region = (
            region
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or self._signer.profile_region()
            or _region_from_url(base_url)
        )
        if not base_url and self.region:
            self.base_url = f"https://bedrock-runtime.{self.region}.amazonaws.com"

    def __repr__(self) -> str:  # never shows a credential
        return f"{type(self).__name__}(base_url={self.base_url!r}, region={self.region!r})"

    def secrets(self) -> Iterable[str | None]:
        return (self.api_key, *self._signer.secrets())

    def error_from_response(self, response: httpx.Response, content: bytes) -> GatewayError:
        """Bedrock names the exception in `x-amzn-ErrorType`, a header `error_details` cannot see, and some
        exceptions need another status than theirs: so the whole mapping is replaced."""
        text = content.decode("utf-8", errors="replace")
        try:
            body = loads(content) if content else None
        except ValueError:
            body = None
        return bedrock_error(
            error_type_of(response.headers.get("x-amzn-errortype"), body),
            response.status_code,
            error_message_of(body, text, response.status_code),
            retry_after=response.headers.get("retry-after"),
            secrets=self.secrets(),
        )

    async def list_models(self) -> list[str]:
        return list(self.models or ())

    def url(self, model: str, operation: str) -> str:
        if not self.base_url:
            raise GatewayError(
                f"{KIND}: no AWS region configured (pass region= or base_url=, or set AWS_REGION)",
                status=500,
                type="server_error",
                code="provider_not_configured",
            )
        return f"{self.base_url}/model/{path_segment(model)}/{operation}"

    async def sign(self, request: httpx.Request) -> None:
        """SigV4 over the final body, unless a Bedrock API key (bearer) is in use."""
        if not self.api_key:
            await self._signer.sign(request, self._signing_region())

    async def signed_headers(
        self, url: httpx.URL, headers: Mapping[str, str], content: bytes
    ) -> Mapping[str, str]:
        """The same signature for a POST sent without a request object; `host` is set to what was signed."""
        if self.api_key:
            return headers
        region = self._signing_region()
        host = url.netloc.decode("ascii")
        signature = await self._signer.headers(
            "POST", url.raw_path, host, headers["content-type"], content, region
        )
        return {**headers, "host": host, **signature}

    def _signing_region(self) -> str:
        if not self.region:
            raise GatewayError(
                f"{KIND}: no AWS region configured for SigV4 (pass region= or set AWS_REGION)",
                status=500,
                type="server_error",
                code="provider_not_configured",
            )
        return self.region

    async def complete(self, request: Request, model: str) -> dict[str, Any]:
        scope = scope_for(self.reasoning_scope, model)
        native = self._native(request, model, scope)
        response = await self.post_json(self.url(model, "converse"), native.body)
        if not isinstance(response, Mapping):
            raise bad_upstream_data(KIND, "the response is not an object")
        completion = to_completion(
            response, model, tool_names=native.tool_names, json_tool=native.json_tool, scope=scope
        )
        self.reasoning_store.remember_completion(completion)
        return completion

    def stream(self, request: Request, model: str) -> AsyncIterator[dict[str, Any]]:
        return one_by_one(self.stream_batches(request, model))

    def stream_batches(self, request: Request, model: str) -> AsyncIterator[list[Chunk]]:
        # only `chat_items` makes `TextRun`s, the one input that gives more than dicts
        return cast("AsyncIterator[list[Chunk]]", self._converse_stream(request, model, _as_read))

    def chat_batches(self, request: Request, model: str) -> AsyncIterator[list[ChatItem]]:
        """The same stream for the chat door: runs of text deltas become content chunks written around
        Bedrock's own strings (`chat_items`, `runs.py`), without a parse and an encode each."""
        return self._converse_stream(request, model, chat_items)

    def _converse_stream(
        self, request: Request, model: str, items: Callable[[Iterator[Frame]], Iterable[Frame | TextRun]]
    ) -> AsyncIterator[list[ChatItem]]:
        scope = scope_for(self.reasoning_scope, model)
        native = self._native(request, model, scope)
        return self._event_stream(
            self.url(model, "converse-stream"),
            native.body,
            lambda: StreamTranslator(
                model,
                tool_names=native.tool_names,
                json_tool=native.json_tool,
                secrets=self.secrets(),  # after signing: includes the credentials just used
                scope=scope,
                on_reasoning=self.reasoning_store.remember,
            ),
            items,
        )

    def _native(self, request: Request, model: str, scope: str) -> NativeRequest:
        """The Converse body, with the signed reasoning this provider and model made put back."""
        thoughts = replays(request, scope, self.reasoning_store)
        return to_native(request, model, auto_cache=self.auto_cache, thoughts=thoughts)

    async def _event_stream(
        self,
        url: str,
        body: Any,
        translator: Callable[[], Translator[T, Out]],
        items: Callable[[Iterator[Frame]], Iterable[T]],
    ) -> AsyncIterator[list[Out]]:
        """POST for an event stream and translate its frames (each read's as `items` gives them);
        `translator` is made once the request is signed, so that the secrets it redacts include the
        credentials just used."""
        async with self.open_stream(url, body, {"accept": EVENT_STREAM}) as response:
            if EVENT_STREAM not in response.headers.get("content-type", ""):
                raise self.error_from_response(response, await response.aread())
            reads = cast(AsyncGenerator[bytes, None], self.iter_bytes(response))
            async with aclosing(reads):
                try:
                    async for batch in translate_reads(
                        _frames(reads, event_stream_decoder(), items), translator()
                    ):
                        yield batch
                except EventStreamError as exc:
                    raise bad_upstream_data(KIND, str(exc)) from None

    # -- the Messages door: Claude through InvokeModel, and CountTokens --------------------------------

    def speaks_messages(self, model: str) -> bool:
        """Claude models (base ids, inference profiles and their ARNs): InvokeModel takes Messages bodies."""
        return is_claude(model)

    async def messages(self, body: Mapping[str, Any], model: str, beta: Sequence[str]) -> dict[str, Any]:
        if not self.speaks_messages(model):
            return await super().messages(body, model, beta)
        headers = {"accept": "application/json"}
        message = await self.post_json(self.url(model, "invoke"), invoke_body(body, beta), headers)
        if not isinstance(message, dict) or not isinstance(message.get("content"), list):
            raise bad_upstream_data(KIND, "the response is not a message")
        return message

    def messages_batches(
        self, body: Mapping[str, Any], model: str, beta: Sequence[str]
    ) -> AsyncIterator[list[dict[str, Any] | bytes]]:
        if not self.speaks_messages(model):
            return super().messages_batches(body, model, beta)
        return self._event_stream(
            self.url(model, "invoke-with-response-stream"),
            invoke_body(body, beta),
            lambda: NativeStreamTranslator(secrets=self.secrets()),
            _as_read,
        )

    async def count_message_tokens(self, body: Mapping[str, Any], model: str, beta: Sequence[str]) -> int:
        """CountTokens over the InvokeModel body the request would be sent as."""
        if not self.speaks_messages(model):
            return await super().count_message_tokens(body, model, beta)
        return await self._count(model, invoke_count_input(invoke_body(body, beta, count=True)))

    async def count_tokens(self, request: Request, model: str) -> int | None:
        """CountTokens over the Converse request `complete` would send. Bedrock counts for Claude only, so
        other models have no counting API here (None)."""
        if not is_claude(model):
            return None
        return await self._count(model, converse_count_input(to_native(request, model).body))

    async def _count(self, model: str, body: Mapping[str, Any]) -> int:
        """CountTokens for `model`. Reports disagree on whether it takes cross-region inference profiles, so
        a profile that is refused (400) is counted once more under its foundation model, which tokenises
        alike; when that fails too, the first error stands."""
        try:
            answer = await self.post_json(self.url(model, "count-tokens"), body)
        except GatewayError as exc:
            base = base_model_id(model)
            if exc.status != 400 or base is None:
                raise
            try:
                answer = await self.post_json(self.url(base, "count-tokens"), body)
            except GatewayError:
                raise exc from None
        return input_tokens(answer, "inputTokens", KIND)

    # -- the embeddings door: Titan Text Embeddings and Cohere Embed through InvokeModel ---------------

    def embeds(self, model: str) -> bool:
        return embedding_family(model) is not None

    async def embed(self, request: EmbeddingRequest, model: str) -> dict[str, Any]:
        """Titan: one call per text, a few at once; Cohere: `COHERE_BATCH` texts per call, in turn
        (`_embeddings.py` has the mapping)."""
        family = embedding_family(model)
        if family is None:
            return await super().embed(request, model)
        texts = await input_texts(request, self.kind)
        url = self.url(model, "invoke")
        accept = {"accept": "application/json"}
        if family == TITAN:
            bodies = [titan_body(text, request, model) for text in texts]  # a bad size fails before any call

            async def titan(body: dict[str, Any]) -> tuple[list[float], int]:
                return titan_vector(await self.post_json(url, body, accept))

            results = await gather_limited([partial(titan, body) for body in bodies], TITAN_CONCURRENCY)
            vectors = [vector for vector, _ in results]
            return embedding_list(vectors, model, sum(tokens for _, tokens in results))
        vectors, total = [], 0
        for start in range(0, len(texts), COHERE_BATCH):
            chunk = texts[start : start + COHERE_BATCH]
            headers: dict[str, str] = {}
            answer = await self.post_json(
                url, cohere_body(chunk, request, model), accept, answer_headers=headers
            )
            found, tokens = cohere_vectors(answer, len(chunk), headers)
            vectors.extend(found)
            total += tokens
        return embedding_list(vectors, model, total)


async def _frames(
    body: AsyncIterator[bytes], decoder: FrameDecoder, items: Callable[[Iterator[Frame]], Iterable[T]]
) -> AsyncIterator[Iterable[T]]:
    """The frames of each read, as `items` gives them. A body that ends inside a frame raises
    `EventStreamError` when the reads run out, before the translator's own check that the stream was
    complete."""
    async for data in body:
        yield items(decoder.feed(data))
    decoder.close()


def _as_read(frames: Iterator[Frame]) -> Iterator[Frame]:
    return frames
