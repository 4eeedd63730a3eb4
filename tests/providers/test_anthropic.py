"""The Anthropic translation against golden fixtures (tests/fixtures/anthropic/), and its HTTP plumbing.

Each fixture holds an input and the exact expected output: `request/` OpenAI request → Messages API body,
`rejected/` requests answered with a 400, `response/` message → chat.completion, `stream/` SSE events →
chunks (and the error that ends the stream, if any), `http_error/` upstream error responses → GatewayError.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import httpx
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from asgi_llm_gateway.errors import GatewayError
from asgi_llm_gateway.providers.anthropic import (
    AnthropicProvider,
    StreamTranslator,
    to_completion,
    to_native,
)
from asgi_llm_gateway.providers.caching import AutoCache
from asgi_llm_gateway.providers.reasoning import replays
from asgi_llm_gateway.sse import ServerSentEvent
from tests.support.golden import fixture, golden

KEY = "sk-ant-api03-secretsecret"
REQUEST = {"model": "claude/claude-haiku-4-5", "messages": [{"role": "user", "content": "hi"}]}


def error_dict(error: GatewayError) -> dict[str, Any]:
    return {
        "status": error.status,
        "type": error.type,
        "param": error.param,
        "code": error.code,
        "message": error.message,
    }


# -- pure translation ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", golden("anthropic", "request"))
def test_request(case: dict[str, Any]) -> None:
    request = case["openai"]
    untouched = copy.deepcopy(request)
    auto_cache = AutoCache(**case["auto_cache"]) if "auto_cache" in case else None
    thoughts = replays(request, case["scope"], None) if "scope" in case else None
    stream = bool(request.get("stream"))
    native = to_native(request, case["model"], stream=stream, auto_cache=auto_cache, thoughts=thoughts)
    assert native.body == case["anthropic"]
    assert native.json_tool == case["json_tool"]
    assert request == untouched  # the request is shared with fallback targets: never mutated


@pytest.mark.parametrize("case", golden("anthropic", "rejected"))
def test_rejected_request(case: dict[str, Any]) -> None:
    with pytest.raises(GatewayError) as caught:
        to_native(case["openai"], case["model"])
    assert error_dict(caught.value) == case["error"]


def test_default_max_tokens_can_be_configured() -> None:
    assert to_native(REQUEST, "claude-haiku-4-5", default_limit=1234).body["max_tokens"] == 1234
    limited = {**REQUEST, "max_completion_tokens": 10}
    assert to_native(limited, "claude-haiku-4-5", default_limit=1234).body["max_tokens"] == 10


@pytest.mark.parametrize("case", golden("anthropic", "response"))
def test_response(case: dict[str, Any]) -> None:
    completion = to_completion(
        case["anthropic"], json_tool=case["json_tool"], created=0, scope=case.get("scope")
    )
    assert completion == case["openai"]
    ChatCompletion.model_validate(completion)


@pytest.mark.parametrize("message", [{"type": "message"}, {"content": "text"}, ["not", "an", "object"]])
def test_response_without_content_list_is_502(message: Any) -> None:
    with pytest.raises(GatewayError) as caught:
        to_completion(message)
    assert caught.value.status == 502 and caught.value.code == "upstream_bad_response"


@pytest.mark.parametrize("case", golden("anthropic", "stream"))
def test_stream(case: dict[str, Any]) -> None:
    translator = StreamTranslator(
        "claude-haiku-4-5", json_tool=case["json_tool"], created=0, scope=case.get("scope")
    )
    chunks: list[dict[str, Any]] = []
    error: dict[str, Any] | None = None
    try:
        for event, data in case["events"]:
            chunks += translator.feed(
                ServerSentEvent(data if isinstance(data, str) else json.dumps(data), event)
            )
        translator.end()
    except GatewayError as exc:
        error = {**error_dict(exc), "headers": exc.headers}
    assert chunks == case["chunks"]
    assert error == case["error"]
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)


def test_stream_tool_call_indexes_count_tool_calls_only() -> None:
    case = fixture("anthropic", "stream", "parallel_tool_calls_after_text")
    block_indexes = {data["index"] for event, data in case["events"] if event == "content_block_start"}
    firsts = [
        d
        for c in case["chunks"]
        if c["choices"]
        for d in c["choices"][0]["delta"].get("tool_calls", ())
        if "id" in d
    ]
    assert block_indexes == {0, 1, 2, 3}
    assert [(d["index"], d["id"]) for d in firsts] == [(0, "toolu_01A"), (1, "toolu_01B"), (2, "toolu_01C")]


# -- HTTP ---------------------------------------------------------------------------------------------------


def provider(handler: Callable[[httpx.Request], httpx.Response], **options: Any) -> AnthropicProvider:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return AnthropicProvider(api_key=KEY, base_url="https://anthropic.test/", client=client, **options)


def sse(*events: tuple[str, dict[str, Any]]) -> bytes:
    return b"".join(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events)


def stream_case(name: str) -> bytes:
    case = fixture("anthropic", "stream", name)
    return sse(*[(event, data) for event, data in case["events"]])


@pytest.mark.anyio
async def test_complete_sends_native_request_with_auth_headers() -> None:
    seen: list[httpx.Request] = []
    answer = fixture("anthropic", "response", "parallel_tool_use")

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=answer["anthropic"])

    result = await provider(handler).complete(REQUEST, "claude-haiku-4-5")
    assert str(seen[0].url) == "https://anthropic.test/v1/messages"
    assert seen[0].headers["x-api-key"] == KEY
    assert seen[0].headers["anthropic-version"] == "2023-06-01"
    assert seen[0].headers["content-type"] == "application/json"
    assert "authorization" not in seen[0].headers
    assert json.loads(seen[0].content) == to_native(REQUEST, "claude-haiku-4-5").body
    assert result["choices"] == answer["openai"]["choices"] and result["usage"] == answer["openai"]["usage"]


@pytest.mark.anyio
async def test_key_from_environment_and_version_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-env")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=fixture("anthropic", "response", "text_end_turn")["anthropic"])

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    anthropic = AnthropicProvider(client=client, version="2026-10-21")
    await anthropic.complete(REQUEST, "claude-haiku-4-5")
    assert str(seen[0].url) == "https://api.anthropic.com/v1/messages"
    assert seen[0].headers["x-api-key"] == "sk-ant-from-env"
    assert seen[0].headers["anthropic-version"] == "2026-10-21"


class OpenEnded(httpx.AsyncByteStream):
    """A body that stays open after its bytes, like a connection the upstream keeps alive."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.body
        await anyio.sleep_forever()

    async def aclose(self) -> None:
        self.closed = True


@pytest.mark.anyio
async def test_stream_yields_chunks_and_stops_at_message_stop() -> None:
    seen: list[httpx.Request] = []
    body = OpenEnded(stream_case("parallel_tool_calls_after_text"))

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=body)

    with anyio.fail_after(5):
        chunks = [chunk async for chunk in provider(handler).stream(REQUEST, "claude-haiku-4-5")]
    assert body.closed
    assert json.loads(seen[0].content)["stream"] is True
    expected = fixture("anthropic", "stream", "parallel_tool_calls_after_text")["chunks"]
    assert [c["choices"] for c in chunks] == [c["choices"] for c in expected]
    assert chunks[-1]["usage"] == expected[-1]["usage"]
    assert {c["id"] for c in chunks} == {"msg_01STREAM"}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("ended_without_message_stop", 502, "upstream_stream_incomplete"),
        ("error_event_overloaded", 503, "upstream_overloaded"),
        ("garbage_data", 502, "upstream_bad_response"),
    ],
)
async def test_stream_failures_raise_after_the_chunks_sent(name: str, status: int, code: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=httpx.ByteStream(stream_case(name))
        )

    chunks: list[dict[str, Any]] = []
    with pytest.raises(GatewayError) as caught:
        async for chunk in provider(handler).stream(REQUEST, "claude-haiku-4-5"):
            chunks.append(chunk)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert (caught.value.status, caught.value.code) == (status, code)


def _error_handler(case: dict[str, Any]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        content = case["text"].encode() if "text" in case else json.dumps(case["body"]).encode()
        headers = {"content-type": "application/json", **case["headers"]}
        return httpx.Response(case["status"], headers=headers, content=content)

    return handler


@pytest.mark.anyio
@pytest.mark.parametrize("case", golden("anthropic", "http_error"))
async def test_http_error(case: dict[str, Any]) -> None:
    with pytest.raises(GatewayError) as caught:
        await provider(_error_handler(case)).complete(REQUEST, "claude-haiku-4-5")
    assert {**error_dict(caught.value), "headers": caught.value.headers} == case["error"]
    assert KEY not in caught.value.message


@pytest.mark.anyio
@pytest.mark.parametrize("case", golden("anthropic", "http_error"))
async def test_http_error_on_stream(case: dict[str, Any]) -> None:
    with pytest.raises(GatewayError) as caught:
        async for _ in provider(_error_handler(case)).stream(REQUEST, "claude-haiku-4-5"):
            pass
    assert {**error_dict(caught.value), "headers": caught.value.headers} == case["error"]


@pytest.mark.anyio
async def test_list_models() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        data = [{"type": "model", "id": "claude-haiku-4-5"}, {"type": "model", "id": "claude-sonnet-4-6"}]
        return httpx.Response(200, json={"data": data, "has_more": False})

    assert await provider(handler).list_models() == ["claude-haiku-4-5", "claude-sonnet-4-6"]
    assert str(seen[0].url) == "https://anthropic.test/v1/models?limit=1000"
    assert seen[0].headers["x-api-key"] == KEY
    assert await provider(handler, models=["claude-opus-4-1"]).list_models() == ["claude-opus-4-1"]
    assert len(seen) == 1
