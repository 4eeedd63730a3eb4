"""`BedrockProvider`: Converse and ConverseStream over HTTP, authenticated by a Bedrock API key or SigV4.

The translation is pure (`_request`, `_response`, `_stream`); signing lives in `_sigv4`. This module only
picks the region and the endpoint, and moves bytes.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator, Mapping, Sequence
from contextlib import aclosing
from typing import Any, cast
from urllib.parse import urlsplit

import httpx

from ...errors import GatewayError
from ...eventstream import EventStreamError, Frame, FrameDecoder, event_stream_decoder
from ...model_ids import path_segment
from ...wire import loads
from ..base import Request
from ..http import HTTPProvider
from ..streams import bad_upstream_data, one_by_one, translate_reads
from ._errors import KIND, bedrock_error, error_message_of, error_type_of
from ._request import to_native
from ._response import to_completion
from ._sigv4 import SigV4Signer, botocore_missing, has_botocore
from ._stream import StreamTranslator

__all__ = ["BedrockProvider"]

EVENT_STREAM = "application/vnd.amazon.eventstream"


def _region_from_url(base_url: str | None) -> str | None:
    """The region in a `https://bedrock-runtime[-fips].<region>.amazonaws.com` style endpoint."""
    if not base_url:
        return None
    match = re.match(r"bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.", urlsplit(base_url).hostname or "")
    return match.group(1) if match else None


class BedrockProvider(HTTPProvider):
    """Any model Amazon Bedrock serves through Converse, with SigV4 (botocore) or a Bedrock API key."""

    kind = KIND
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
    ) -> None:
        super().__init__(api_key, base_url, timeout, models=models, headers=headers, client=client)
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
        if self.api_key:
            return
        if not self.region:
            raise GatewayError(
                f"{KIND}: no AWS region configured for SigV4 (pass region= or set AWS_REGION)",
                status=500,
                type="server_error",
                code="provider_not_configured",
            )
        await self._signer.sign(request, self.region)

    async def complete(self, request: Request, model: str) -> dict[str, Any]:
        native = to_native(request, model)
        response = await self.post_json(self.url(model, "converse"), native.body)
        if not isinstance(response, Mapping):
            raise bad_upstream_data(KIND, "the response is not an object")
        return to_completion(response, model, tool_names=native.tool_names, json_tool=native.json_tool)

    def stream(self, request: Request, model: str) -> AsyncIterator[dict[str, Any]]:
        return one_by_one(self.stream_batches(request, model))

    async def stream_batches(self, request: Request, model: str) -> AsyncIterator[list[dict[str, Any]]]:
        native = to_native(request, model)
        headers = {"accept": EVENT_STREAM}
        async with self.open_stream(self.url(model, "converse-stream"), native.body, headers) as response:
            if EVENT_STREAM not in response.headers.get("content-type", ""):
                raise self.error_from_response(response, await response.aread())
            translator = StreamTranslator(
                model,
                tool_names=native.tool_names,
                json_tool=native.json_tool,
                secrets=self.secrets(),  # after signing: includes the credentials just used
            )
            body = cast(AsyncGenerator[bytes, None], self.iter_bytes(response))
            async with aclosing(body):
                try:
                    async for batch in translate_reads(_frames(body, event_stream_decoder()), translator):
                        yield batch
                except EventStreamError as exc:
                    raise bad_upstream_data(KIND, str(exc)) from None


async def _frames(body: AsyncIterator[bytes], decoder: FrameDecoder) -> AsyncIterator[Iterator[Frame]]:
    """The frames of each read. A body that ends inside a frame raises `EventStreamError` when the reads run
    out, before the translator's own check that the stream was complete."""
    async for data in body:
        yield decoder.feed(data)
    decoder.close()
