"""The upstream client the gateway creates for itself."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
import pytest

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
