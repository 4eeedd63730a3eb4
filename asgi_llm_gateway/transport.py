"""The upstream HTTP client: the httpx API over aiohttp's connection pool on asyncio.

httpx's own pool slows down as connections grow (encode/httpx#3215); `httpx-aiohttp` keeps the httpx API
and swaps in aiohttp's pool, which also sets TCP_NODELAY on every socket. Under trio (no aiohttp) the
gateway uses httpx's own transport with TCP_NODELAY set explicitly.

The gateway's own client has no auth, redirects, cookies or event hooks, so when no proxy is configured in
the environment its requests go straight to the client's transport (`handle_async_request`, httpx's public
transport API): `AsyncClient.send` around it costs more than the aiohttp pool itself (measured ~60-80 µs a
request, a third of it in cookie extraction for a jar that keeps nothing). With `HTTP(S)_PROXY`/`ALL_PROXY`
set, requests go through `AsyncClient.send`, whose proxy mounts honour them (and `NO_PROXY`).

Either way aiohttp is handed the URL exactly as httpx encoded it (`ExactURLTransport`): what is sent is
what was signed, and a path segment stays one segment.
"""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from collections.abc import AsyncIterator, Mapping
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, NamedTuple

import httpx
from aiohttp import (
    BaseConnector,
    BasicAuth,
    ClientResponse,
    ClientSession,
    ClientTimeout,
    DummyCookieJar,
    StreamReader,
    TCPConnector,
    UnixConnector,
)
from httpx_aiohttp import HttpxAiohttpClient  # imported up front: a lazy import costs the first request
from httpx_aiohttp.transport import AiohttpResponseStream, AiohttpTransport, map_aiohttp_exceptions
from yarl import URL

__all__ = [
    "ExactURLTransport",
    "StreamedAnswer",
    "Upstream",
    "WholeAnswer",
    "aiohttp_timeout",
    "create_client",
]

_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=200, keepalive_expiry=30.0)


class Upstream(NamedTuple):
    """A provider's own pooled client, and the transport to send to directly (None: use `client.send`)."""

    client: httpx.AsyncClient
    direct: httpx.AsyncBaseTransport | None


class WholeAnswer(NamedTuple):
    """An answer read to its end by `ExactURLTransport.post_read`: no `httpx.Response` is built for it."""

    status_code: int
    #: Case-insensitive, as aiohttp read them.
    headers: Mapping[str, str]
    raw_headers: tuple[tuple[bytes, bytes], ...]
    #: The body as sent: still compressed when `compressed` says so.
    content: bytes

    @property
    def compressed(self) -> bool:
        """Whether the body needs decoding (aiohttp's `auto_decompress` is off: httpx decodes)."""
        return compressed(self.headers)

    def as_response(self) -> httpx.Response:
        """The same answer as an httpx response, its body decoded (gzip, deflate, br, zstd): for the rare
        answers that need one, an error's or a compressed one."""
        return httpx.Response(self.status_code, headers=self.raw_headers, content=self.content)


class StreamedAnswer:
    """An answer whose body is read as it arrives, by `ExactURLTransport.post_streamed`: its reads come
    straight off aiohttp, with no `httpx.Response` and no body stream built for it unless `as_response` asks
    (for an error's or a compressed body, which httpx decodes)."""

    __slots__ = ("_response", "headers", "status_code")

    def __init__(self, response: ClientResponse) -> None:
        self._response = response
        self.status_code = response.status
        #: Case-insensitive, as aiohttp read them.
        self.headers: Mapping[str, str] = response.headers

    @property
    def compressed(self) -> bool:
        """Whether the body needs decoding: then read it through `as_response()`."""
        return compressed(self.headers)

    def reads(self) -> AsyncIterator[bytes]:
        """The body's reads, each whatever has arrived; httpx's errors."""
        return _Reads(self._response.content)

    def as_response(self) -> httpx.Response:
        """The same answer as an httpx response, its body left to read (and close) through it."""
        return ExactURLTransport.streamed(self._response)

    async def aclose(self) -> None:
        """Hand the connection back (to the pool when the body was read to its end)."""
        with map_aiohttp_exceptions():
            await self._response.__aexit__(None, None, None)


def compressed(headers: Mapping[str, str]) -> bool:
    """Whether a body sent with `headers` needs decoding. The transports leave bodies as sent (aiohttp's
    `auto_decompress` is off under httpx-aiohttp, and aiohttp asks for gzip/deflate by default), so httpx
    decodes them."""
    encoding = headers.get("content-encoding")
    return encoding is not None and encoding.strip().lower() != "identity"


class ExactURLTransport(AiohttpTransport):
    """httpx-aiohttp's transport, but aiohttp gets the URL exactly as httpx encoded it.

    The stock transport passes `str(request.url)`, which aiohttp parses again and normalises: `%3A` becomes
    `:` and `%2E%2E` becomes `..`, then is resolved. SigV4 signs the encoded path, so a Bedrock model id with
    a colon (`…-v1:0`, ARNs) was signed for one path and sent on another (aiohttp-based AWS signers pass an
    already-encoded URL for the same reason)."""

    def get_client(self) -> ClientSession:
        """httpx-aiohttp's session and connector, but with no cookie jar: one session serves every user, so
        an upstream's Set-Cookie must never be sent back with someone else's request (aiohttp's default
        jar keeps and replays them; it also cost a cookie filter on every request)."""
        if self.client is not None:
            return super().get_client()
        limit = self.limits.max_connections if self.limits.max_connections is not None else 100
        keepalive = self.limits.keepalive_expiry
        connector: BaseConnector
        if self.uds:
            connector = UnixConnector(path=self.uds, keepalive_timeout=keepalive, limit=limit)
        else:
            local_addr = (self.local_address, 0) if self.local_address else None
            connector = TCPConnector(
                keepalive_timeout=keepalive, ssl=self.ssl_context, local_addr=local_addr, limit=limit
            )
        return ClientSession(connector=connector, cookie_jar=DummyCookieJar())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        data: bytes | httpx.AsyncByteStream | None
        try:
            data = request.content or None
        except httpx.RequestNotRead:
            data = request.stream  # type: ignore[assignment]
            request.headers.pop("transfer-encoding", None)  # aiohttp frames the body itself
        response = self.streamed(
            await self._send(
                request.method,
                URL(str(request.url), encoded=True),
                request.headers,
                data,
                aiohttp_timeout(timeout),
                request.extensions.get("sni_hostname"),
            )
        )
        response.request = request
        return response

    async def post(
        self, url: URL, headers: Mapping[str, str], content: bytes, timeout: ClientTimeout
    ) -> httpx.Response:
        """POST without an `httpx.Request` (a provider that signs has signed the headers already): building
        one (its URL, its header normalisation, Host and Content-Length added for aiohttp to read back) cost
        more per call than the rest of this transport. `url` is sent as it is (already encoded); the
        response has no `.request`."""
        return self.streamed(await self._send("POST", url, headers, content, timeout, None))

    async def post_streamed(
        self, url: URL, headers: Mapping[str, str], content: bytes, timeout: ClientTimeout
    ) -> StreamedAnswer:
        """`post` for a body to read as it arrives, without an `httpx.Response` (see `StreamedAnswer`)."""
        return StreamedAnswer(await self._send("POST", url, headers, content, timeout, None))

    async def post_read(
        self, url: URL, headers: Mapping[str, str], content: bytes, timeout: ClientTimeout
    ) -> WholeAnswer:
        """`post`, with the whole answer read and the connection back in the pool: no `httpx.Response`
        and no body stream are built, which a JSON call only reads to its end (measured: ~7% of a plain
        call's instructions, bench/instructions.py). httpx's errors, as `post`'s."""
        response = await self._send("POST", url, headers, content, timeout, None)
        with map_aiohttp_exceptions():
            async with response:  # a read cut short closes the connection rather than pool it
                body = await response.read()
        return WholeAnswer(response.status, response.headers, response.raw_headers, body)

    @staticmethod
    def streamed(response: ClientResponse) -> httpx.Response:
        """aiohttp's response as httpx's, its body left to read."""
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode()
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_ResponseBody(response),
            extensions=extensions,
        )

    async def _send(
        self,
        method: str,
        url: URL,
        headers: Mapping[str, str] | httpx.Headers,
        data: bytes | httpx.AsyncByteStream | None,
        timeout: ClientTimeout,
        server_hostname: str | None,
    ) -> ClientResponse:
        """Send, and return aiohttp's response once its head has arrived; httpx's errors."""
        if not isinstance(self.client, ClientSession):
            self.client = self.get_client()
        proxy = self.proxy
        with map_aiohttp_exceptions():
            return await self.client.request(
                method=method,
                url=url,
                headers=headers,
                data=data,
                allow_redirects=False,
                auto_decompress=False,
                compress=False,
                timeout=timeout,
                server_hostname=server_hostname,
                proxy=str(proxy.url) if proxy else None,
                proxy_auth=BasicAuth(*proxy.auth) if proxy and proxy.auth else None,
                proxy_headers=proxy.headers if proxy else None,
            ).__aenter__()


class _ResponseBody(AiohttpResponseStream):
    """httpx-aiohttp's response body, read with one await per read of whatever has arrived.

    The stock body is a generator around aiohttp's `iter_chunked`, itself an iterator around `read(n)`: two
    layers crossed for every read, which a streamed answer makes once per event when the model paces its
    tokens. Here iterating is `StreamReader.readany()` itself; aiohttp's errors become httpx's as there."""

    def __init__(self, aiohttp_response: ClientResponse) -> None:
        super().__init__(aiohttp_response)
        self._content = aiohttp_response.content

    def __aiter__(self) -> _Reads:
        return _Reads(self._content)


class _Reads:
    __slots__ = ("_content",)

    def __init__(self, content: StreamReader) -> None:
        self._content = content

    def __aiter__(self) -> _Reads:
        return self

    async def __anext__(self) -> bytes:
        try:
            data = await self._content.readany()
        except Exception:
            with map_aiohttp_exceptions():
                raise
            raise  # pragma: no cover - the mapping above always raises
        if not data:
            raise StopAsyncIteration
        return data


class _ProxyAwareClient(HttpxAiohttpClient):
    """httpx-aiohttp's client (proxy mounts from the environment), with `ExactURLTransport` everywhere.
    The options are the ones httpx passes to these two hooks (verify, cert, trust_env, http1/2, limits)."""

    def _init_transport(  # type: ignore[override]  # same keywords, forwarded as they come
        self, transport: httpx.AsyncBaseTransport | None = None, **options: Any
    ) -> httpx.AsyncBaseTransport:
        return transport or ExactURLTransport(**options)

    def _init_proxy_transport(  # type: ignore[override]
        self, proxy: httpx.Proxy, **options: Any
    ) -> httpx.AsyncBaseTransport:
        return ExactURLTransport(proxy=proxy, **options)


def create_client(timeout: httpx.Timeout) -> Upstream:
    """A pooled client for one provider. Called lazily, inside the running event loop."""
    if urllib.request.getproxies():  # what httpx reads: a client without an explicit transport mounts them
        if on_asyncio():
            return Upstream(_ProxyAwareClient(timeout=timeout, limits=_LIMITS, cookies=_no_cookies()), None)
        return Upstream(httpx.AsyncClient(timeout=timeout, limits=_LIMITS, cookies=_no_cookies()), None)
    transport: httpx.AsyncBaseTransport
    if on_asyncio():
        transport = ExactURLTransport(limits=_LIMITS)
    else:
        transport = httpx.AsyncHTTPTransport(
            limits=_LIMITS, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
        )
    return Upstream(httpx.AsyncClient(timeout=timeout, transport=transport, cookies=_no_cookies()), transport)


def aiohttp_timeout(timeout: Mapping[str, float | None]) -> ClientTimeout:
    """httpx's timeouts (`Timeout.as_dict()`) as aiohttp's: connect and read per socket operation, pool as
    the wait for a connection."""
    return ClientTimeout(
        sock_connect=timeout.get("connect"), sock_read=timeout.get("read"), connect=timeout.get("pool")
    )


def _no_cookies() -> CookieJar:
    """A jar that keeps nothing: one client serves every user, so an upstream's Set-Cookie must never be
    replayed on someone else's request. (Passed as a jar: httpx would copy an `httpx.Cookies` into a plain
    jar and lose the policy.)"""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


def on_asyncio() -> bool:
    """Whether the running event loop is asyncio's (the gateway also runs under trio)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
