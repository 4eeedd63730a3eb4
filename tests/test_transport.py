"""The upstream client the gateway creates for itself."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
import pytest

from asgi_llm_gateway.errors import GatewayError
from asgi_llm_gateway.providers import OpenAIProvider
from asgi_llm_gateway.transport import ExactURLTransport, create_client
from tests.support.server import serve

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_upstream_set_cookie_is_never_kept_for_the_next_user(anyio_backend: str) -> None:
    """Regression: one pooled client serves every user; httpx's default jar would replay cookies."""
    client, _ = create_client(httpx.Timeout(5))
    try:
        response = httpx.Response(
            200,
            headers={"set-cookie": "session=alice; Path=/"},
            request=httpx.Request("GET", "https://api.example.com/v1/chat/completions"),
        )
        client.cookies.extract_cookies(response)
        assert dict(client.cookies) == {}
        assert "cookie" not in client.build_request("GET", "https://api.example.com/v1/models").headers
    finally:
        await client.aclose()


@pytest.mark.anyio
async def test_asyncio_sends_straight_to_the_aiohttp_pool(no_proxy_env: None) -> None:
    from httpx_aiohttp.transport import AiohttpTransport

    client, direct = create_client(httpx.Timeout(5))
    try:
        # our ExactURLTransport; aiohttp sets TCP_NODELAY on its sockets itself
        assert isinstance(direct, AiohttpTransport)
    finally:
        await client.aclose()


@pytest.mark.parametrize("anyio_backend", ["trio"])
@pytest.mark.anyio
async def test_trio_sends_straight_to_httpx_transport_with_tcp_nodelay(
    anyio_backend: str, no_proxy_env: None
) -> None:
    client, direct = create_client(httpx.Timeout(5))
    try:
        assert isinstance(direct, httpx.AsyncHTTPTransport)
        assert (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1) in direct._pool._socket_options  # type: ignore[attr-defined]
    finally:
        await client.aclose()


def _forward_proxy(seen: list[dict[str, Any]]) -> Any:
    """A plain-HTTP forward proxy that answers for every upstream itself, and records what it was asked."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        seen.append({"path": scope["path"], "host": dict(scope["headers"]).get(b"host", b"").decode()})
        body = json.dumps(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 1,
                "model": "gpt-x",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "via proxy"},
                        "finish_reason": "stop",
                    }
                ],
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_a_proxy_in_the_environment_is_used(
    anyio_backend: str, no_proxy_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sending straight to the transport must not bypass HTTP(S)_PROXY, which httpx's client honours."""
    seen: list[dict[str, Any]] = []
    with serve(_forward_proxy(seen)) as proxy_url:
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        provider = OpenAIProvider(api_key="k", base_url="http://upstream.invalid/v1")
        try:
            request = {"model": "openai/gpt-x", "messages": [{"role": "user", "content": "hi"}]}
            answer = await provider.complete(request, "gpt-x")
            assert provider._direct is None
        finally:
            await provider.aclose()
    assert answer["choices"][0]["message"]["content"] == "via proxy"
    assert seen == [{"path": "/v1/chat/completions", "host": "upstream.invalid"}]


def _gzipping_upstream(seen: list[str]) -> Any:
    """An OpenAI-style upstream that compresses every answer with gzip (as upstreams may, since aiohttp asks
    for it), sending a streamed answer in several pieces of one gzip stream."""
    import gzip

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        seen.append(dict(scope["headers"]).get(b"accept-encoding", b"").decode())
        request = json.loads((await receive())["body"])
        chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-x"}
        if request.get("stream"):
            events = [
                {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "zip"}}]},
                {**chunk, "choices": [{"index": 0, "delta": {"content": "ped"}, "finish_reason": "stop"}]},
            ]
            body = (
                b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"
            )
            content_type = b"text/event-stream"
        else:
            answer = {
                "id": "c",
                "object": "chat.completion",
                "created": 1,
                "model": "gpt-x",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "zipped"},
                        "finish_reason": "stop",
                    }
                ],
            }
            body, content_type = json.dumps(answer).encode(), b"application/json"
        packed = gzip.compress(body)
        headers = [(b"content-type", content_type), (b"content-encoding", b"gzip")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        third = len(packed) // 3 + 1
        for start in range(0, len(packed), third):
            more = start + third < len(packed)
            await send(
                {"type": "http.response.body", "body": packed[start : start + third], "more_body": more}
            )

    return app


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_compressed_upstream_bodies_are_decoded(anyio_backend: str, no_proxy_env: None) -> None:
    """Regression: streams were read raw, so a gzip-encoded SSE body reached the SSE decoder compressed."""
    seen: list[str] = []
    with serve(_gzipping_upstream(seen)) as url:
        provider = OpenAIProvider(api_key="k", base_url=url + "/v1")
        try:
            request = {"model": "openai/gpt-x", "messages": [{"role": "user", "content": "hi"}]}
            answer = await provider.complete(request, "gpt-x")
            chunks = [chunk async for chunk in provider.stream({**request, "stream": True}, "gpt-x")]
        finally:
            await provider.aclose()
    assert answer["choices"][0]["message"]["content"] == "zipped"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "zipped"
    assert len(seen) == 2


def _path_recorder(seen: list[bytes]) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        seen.append(scope["raw_path"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


SIGNED_PATH = "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fus.x-v1%3A0/converse"


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.parametrize("through_proxy", [False, True])
@pytest.mark.anyio
async def test_bedrock_ids_with_colons_are_sent_on_the_exact_path_that_was_signed(
    anyio_backend: str, through_proxy: bool, no_proxy_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: aiohttp re-parsed the URL and sent `:` where `%3A` was signed (SigV4 then fails)."""
    seen: list[bytes] = []
    with serve(_path_recorder(seen)) as url:
        target = url + SIGNED_PATH
        if through_proxy:  # the proxy records the request line it was asked for
            monkeypatch.setenv("HTTP_PROXY", url)
            target = "http://upstream.invalid" + SIGNED_PATH
        client, direct = create_client(httpx.Timeout(5))
        try:
            request = client.build_request("POST", target, content=b"{}")
            if direct is None:
                response = await client.send(request)
            else:
                response = await direct.handle_async_request(request)
                await response.aclose()
        finally:
            await client.aclose()
    assert response.status_code == 204
    assert seen == [SIGNED_PATH.encode()]


@pytest.mark.anyio
async def test_unsigned_posts_go_to_aiohttp_without_an_httpx_request_on_the_path_httpx_encodes(
    no_proxy_env: None,
) -> None:
    """The fast path (`ExactURLTransport.post`) sends what the request-object path sent: the URL as httpx
    encodes it (a space quoted, `%3A` kept), the provider's headers, the JSON body. Bedrock takes it too,
    signing in `signed_headers` (the Bedrock fake checks those signatures on the path as received)."""
    from asgi_llm_gateway.providers import BedrockProvider

    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        seen.append({"path": scope["raw_path"], "headers": headers, "body": (await receive())["body"]})
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    with serve(app) as url:
        provider = OpenAIProvider(api_key="sk-test", base_url=url + "/v1", headers={"x-team": "a"})
        bedrock = BedrockProvider(api_key="bedrock-key", region="us-east-1")
        try:
            response = await provider._post(url + "/v1/a b%3Ac", {"n": 1}, {"x-more": "1"})
            await response.aclose()
            assert isinstance(provider._direct, ExactURLTransport)
            assert bedrock.client is not None and isinstance(bedrock._direct, ExactURLTransport)
        finally:
            await provider.aclose()
            await bedrock.aclose()
    assert response.status_code == 204
    [request] = seen
    assert request["path"] == b"/v1/a%20b%3Ac"
    assert request["body"] == b'{"n":1}'
    assert request["headers"]["authorization"] == "Bearer sk-test"
    assert request["headers"]["content-type"] == "application/json"
    assert request["headers"]["x-team"] == "a" and request["headers"]["x-more"] == "1"
    assert request["headers"]["content-length"] == "7"


@pytest.mark.anyio
async def test_aiohttp_never_replays_an_upstreams_cookie_to_the_next_user(no_proxy_env: None) -> None:
    """Regression: the aiohttp session under the gateway's transport kept aiohttp's default cookie jar, so a
    Set-Cookie from an upstream went back on every later request to it, whoever made it."""
    cookies: list[str | None] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        cookies.append(dict(scope["headers"]).get(b"cookie", b"").decode() or None)
        body = json.dumps(
            {
                "id": "c",
                "object": "chat.completion",
                "created": 1,
                "model": "gpt-x",
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
                ],
            }
        ).encode()
        headers = [(b"content-type", b"application/json"), (b"set-cookie", b"session=alice; Path=/")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    with serve(app) as url:
        # a host name: aiohttp's default jar refuses cookies from IP addresses, so 127.0.0.1 would hide it
        provider = OpenAIProvider(api_key="k", base_url=url.replace("127.0.0.1", "localhost") + "/v1")
        try:
            request = {"model": "openai/gpt-x", "messages": [{"role": "user", "content": "hi"}]}
            for _ in range(3):
                await provider.complete(request, "gpt-x")
            assert provider._direct is not None
            session = provider._direct.client  # type: ignore[attr-defined]
        finally:
            await provider.aclose()
    assert cookies == [None, None, None]
    assert len(session.cookie_jar) == 0


_ANSWER = json.dumps(
    {
        "id": "c",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-x",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "whole"}, "finish_reason": "stop"}
        ],
    }
).encode()


def _http_answer(status: str, body: bytes, *headers: str, length: int | None = None) -> bytes:
    head = [f"HTTP/1.1 {status}", "content-type: application/json", *headers]
    head.append(f"content-length: {len(body) if length is None else length}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class _ScriptedUpstream:
    """A raw HTTP/1.1 upstream on loopback that answers each request with the next scripted bytes, closing
    the connection after an answer marked to close; it records the client port of every request."""

    def __init__(self, answers: list[tuple[bytes, bool]]) -> None:
        self.answers = answers
        self.ports: list[int] = []

    async def __aenter__(self) -> str:
        import asyncio

        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: Any, writer: Any) -> None:
        port = writer.get_extra_info("peername")[1]
        try:
            while self.answers:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                self.ports.append(port)
                answer, close = self.answers.pop(0)
                writer.write(answer)
                await writer.drain()
                if close:
                    break
        except Exception:  # the client went away
            pass
        writer.close()


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per `httpx.Response` built while the test runs."""
    counted: list[int] = []
    response_init = httpx.Response.__init__

    def counting_init(self: httpx.Response, *args: Any, **kwargs: Any) -> None:
        counted.append(1)
        response_init(self, *args, **kwargs)

    monkeypatch.setattr(httpx.Response, "__init__", counting_init)
    return counted


CHAT = {"model": "openai/gpt-x", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.anyio
async def test_whole_json_answers_are_read_off_aiohttp_without_an_httpx_response_and_pool_the_connection(
    no_proxy_env: None, built: list[int]
) -> None:
    """`post_json` on our own client reads a plain answer whole from aiohttp (`ExactURLTransport.post_read`):
    no `httpx.Response` is built for it, and the connection goes back to the pool for the next call."""
    upstream = _ScriptedUpstream([(_http_answer("200 OK", _ANSWER), False)] * 3)
    async with upstream as url:
        provider = OpenAIProvider(api_key="k", base_url=url + "/v1")
        try:
            answers = [await provider.complete(CHAT, "gpt-x") for _ in range(3)]
        finally:
            await provider.aclose()
    assert [a["choices"][0]["message"]["content"] for a in answers] == ["whole"] * 3
    assert built == []
    assert len(upstream.ports) == 3 and len(set(upstream.ports)) == 1


async def _failing_call(answer: bytes) -> GatewayError:
    """The error a chat call raises when the upstream answers `answer`."""
    async with _ScriptedUpstream([(answer, False)]) as url:
        provider = OpenAIProvider(api_key="k", base_url=url + "/v1")
        try:
            with pytest.raises(GatewayError) as caught:
                await provider.complete(CHAT, "gpt-x")
        finally:
            await provider.aclose()
    return caught.value


@pytest.mark.anyio
async def test_an_error_read_whole_keeps_its_message_and_retry_hint(no_proxy_env: None) -> None:
    error = b'{"error":{"message":"slow down","type":"rate_limit_error"}}'
    answer = _http_answer("429 Too Many Requests", error, "retry-after-ms: 1500", "x-should-retry: true")
    caught = await _failing_call(answer)
    assert caught.status == 429
    assert "slow down" in str(caught)
    assert caught.headers == {"retry-after": "1.5"}
    assert caught.retry_hint is True


@pytest.mark.anyio
async def test_an_answer_cut_short_is_a_502_and_its_connection_is_not_pooled(no_proxy_env: None) -> None:
    """Regression guard for the whole-answer read: a body that ends before its Content-Length is an upstream
    connection error, and the next call gets a fresh connection that answers."""
    cut = _http_answer("200 OK", _ANSWER[:20], length=len(_ANSWER))
    upstream = _ScriptedUpstream([(cut, True), (_http_answer("200 OK", _ANSWER), False)])
    async with upstream as url:
        provider = OpenAIProvider(api_key="k", base_url=url + "/v1")
        try:
            with pytest.raises(GatewayError) as caught:
                await provider.complete(CHAT, "gpt-x")
            answer = await provider.complete(CHAT, "gpt-x")
        finally:
            await provider.aclose()
    assert caught.value.status == 502 and caught.value.code == "upstream_connection_error"
    assert answer["choices"][0]["message"]["content"] == "whole"
    assert len(set(upstream.ports)) == 2


@pytest.mark.anyio
async def test_a_compressed_answer_that_does_not_decode_is_a_502(no_proxy_env: None) -> None:
    caught = await _failing_call(_http_answer("200 OK", b"not gzip at all", "content-encoding: gzip"))
    assert caught.status == 502


@pytest.mark.anyio
async def test_answer_headers_are_copied_with_lower_case_names(no_proxy_env: None) -> None:
    answer = _http_answer("200 OK", b'{"ok":true}', "X-Amzn-Bedrock-Input-Token-Count: 7")
    async with _ScriptedUpstream([(answer, False)]) as url:
        provider = OpenAIProvider(api_key="k", base_url=url + "/v1")
        headers: dict[str, str] = {}
        try:
            assert await provider.post_json(url + "/v1/x", {}, answer_headers=headers) == {"ok": True}
        finally:
            await provider.aclose()
    assert headers["x-amzn-bedrock-input-token-count"] == "7"


def _sse_answer() -> bytes:
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-x"}
    events = [
        {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "stre"}}]},
        {**chunk, "choices": [{"index": 0, "delta": {"content": "am"}, "finish_reason": "stop"}]},
    ]
    body = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"
    return _http_answer("200 OK", body).replace(b"application/json", b"text/event-stream")


async def _streamed_text(provider: OpenAIProvider) -> str:
    chunks = [c async for c in provider.stream({**CHAT, "stream": True}, "gpt-x")]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


@pytest.mark.anyio
async def test_streams_are_read_off_aiohttp_without_an_httpx_response_and_pool_the_connection(
    no_proxy_env: None, built: list[int]
) -> None:
    upstream = _ScriptedUpstream([(_sse_answer(), False)] * 2)
    async with upstream as url:
        provider = OpenAIProvider(api_key="k", base_url=url + "/v1")
        try:
            texts = [await _streamed_text(provider) for _ in range(2)]
        finally:
            await provider.aclose()
    assert texts == ["stream", "stream"]
    assert built == []
    assert len(upstream.ports) == 2 and len(set(upstream.ports)) == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("answer", "status"),
    [
        (_http_answer("429 Too Many Requests", b'{"error":{"message":"slow down"}}'), 429),
        (_http_answer("200 OK", b'{"error":{"message":"slow down"}}'), 502),
    ],
    ids=["error-status", "json-with-200"],
)
async def test_a_stream_answered_with_an_error_or_plain_json_is_a_gateway_error(
    no_proxy_env: None, answer: bytes, status: int
) -> None:
    async with _ScriptedUpstream([(answer, False)]) as url:
        provider = OpenAIProvider(api_key="k", base_url=url + "/v1")
        try:
            with pytest.raises(GatewayError) as caught:
                await _streamed_text(provider)
        finally:
            await provider.aclose()
    assert caught.value.status == status and "slow down" in str(caught.value)
