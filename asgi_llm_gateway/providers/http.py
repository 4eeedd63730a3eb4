"""`HTTPProvider`: the HTTP plumbing every HTTP provider shares.

One lazily created pooled client per provider (mounted apps get no lifespan events), auth headers, request
building and signing, error mapping, and reading streamed bodies (SSE) in one list of events per read.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import cached_property
from typing import Any, ClassVar, Protocol, TypeVar, cast

import httpx
from aiohttp import ClientTimeout
from yarl import URL

from ..errors import GatewayError, redact, upstream_error
from ..memo import remember
from ..sse import ServerSentEvent, SSEData, SSEDecoder
from ..transport import ExactURLTransport, Upstream, aiohttp_timeout, compressed, create_client
from ..wire import dumps, loads
from .base import Provider
from .upstream import ATTEMPT, REQUEST_ID

__all__ = ["HTTPProvider"]

Event = TypeVar("Event")


class _EventReader(Protocol[Event]):
    """Bytes as they arrive → the events they complete (`SSEDecoder`, `SSEData`)."""

    def feed(self, chunk: bytes) -> list[Event]: ...

    def flush(self) -> list[Event]: ...


def _timeout(timeout: float | httpx.Timeout | None) -> httpx.Timeout:
    if isinstance(timeout, httpx.Timeout):
        return timeout
    total = 600.0 if timeout is None else float(timeout)
    return httpx.Timeout(total, connect=min(10.0, total))


class HTTPProvider(Provider):
    """Shared transport for providers that speak HTTP. Subclasses set the class attributes and translate."""

    #: Environment variable read when `api_key` is not given.
    api_key_env: ClassVar[str | None] = None
    #: Other variables read, in order, when `api_key_env` is unset (names the vendor's own SDKs also read).
    api_key_env_aliases: ClassVar[tuple[str, ...]] = ()
    #: Used when `base_url` is not given (same meaning as the provider's official SDK).
    default_base_url: ClassVar[str] = ""
    #: The response header holding the upstream's own request id (what its support asks for), if any.
    request_id_header: ClassVar[str | None] = "x-request-id"
    #: The request header in which the upstream takes a request id of the client's own, if it documents one
    #: (OpenAI's `X-Client-Request-Id`): every attempt sends the call's request id in it.
    client_request_id_header: ClassVar[str | None] = None
    #: Whether requests are signed (SigV4): `sign` signs a request object, `signed_headers` a POST the
    #: gateway's own client sends without one (see `_post`); a provider that signs overrides both.
    signs_requests: ClassVar[bool] = False

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = 600.0,
        *,
        models: Sequence[str] | None = None,
        headers: Mapping[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.api_key = api_key if api_key is not None else self._env_key()
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self.timeout = _timeout(timeout)
        self.models = list(models) if models is not None else None
        self.extra_headers = dict(headers or {})
        self._client = client
        self._owns_client = client is None
        self._direct: httpx.AsyncBaseTransport | None = None  # set with our own client (see `_open`)
        self._headers: dict[str, str] | None = None
        self._urls: dict[str, httpx.URL] = {}
        self._exact_urls: dict[str, URL] = {}
        self._extensions = {"timeout": self.timeout.as_dict()}

    @classmethod
    def key_variables(cls) -> tuple[str, ...]:
        """The environment variables that may hold this provider's key, in the order they are read."""
        return ((cls.api_key_env,) if cls.api_key_env else ()) + cls.api_key_env_aliases

    def _env_key(self) -> str | None:
        return next((os.environ[name] for name in self.key_variables() if os.environ.get(name)), None)

    def __repr__(self) -> str:  # never shows the key
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    # -- hooks for subclasses -------------------------------------------------------------------------

    #: Set by `reasoning_scope`'s setter, or derived on first use.
    _reasoning_scope: str | None = None

    @property
    def reasoning_scope(self) -> str:
        """The name this provider's encrypted reasoning and signed thinking are sealed with (see
        `sealing.py`): only a provider with the same scope gets it back. By default `<kind>-<digest of base
        URL and key>`: the content is readable only by the endpoint and account that made it, and the key
        stands for the account. Set it to give two providers that share an account the same scope."""
        if self._reasoning_scope is None:
            digest = hashlib.sha256(f"{self.base_url}\0{self.api_key or ''}".encode()).hexdigest()
            self._reasoning_scope = f"{self.kind}-{digest[:12]}"
        return self._reasoning_scope

    @reasoning_scope.setter
    def reasoning_scope(self, scope: str) -> None:
        self._reasoning_scope = scope

    def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate with the upstream."""
        return {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    async def sign(self, request: httpx.Request) -> None:
        """Last look at a request before it is sent (Bedrock signs it here)."""

    async def signed_headers(
        self, url: httpx.URL, headers: Mapping[str, str], content: bytes
    ) -> Mapping[str, str]:
        """`sign` for a POST sent without a request object: the headers to send with `content` to `url`.
        Called only when `signs_requests` is set."""
        return headers

    def secrets(self) -> Iterable[str | None]:
        """Values that must never appear in anything the gateway returns or logs."""
        return (self.api_key,)

    def error_details(self, status: int, body: Any, text: str) -> tuple[str, str | None]:
        """(message, code) from an upstream error body. `body` is the parsed JSON, or None."""
        if isinstance(body, dict):
            error = body.get("error", body)
            if isinstance(error, dict):
                message = error.get("message") or error.get("detail") or text
                code = error.get("code") or error.get("type")
                return str(message), str(code) if code is not None else None
            if isinstance(error, str):
                return error, None
        return text[:500] or f"HTTP {status}", None

    # -- transport --------------------------------------------------------------------------------------

    @property
    def client(self) -> httpx.AsyncClient:
        """Created on first use, inside the running loop: mounted apps get no lifespan events."""
        return self._connect().client

    def _connect(self) -> Upstream:
        """The client, and the transport to send to directly (see `_open`); both created on first use."""
        if self._client is None:
            self._client, self._direct = create_client(self.timeout)
        return Upstream(self._client, self._direct)

    async def aclose(self) -> None:
        client, self._client, self._direct = self._client, None, None
        if client is not None and self._owns_client:
            await client.aclose()

    async def _open(self, request: httpx.Request) -> httpx.Response:
        """Send through the client, or straight to its transport when the client has nothing to add
        (our own client, no proxy configured: see `transport.py`); the body is left to read. Raises httpx
        errors either way."""
        client = self.client
        direct = self._direct
        if direct is None:
            response = await client.send(request, stream=True)
        else:
            response = await direct.handle_async_request(request)
        self._note_request_id(response.headers)
        return response

    def _note_request_id(self, headers: Mapping[str, str]) -> None:
        attempt = ATTEMPT.get()
        if attempt is not None and self.request_id_header is not None:
            attempt.request_id = headers.get(self.request_id_header)

    async def _post(self, url: str, body: Any, headers: Mapping[str, str] | None) -> httpx.Response:
        """POST `body` as JSON with the provider's headers, the call's request id and the hooks' headers;
        the body of the answer is left to read. Raises httpx errors (and whatever `sign` raises).

        Our own client on asyncio sends without an `httpx.Request` (`ExactURLTransport.post`; a provider
        that signs does it in `signed_headers`): the request object cost ~15% of a plain call's
        instructions (bench/instructions.py)."""
        all_headers = self._request_headers(headers)
        client, poster = self._connect()
        if isinstance(poster, ExactURLTransport):
            response = await poster.post(*await self._direct_post(url, body, all_headers))
            self._note_request_id(response.headers)
            return response
        if self._owns_client:
            # Our own client has no defaults to merge: skip build_request's per-call merging.
            request = httpx.Request(
                "POST", self._url(url), content=dumps(body), headers=all_headers, extensions=self._extensions
            )
        else:  # a host's client: honour its default headers, cookies and timeouts
            request = client.build_request("POST", url, content=dumps(body), headers=all_headers)
        await self.sign(request)
        return await self._open(request)

    async def _direct_post(
        self, url: str, body: Any, all_headers: Mapping[str, str]
    ) -> tuple[URL, Mapping[str, str], bytes, ClientTimeout]:
        """What `ExactURLTransport` sends for a POST: the URL as httpx encodes it, the headers (signed, for a
        provider that signs), the body and the timeouts."""
        url_sent = self._exact_urls.get(url)
        if url_sent is None:  # encoded as httpx encodes it, once per distinct URL
            url_sent = remember(self._exact_urls, url, URL(str(self._url(url)), encoded=True))
        content = dumps(body)
        if self.signs_requests:
            all_headers = await self.signed_headers(self._url(url), all_headers, content)
        return url_sent, all_headers, content, self._aiohttp_timeout

    async def _read_all(self, response: httpx.Response) -> bytes:
        """The whole body; the connection goes back to the pool."""
        try:
            if compressed(response.headers):
                content = await response.aread()  # httpx decodes gzip, deflate, br, zstd
            else:  # `aread()` would add decoder and chunker layers that do nothing (~10 us at c=64)
                content = b"".join([chunk async for chunk in _body_stream(response)])
        finally:
            await response.aclose()
        return content

    def _base_headers(self) -> dict[str, str]:
        if self._headers is None:
            self._headers = {"content-type": "application/json", **self.auth_headers(), **self.extra_headers}
        return self._headers

    def _url(self, url: str) -> httpx.URL:
        """Parsed once per distinct URL (one per model at most): parsing shows in the profile."""
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = remember(self._urls, url, httpx.URL(url))
        return parsed

    @cached_property
    def _aiohttp_timeout(self) -> ClientTimeout:
        return aiohttp_timeout(self._extensions["timeout"])

    def _request_headers(self, headers: Mapping[str, str] | None) -> Mapping[str, str]:
        all_headers = self._base_headers()
        if headers:
            all_headers = {**all_headers, **headers}
        if self.client_request_id_header is not None:  # a class attribute: nothing more for the others
            request_id = REQUEST_ID.get()
            if request_id is not None:
                all_headers = {**all_headers, self.client_request_id_header: request_id}
        attempt = ATTEMPT.get()  # the hooks' headers for this attempt (trace context), set before signing
        if attempt is not None and attempt.headers:
            all_headers = {**all_headers, **attempt.headers}
        return all_headers

    def error_from_response(self, response: httpx.Response, content: bytes) -> GatewayError:
        """The `GatewayError` for a failed upstream response. Override to read provider-specific hints
        (a retry delay in the body, an auth failure under another status)."""
        text = content.decode("utf-8", errors="replace")
        try:
            body = loads(content) if content else None
        except ValueError:
            body = None
        message, code = self.error_details(response.status_code, body, text)
        retry_after = response.headers.get("retry-after")
        if retry_after is None and "retry-after-ms" in response.headers:
            try:
                retry_after = str(max(0.0, float(response.headers["retry-after-ms"]) / 1000))
            except ValueError:
                retry_after = None
        hint = response.headers.get("x-should-retry", "").strip().lower()
        return upstream_error(
            self.kind,
            response.status_code,
            message,
            code=code,
            retry_after=retry_after,
            retry_hint={"true": True, "false": False}.get(hint),
            secrets=self.secrets(),
        )

    def _transport_error(self, exc: httpx.HTTPError) -> GatewayError:
        detail = redact(str(exc) or type(exc).__name__, self.secrets())
        if isinstance(exc, httpx.TimeoutException):
            return GatewayError(
                f"{self.kind}: upstream timed out ({detail})", status=504, code="upstream_timeout"
            )
        return GatewayError(
            f"{self.kind}: upstream connection failed ({detail})",
            status=502,
            code="upstream_connection_error",
        )

    async def post_json(
        self,
        url: str,
        body: Any,
        headers: Mapping[str, str] | None = None,
        *,
        answer_headers: dict[str, str] | None = None,
    ) -> Any:
        """POST a JSON body and return the parsed JSON answer; failures become `GatewayError`s. The answer's
        headers are copied into `answer_headers` when given, names in lower case (Bedrock counts
        InvokeModel tokens there).

        Our own client on asyncio reads the answer whole off aiohttp (`ExactURLTransport.post_read`): an
        `httpx.Response` is built only for an error or a compressed body."""
        poster = self._connect().direct
        if not isinstance(poster, ExactURLTransport):
            return await self._json_answer(self._post(url, body, headers), answer_headers)
        all_headers = self._request_headers(headers)
        try:
            answer = await poster.post_read(*await self._direct_post(url, body, all_headers))
            self._note_request_id(answer.headers)
            if answer.status_code < 400 and not answer.compressed:
                return self._json_body(answer.content, answer.headers, answer_headers)
            response = answer.as_response()  # decodes the body: a bad one raises httpx's DecodingError
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None
        return self._parsed(response, response.content, answer_headers)

    async def _json_answer(
        self, sending: Awaitable[httpx.Response], answer_headers: dict[str, str] | None = None
    ) -> Any:
        """The parsed JSON of the answer `sending` brings; failures become `GatewayError`s."""
        try:
            response = await sending
            content = await self._read_all(response)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None
        return self._parsed(response, content, answer_headers)

    def _parsed(self, response: httpx.Response, content: bytes, answer_headers: dict[str, str] | None) -> Any:
        """The JSON of a whole answer whose body is `content` (decoded), or its error."""
        if response.status_code >= 400:
            raise self.error_from_response(response, content)
        return self._json_body(content, response.headers, answer_headers)

    def _json_body(
        self, content: bytes, headers: Mapping[str, str], answer_headers: dict[str, str] | None
    ) -> Any:
        if answer_headers is not None:
            answer_headers.update((name.lower(), value) for name, value in headers.items())
        try:
            return loads(content)
        except ValueError:
            raise GatewayError(
                f"{self.kind}: upstream sent a body that is not JSON",
                status=502,
                code="upstream_bad_response",
            ) from None

    async def get_json(self, url: str) -> Any:
        """GET a JSON resource (model lists); failures become `GatewayError`s."""
        headers = {**self.auth_headers(), **self.extra_headers}
        request = self.client.build_request("GET", url, headers=headers)
        await self.sign(request)
        return await self._json_answer(self._open(request))

    @asynccontextmanager
    async def open_stream(
        self, url: str, body: Any, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[httpx.Response]:
        """POST and hold the response open for streaming; an error status becomes a `GatewayError`."""
        try:
            response = await self._post(url, body, headers)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None
        try:
            await self._raise_for_error(response)
            yield response
        finally:
            await response.aclose()

    async def _raise_for_error(self, response: httpx.Response, *, events: bool = False) -> None:
        """An error status becomes a `GatewayError`, and so, when `events` are expected, does a JSON answer
        (some upstreams answer a streaming request with a plain JSON error and a 200)."""
        failed = response.status_code >= 400
        if not failed and events:
            content_type = response.headers.get("content-type", "")
            failed = "json" in content_type and "event-stream" not in content_type
        if failed:
            try:
                content = await response.aread()
            except httpx.HTTPError:
                content = b""
            raise self.error_from_response(response, content)

    async def iter_bytes(self, response: httpx.Response) -> AsyncIterator[bytes]:
        """The body of a streaming response, decoded if the upstream compressed it; a cut connection becomes
        a 502 `GatewayError`. `open_stream` closes it."""
        try:
            async for chunk in _reads(response):
                yield chunk
        except httpx.HTTPError as exc:
            raise self._broke_off(exc) from None

    def _broke_off(self, exc: httpx.HTTPError) -> GatewayError:
        return GatewayError(
            f"{self.kind}: upstream stream broke off ({redact(str(exc), self.secrets())})",
            status=504 if isinstance(exc, httpx.TimeoutException) else 502,
            code="upstream_stream_error",
        )

    def post_sse(
        self, url: str, body: Any, headers: Mapping[str, str] | None = None
    ) -> AsyncGenerator[list[ServerSentEvent], None]:
        """POST and yield the upstream's server-sent events, in one list per read that completed any."""
        return self._post_events(url, body, headers, SSEDecoder())

    def post_sse_data(
        self, url: str, body: Any, headers: Mapping[str, str] | None = None
    ) -> AsyncGenerator[list[bytes], None]:
        """The same, each event as its data alone, in bytes (`SSEData`): for streams whose events say
        everything in their data, where building event objects and decoding text would be wasted."""
        return self._post_events(url, body, headers, SSEData())

    async def _post_events(
        self, url: str, body: Any, headers: Mapping[str, str] | None, reader: _EventReader[Event]
    ) -> AsyncGenerator[list[Event], None]:
        reads, close = await self._open_events(url, body, headers)
        try:
            try:  # `iter_bytes` inline: one generator less to cross for every read
                async for data in reads:
                    events = reader.feed(data)  # decoded here too, not in one more generator layer
                    if events:
                        yield events
            except httpx.HTTPError as exc:
                raise self._broke_off(exc) from None
            events = reader.flush()
            if events:
                yield events
        finally:
            await close()

    async def _open_events(
        self, url: str, body: Any, headers: Mapping[str, str] | None
    ) -> tuple[AsyncIterator[bytes], Callable[[], Awaitable[None]]]:
        """POST for a stream of events: its reads, and what closes it. An error (an error status, a JSON
        answer, a failed connection) becomes a `GatewayError`, with the answer closed.

        Our own client on asyncio reads the events straight off aiohttp (`ExactURLTransport.post_streamed`):
        an `httpx.Response` is built only for an error or a compressed body."""
        poster = self._connect().direct
        response: httpx.Response
        try:
            if isinstance(poster, ExactURLTransport):
                answer = await poster.post_streamed(
                    *await self._direct_post(url, body, self._request_headers(headers))
                )
                self._note_request_id(answer.headers)
                content_type = answer.headers.get("content-type", "")
                if answer.status_code < 400 and not answer.compressed and "json" not in content_type:
                    return answer.reads(), answer.aclose
                response = answer.as_response()
            else:
                response = await self._post(url, body, headers)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None
        try:
            await self._raise_for_error(response, events=True)
        except BaseException:
            await response.aclose()
            raise
        return _reads(response), response.aclose


def _reads(response: httpx.Response) -> AsyncIterator[bytes]:
    """A streaming response's reads, decoded if the upstream compressed the body; httpx's errors.

    An uncompressed body is read from `response.stream` itself rather than through `aiter_bytes()`, whose
    decoder and chunker layers are crossed twice per upstream read and do nothing then."""
    return response.aiter_bytes() if compressed(response.headers) else aiter(_body_stream(response))


def _body_stream(response: httpx.Response) -> httpx.AsyncByteStream:
    """The response's byte stream, as the transport gives it."""
    return cast(httpx.AsyncByteStream, response.stream)
