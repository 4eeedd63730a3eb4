"""Bedrock translation (golden fixtures), event-stream decoding, error mapping and request signing, with no
network: upstream answers come from `httpx.MockTransport`."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from asgi_llm_gateway.errors import GatewayError
from asgi_llm_gateway.eventstream import EventStreamDecoder, EventStreamError, Frame, event_stream_decoder
from asgi_llm_gateway.providers.bedrock import (
    BedrockProvider,
    StreamTranslator,
    frame_event,
    model_family,
    to_completion,
    to_native,
    tool_name,
    tool_use_id,
)
from asgi_llm_gateway.providers.caching import AutoCache
from asgi_llm_gateway.providers.reasoning import replays
from tests.fakes.bedrock import (
    ACCESS_KEY,
    SECRET_KEY,
    encode_frame,
    event_frame,
    exception_frame,
    isolate_aws_environment,
    verify_sigv4,
)
from tests.support.golden import fixture, golden

MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"


def frame(event: str, payload: Mapping[str, Any]) -> Frame:
    """One event, as the event-stream decoder hands it to the translator."""
    return next(EventStreamDecoder().feed(event_frame(event, payload)))


def chat(text: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": "x", "messages": [{"role": "user", "content": text}], **extra}


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials, profiles, API keys or regions from the machine running the tests."""
    isolate_aws_environment(monkeypatch, tmp_path)


# -- golden translation ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", golden("bedrock", "request"))
def test_request_translation(case: dict[str, Any]) -> None:
    request = case["openai"]
    before = copy.deepcopy(request)
    auto_cache = AutoCache(**case["auto_cache"]) if "auto_cache" in case else None
    thoughts = replays(request, case["scope"], None) if "scope" in case else None
    native = to_native(request, case["model"], auto_cache=auto_cache, thoughts=thoughts)
    assert native.body == case["converse"]
    assert dict(native.tool_names) == case["tool_names"]
    assert native.json_tool == case["json_tool"]
    assert request == before  # the request is read-only: fallback targets share it


@pytest.mark.parametrize("case", golden("bedrock", "response"))
def test_response_translation(case: dict[str, Any]) -> None:
    result = to_completion(
        case["converse"],
        "model-id",
        tool_names=case["tool_names"],
        json_tool=case["json_tool"],
        created=0,
        scope=case.get("scope"),
    )
    assert result["id"].startswith("chatcmpl-")
    assert {**result, "id": "chatcmpl-test"} == case["openai"]


@pytest.mark.parametrize("case", golden("bedrock", "stream"))
def test_stream_translation(case: dict[str, Any]) -> None:
    translator = StreamTranslator(
        "model-id",
        tool_names=case["tool_names"],
        json_tool=case["json_tool"],
        id="chatcmpl-test",
        created=0,
        scope=case.get("scope"),
    )
    chunks = [chunk for event, payload in case["events"] for chunk in translator.feed(frame(event, payload))]
    translator.end()
    assert chunks == case["chunks"]


def test_stream_holds_the_finish_until_metadata() -> None:
    translator = StreamTranslator("m")
    translator.feed(frame("messageStart", {"role": "assistant"}))
    translator.feed(frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "hi"}}))
    assert translator.feed(frame("messageStop", {"stopReason": "end_turn"})) == []
    with pytest.raises(GatewayError) as caught:
        translator.end()  # metadata never came: not a success
    assert caught.value.status == 502


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("tool_use", "stop"),  # no tool call came back: nothing for the client to run
        ("something_new", "stop"),
    ],
)
def test_stop_reasons(stop_reason: str, finish_reason: str) -> None:
    response = {
        "output": {"message": {"role": "assistant", "content": [{"text": "x"}]}},
        "stopReason": stop_reason,
    }
    assert to_completion(response, "m")["choices"][0]["finish_reason"] == finish_reason


@pytest.mark.parametrize("stop_reason", ["malformed_model_output", "malformed_tool_use"])
def test_malformed_output_is_a_502(stop_reason: str) -> None:
    response = {
        "output": {"message": {"role": "assistant", "content": [{"text": "x"}]}},
        "stopReason": stop_reason,
    }
    with pytest.raises(GatewayError) as caught:
        to_completion(response, "m")
    assert caught.value.status == 502


@pytest.mark.parametrize("response", [{}, {"output": {}}, {"output": {"message": {"content": "text"}}}, []])
def test_a_response_without_a_message_is_a_502(response: Any) -> None:
    with pytest.raises(GatewayError) as caught:
        to_completion(response, "m")
    assert caught.value.status == 502


# -- requests the provider refuses -------------------------------------------------------------------------


def image(url: str) -> dict[str, Any]:
    return {
        "role": "user",
        "content": [{"type": "text", "text": "see"}, {"type": "image_url", "image_url": {"url": url}}],
    }


@pytest.mark.parametrize(
    ("request_", "model", "param"),
    [
        ({"messages": [image("https://example.com/cat.png")]}, MODEL, "messages[0].content[1].image_url.url"),
        ({"messages": [image("data:image/bmp;base64,Qk0=")]}, MODEL, "messages[0].content[1].image_url.url"),
        (
            {"messages": [{"role": "user", "content": [{"type": "video_url", "video_url": {"url": "x"}}]}]},
            MODEL,
            "messages[0].content[0].type",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}]},
            MODEL,
            "messages[0].content[0].file.file_id",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "file", "file": {"file_data": "data:application/zip;base64,UEs="}}
                        ],
                    }
                ]
            },
            MODEL,
            "messages[0].content[0].file.file_data",
        ),
        (
            chat(
                tools=[{"type": "function", "function": {"name": "f"}}],
                tool_choice={"type": "custom", "custom": {"name": "f"}},
            ),
            MODEL,
            "tool_choice",
        ),
        (chat(n=2), MODEL, "n"),
        (chat(logprobs=True), MODEL, "logprobs"),
        (chat(modalities=["text", "audio"]), MODEL, "audio"),
        (chat(tools=[{"type": "custom", "custom": {"name": "x"}}]), MODEL, "tools[0].type"),
        (
            chat(reasoning_effort="high", max_completion_tokens=1000),
            "anthropic.claude-3-7-sonnet-20250219-v1:0",
            "reasoning_effort",
        ),
        (
            chat(response_format={"type": "json_object"}, reasoning_effort="low"),
            "anthropic.claude-3-7-sonnet-20250219-v1:0",
            "response_format",
        ),
        (
            chat(
                response_format={"type": "json_object"},
                tools=[{"type": "function", "function": {"name": "json_output"}}],
            ),
            MODEL,
            "tools",
        ),
        (chat(top_k=5), "meta.llama3-1-70b-instruct-v1:0", "top_k"),
    ],
)
def test_unsupported_requests_are_400s_that_name_the_field(
    request_: dict[str, Any], model: str, param: str
) -> None:
    with pytest.raises(GatewayError) as caught:
        to_native({"model": "x", **request_}, model)
    assert caught.value.status == 400
    assert caught.value.param == param


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        ("anthropic.claude-3-7-sonnet-20250219-v1:0", {"thinking": {"type": "disabled"}}),
        ("global.anthropic.claude-opus-4-6-v1", {"thinking": {"type": "disabled"}}),
        ("us.amazon.nova-2-lite-v1:0", None),
        ("openai.gpt-oss-20b-1:0", None),
        ("meta.llama3-1-70b-instruct-v1:0", None),
    ],
)
def test_reasoning_effort_none(model: str, fields: dict[str, Any] | None) -> None:
    body = to_native(chat(reasoning_effort="none"), model).body
    assert body.get("additionalModelRequestFields") == fields
    assert "outputConfig" not in body


def test_reasoning_effort_is_ignored_where_converse_cannot_configure_it() -> None:
    body = to_native(chat(reasoning_effort="high"), "meta.llama3-1-70b-instruct-v1:0").body
    assert body == {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}


def test_tool_input_for_a_block_never_started_is_a_502() -> None:
    translator = StreamTranslator("m")
    translator.feed(frame("messageStart", {"role": "assistant"}))
    with pytest.raises(GatewayError) as caught:
        translator.feed(
            frame("contentBlockDelta", {"contentBlockIndex": 3, "delta": {"toolUse": {"input": "{}"}}})
        )
    assert caught.value.status == 502


def test_tool_names_and_ids_fit_bedrock_patterns() -> None:
    assert tool_name("get_weather") == "get_weather"
    assert tool_use_id("call_abc.1:2-3") == "call_abc.1:2-3"
    for weird in ("files.read", "a b", "x" * 80, "ünïcode"):
        rewritten = tool_name(weird)
        assert re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", rewritten)
        assert rewritten == tool_name(weird)  # calls and results agree
    assert tool_name("a.b") != tool_name("a b")
    for weird in ("call|1", "toolu_" + "x" * 70, "id with spaces"):
        assert re.fullmatch(r"[a-zA-Z0-9_.:-]{1,64}", tool_use_id(weird))
    assert tool_use_id("a|b") != tool_use_id("a/b")


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("anthropic.claude-3-7-sonnet-20250219-v1:0", "anthropic"),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic"),
        ("arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0", "amazon"),
        (
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/eu.meta.llama3-2-1b-instruct-v1:0",
            "meta",
        ),
        ("arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123", None),
        ("openai.gpt-oss-120b-1:0", "openai"),
    ],
)
def test_model_family(model: str, family: str | None) -> None:
    assert model_family(model) == family


def test_arn_model_ids_are_one_encoded_path_segment() -> None:
    provider = BedrockProvider(api_key="k", region="eu-west-1")
    arn = "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-3-7-sonnet-v1:0"
    assert provider.url(arn, "converse") == (
        "https://bedrock-runtime.eu-west-1.amazonaws.com/model/"
        "arn%3Aaws%3Abedrock%3Aeu-west-1%3A123456789012%3Ainference-profile%2Feu.anthropic.claude-3-7-sonnet-v1%3A0"
        "/converse"
    )


# -- event-stream framing ----------------------------------------------------------------------------------

DECODERS: dict[str, Callable[[], Any]] = {
    "botocore": lambda: event_stream_decoder(use_botocore=True),
    "builtin": lambda: event_stream_decoder(use_botocore=False),
}
VECTOR = bytes.fromhex(
    "0000009400000057b4ab9aee0b3a6576656e742d74797065070011636f6e74656e74426c6f636b44656c7461"
    "0d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d74"
    "7970650700056576656e747b22636f6e74656e74426c6f636b496e646578223a302c2264656c7461223a7b22"
    "74657874223a224869227d7d1f944657"
)


def test_the_factory_gives_the_builtin_decoder_and_botocores_on_request() -> None:
    """The gateway decodes with its own (2.6x faster per frame); botocore's is the cross-check above."""
    assert isinstance(event_stream_decoder(), EventStreamDecoder)
    assert type(event_stream_decoder(use_botocore=True)).__name__ == "_BotocoreDecoder"


def pieces(data: bytes, size: int) -> Iterator[bytes]:
    return (data[i : i + size] for i in range(0, len(data), size))


@pytest.mark.parametrize("decoder", DECODERS)
def test_the_documented_test_vector(decoder: str) -> None:
    [frame] = list(DECODERS[decoder]().feed(VECTOR))
    assert dict(frame.headers) == {
        ":event-type": "contentBlockDelta",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    assert frame_event(frame) == ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}})


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("size", [1, 7, 97, 148, 10_000], ids=lambda size: f"reads-of-{size}")
def test_frames_decode_whatever_the_reads(decoder: str, size: int) -> None:
    case = fixture("bedrock", "eventstream", "converse_stream")
    body = bytes.fromhex(case["body_hex"])
    decode = DECODERS[decoder]()
    frames = [frame for piece in pieces(body, size) for frame in decode.feed(piece)]
    decode.close()
    assert [{"headers": dict(f.headers), "payload": f.payload.decode()} for f in frames] == case["frames"]


@pytest.mark.parametrize("decoder", DECODERS)
def test_a_body_cut_inside_a_frame_is_an_error(decoder: str) -> None:
    decode = DECODERS[decoder]()
    assert len(list(decode.feed(VECTOR + VECTOR[:30]))) == 1
    with pytest.raises(EventStreamError):
        decode.close()


def corrupt(data: bytes, offset: int) -> bytes:
    broken = bytearray(data)
    broken[offset] ^= 0x01
    return bytes(broken)


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(corrupt(VECTOR, 3), id="prelude-crc"),
        pytest.param(corrupt(VECTOR, 100), id="payload-crc"),
        pytest.param(corrupt(VECTOR, len(VECTOR) - 1), id="message-crc"),
    ],
)
def test_checksum_mismatches_are_errors(decoder: str, body: bytes) -> None:
    with pytest.raises(EventStreamError):
        list(DECODERS[decoder]().feed(body))


@pytest.mark.parametrize("decoder", DECODERS)
def test_frames_before_a_bad_one_are_still_delivered(decoder: str) -> None:
    frames = DECODERS[decoder]().feed(VECTOR + VECTOR + corrupt(VECTOR, 100))
    assert next(frames).payload == next(frames).payload
    with pytest.raises(EventStreamError):
        next(frames)


def test_builtin_decoder_rejects_duplicate_and_unknown_headers() -> None:
    duplicate = b"\x02:a\x00\x02:a\x01"
    with pytest.raises(EventStreamError, match="duplicate"):
        list(EventStreamDecoder().feed(raw_frame(duplicate, b"")))
    with pytest.raises(EventStreamError, match="unknown header value type"):
        list(EventStreamDecoder().feed(raw_frame(b"\x02:a\x0f", b"")))


def test_builtin_decoder_reads_every_header_type() -> None:
    headers = (
        b"\x01t\x00"
        + b"\x01f\x01"
        + b"\x01b\x02\xff"
        + b"\x01s\x03\x01\x00"
        + b"\x01i\x04\x00\x00\x01\x00"
        + b"\x01l\x05"
        + (2**40).to_bytes(8, "big")
        + b"\x01y\x06\x00\x02\x00\x01"
        + b"\x01u\x07\x00\x03abc"
        + b"\x01d\x08"
        + (1_700_000_000_000).to_bytes(8, "big")
        + b"\x01g\x09"
        + bytes(range(16))
    )
    [frame] = list(EventStreamDecoder().feed(raw_frame(headers, b"{}")))
    assert dict(frame.headers) == {
        "t": True,
        "f": False,
        "b": -1,
        "s": 256,
        "i": 256,
        "l": 2**40,
        "y": b"\x00\x01",
        "u": "abc",
        "d": 1_700_000_000_000,
        "g": bytes(range(16)),
    }


def raw_frame(headers: bytes, payload: bytes) -> bytes:
    import struct
    import zlib

    total = 16 + len(headers) + len(payload)
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + headers + payload
    return message + struct.pack(">I", zlib.crc32(message))


@pytest.mark.parametrize(
    ("exception", "status"),
    [
        ("throttlingException", 429),
        ("validationException", 400),
        ("serviceUnavailableException", 503),
        ("internalServerException", 502),
        ("modelStreamErrorException", 502),
    ],
)
def test_exception_frames_become_gateway_errors(exception: str, status: int) -> None:
    frame = next(EventStreamDecoder().feed(exception_frame(exception, "it failed")))
    with pytest.raises(GatewayError) as caught:
        frame_event(frame)
    assert caught.value.status == status
    assert caught.value.message.startswith(f"bedrock: {exception[0].upper()}{exception[1:]}: it failed")


def test_error_frames_and_garbage_payloads_are_502s() -> None:
    error = encode_frame(
        {":message-type": "error", ":error-code": "InternalFailure", ":error-message": "boom"}, b""
    )
    with pytest.raises(GatewayError) as caught:
        frame_event(next(EventStreamDecoder().feed(error)))
    assert (caught.value.status, caught.value.message) == (502, "bedrock: InternalFailure: boom")
    garbage = Frame({":message-type": "event", ":event-type": "messageStart"}, b"not json")
    with pytest.raises(GatewayError) as caught:
        frame_event(garbage)
    assert caught.value.status == 502


# -- the provider over a mock transport --------------------------------------------------------------------


def mock(handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> BedrockProvider:
    options: dict[str, Any] = {"api_key": "ABSK-test-key", "region": "us-east-1", **kwargs}
    return BedrockProvider(client=httpx.AsyncClient(transport=httpx.MockTransport(handler)), **options)


class Body(httpx.AsyncByteStream):
    """A streamed response body, delivered in reads of 50 bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in pieces(self.data, 50):
            yield piece


def stream_body(frames: list[bytes]) -> httpx.Response:
    headers = {"content-type": "application/vnd.amazon.eventstream"}
    return httpx.Response(200, stream=Body(b"".join(frames)), headers=headers)


def events(*names: str) -> list[bytes]:
    payloads = {
        "messageStart": {"role": "assistant"},
        "delta": {"contentBlockIndex": 0, "delta": {"text": "Hi"}},
        "messageStop": {"stopReason": "end_turn"},
        "metadata": {
            "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
            "metrics": {"latencyMs": 1},
        },
    }
    return [event_frame("contentBlockDelta" if name == "delta" else name, payloads[name]) for name in names]


async def collect(provider: BedrockProvider, request: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return [chunk async for chunk in provider.stream(request or chat(stream=True), MODEL)]


@pytest.mark.anyio
async def test_a_complete_stream() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return stream_body(events("messageStart", "delta", "messageStop", "metadata"))

    chunks = await collect(mock(handler))
    assert [c["choices"][0]["delta"] if c["choices"] else c["usage"]["total_tokens"] for c in chunks] == [
        {"role": "assistant", "content": ""},
        {"content": "Hi"},
        {},
        2,
    ]
    [request] = seen
    assert request.url.raw_path == b"/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream"
    assert request.headers["authorization"] == "Bearer ABSK-test-key"
    assert request.headers["accept"] == "application/vnd.amazon.eventstream"
    assert "x-amz-date" not in request.headers


@pytest.mark.anyio
@pytest.mark.parametrize(
    "frames",
    [
        pytest.param(events("messageStart", "delta"), id="no-messageStop"),
        pytest.param(events("messageStart", "delta", "messageStop"), id="no-metadata"),
        pytest.param(
            [*events("messageStart", "delta", "messageStop"), events("metadata")[0][:40]], id="cut-in-frame"
        ),
        pytest.param(
            [*events("messageStart"), corrupt(events("delta")[0], 60), *events("messageStop", "metadata")],
            id="bad-crc",
        ),
    ],
)
async def test_broken_streams_are_502s(frames: list[bytes]) -> None:
    provider = mock(lambda request: stream_body(frames))
    with pytest.raises(GatewayError) as caught:
        await collect(provider)
    assert caught.value.status == 502


@pytest.mark.anyio
async def test_a_mid_stream_exception_keeps_its_status() -> None:
    frames = [*events("messageStart", "delta"), exception_frame("throttlingException", "slow down")]
    chunks: list[dict[str, Any]] = []
    with pytest.raises(GatewayError) as caught:
        async for chunk in mock(lambda request: stream_body(frames)).stream(chat(stream=True), MODEL):
            chunks.append(chunk)
    assert len(chunks) == 2  # role and "Hi" reached the client before the failure
    assert caught.value.status == 429


@pytest.mark.anyio
async def test_a_json_answer_to_a_stream_request_is_a_502() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"message": "odd"}, headers={"x-amzn-ErrorType": "ValidationException"}
        )

    with pytest.raises(GatewayError) as caught:
        await collect(mock(handler))
    assert caught.value.status == 502
    assert "ValidationException: odd" in caught.value.message


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("exception", "status", "client_status"),
    [
        ("ValidationException", 400, 400),
        ("AccessDeniedException", 403, 502),
        ("ResourceNotFoundException", 404, 404),
        ("ModelTimeoutException", 408, 504),
        ("ModelErrorException", 424, 502),
        ("ThrottlingException", 429, 429),
        ("ModelNotReadyException", 429, 503),
        ("ServiceQuotaExceededException", 400, 429),
        ("InternalServerException", 500, 502),
        ("ServiceUnavailableException", 503, 503),
        ("UnrecognizedClientException", 403, 502),
    ],
)
async def test_http_errors(exception: str, status: int, client_status: int) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status,
            json={"message": f"{exception} happened"},
            headers={"x-amzn-ErrorType": f"{exception}:http://internal.amazon.com/coral/com.amazon.bedrock/"},
        )

    with pytest.raises(GatewayError) as caught:
        await mock(handler).complete(chat(), MODEL)
    assert caught.value.status == client_status
    assert f"{exception}: {exception} happened" in caught.value.message
    assert caught.value.to_dict()["error"]["message"].startswith("bedrock: ")


@pytest.mark.anyio
async def test_an_error_named_in_the_body_and_capitalised_message() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            429, json={"__type": "com.amazon.coral#ThrottlingException", "Message": "Rate exceeded"}
        )

    with pytest.raises(GatewayError) as caught:
        await mock(handler).complete(chat(), MODEL)
    assert caught.value.status == 429
    assert "ThrottlingException: Rate exceeded" in caught.value.message


# -- authentication ----------------------------------------------------------------------------------------


def capture() -> tuple[list[httpx.Request], Callable[[httpx.Request], httpx.Response]]:
    seen: list[httpx.Request] = []
    answer = {
        "output": {"message": {"role": "assistant", "content": [{"text": "ok"}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
        "metrics": {"latencyMs": 1},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=answer)

    return seen, handler


def check_signature(
    request: httpx.Request, credentials: dict[str, tuple[str, str | None]], region: str
) -> Any:
    return verify_sigv4(
        method=request.method,
        raw_path=request.url.raw_path.decode(),
        query="",
        headers={name: value for name, value in request.headers.items()},
        body=request.content,
        credentials=credentials,
        region=region,
    )


@pytest.mark.anyio
async def test_explicit_keys_are_signed_with_sigv4() -> None:
    seen, handler = capture()
    provider = mock(handler, api_key=None, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)
    result = await provider.complete(chat(), MODEL)
    assert result["choices"][0]["message"]["content"] == "ok"
    [request] = seen
    assert request.headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    assert "/us-east-1/bedrock/aws4_request" in request.headers["authorization"]
    assert check_signature(request, {ACCESS_KEY: (SECRET_KEY, None)}, "us-east-1") is None
    assert check_signature(request, {ACCESS_KEY: ("other-secret", None)}, "us-east-1") is not None


@pytest.mark.anyio
async def test_temporary_credentials_send_their_token() -> None:
    seen, handler = capture()
    provider = mock(
        handler,
        api_key=None,
        aws_access_key_id="ASIAEXAMPLE",
        aws_secret_access_key="s3cr3t",
        aws_session_token="tok",
    )
    await provider.complete(chat(), MODEL)
    assert seen[0].headers["x-amz-security-token"] == "tok"
    assert check_signature(seen[0], {"ASIAEXAMPLE": ("s3cr3t", "tok")}, "us-east-1") is None


@pytest.mark.anyio
async def test_credentials_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    seen, handler = capture()
    provider = mock(handler, api_key=None, region=None)
    assert provider.region == "ap-south-1"
    assert provider.base_url == "https://bedrock-runtime.ap-south-1.amazonaws.com"
    await provider.complete(chat(), MODEL)
    assert check_signature(seen[0], {ACCESS_KEY: (SECRET_KEY, None)}, "ap-south-1") is None


def test_region_sources(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "config").write_text("[profile work]\nregion = eu-central-1\n")
    assert BedrockProvider(api_key="k", profile="work").region == "eu-central-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    assert BedrockProvider(api_key="k").region == "us-west-2"
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    assert BedrockProvider(api_key="k").region == "eu-west-3"  # AWS_REGION first, as the AWS CLI v2
    assert BedrockProvider(api_key="k", region="sa-east-1").region == "sa-east-1"
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    fips = BedrockProvider(api_key="k", base_url="https://bedrock-runtime-fips.us-gov-west-1.amazonaws.com")
    assert fips.region == "us-gov-west-1"


@pytest.mark.anyio
async def test_no_region_is_a_clear_error_at_call_time() -> None:
    provider = BedrockProvider(api_key="k")
    assert provider.region is None
    with pytest.raises(GatewayError) as caught:
        await provider.complete(chat(), MODEL)
    assert caught.value.status == 500
    assert "AWS_REGION" in caught.value.message


@pytest.mark.anyio
async def test_the_api_key_comes_from_the_environment_unless_aws_keys_are_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "ABSK-from-env")
    seen, handler = capture()
    await mock(handler, api_key=None).complete(chat(), MODEL)
    assert seen[-1].headers["authorization"] == "Bearer ABSK-from-env"
    explicit = mock(handler, api_key=None, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)
    await explicit.complete(chat(), MODEL)
    assert seen[-1].headers["authorization"].startswith("AWS4-HMAC-SHA256 ")


@pytest.mark.anyio
async def test_missing_credentials_are_a_502_without_secrets() -> None:
    provider = mock(capture()[1], api_key=None)
    with pytest.raises(GatewayError) as caught:
        await provider.complete(chat(), MODEL)
    assert caught.value.status == 502
    assert caught.value.code == "upstream_authentication_error"


@pytest.mark.anyio
async def test_credentials_never_show() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"message": f"echo {SECRET_KEY} and tok-secret-token"})

    provider = mock(
        handler,
        api_key=None,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        aws_session_token="tok-secret-token",
    )
    assert SECRET_KEY not in repr(provider) and "tok-secret" not in repr(provider)
    with pytest.raises(GatewayError) as caught:
        await provider.complete(chat(), MODEL)
    assert SECRET_KEY not in caught.value.message
    assert "tok-secret-token" not in caught.value.message
    bearer = BedrockProvider(api_key="ABSK-very-secret-key", region="us-east-1")
    assert "ABSK-very-secret-key" not in repr(bearer)
    assert "ABSK-very-secret-key" in list(bearer.secrets())


def test_keys_come_in_pairs() -> None:
    with pytest.raises(ValueError, match="together"):
        BedrockProvider(aws_access_key_id=ACCESS_KEY, region="us-east-1")


def test_the_package_works_without_botocore_for_api_keys() -> None:
    """botocore is an optional extra: importing, bearer auth and stream decoding must not need it."""
    script = """
import sys
import time
sys.modules["botocore"] = None
from asgi_llm_gateway.providers import BedrockProvider
from asgi_llm_gateway.eventstream import EventStreamDecoder, event_stream_decoder
provider = BedrockProvider(api_key="k", region="us-east-1")
assert isinstance(event_stream_decoder(), EventStreamDecoder)
try:
    BedrockProvider(aws_access_key_id="a", aws_secret_access_key="b", region="us-east-1")
except ImportError as exc:
    print(exc)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert "pip install 'asgi-llm-gateway[bedrock]'" in result.stdout


@pytest.mark.anyio
@pytest.mark.parametrize("token", [None, "session-token"])
@pytest.mark.parametrize(
    "path",
    [
        "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse",
        "/model/arn%3Aaws%3Abedrock%3Aus-west-2%3A123456789012%3Ainference-profile%2Fus.x/converse-stream",
        "/model/amazon.titan-embed-text-v2%3A0/invoke",
    ],
)
async def test_signatures_are_botocores_for_the_same_request_and_time(path: str, token: str | None) -> None:
    """The signer computes SigV4 itself (the signing key derived once per secret, day and region); its
    headers must be exactly those botocore's SigV4Auth gives the same request at the same time, for paths
    with encoded `:` and `/` (inference-profile ARNs), with and without a session token, in two regions
    (the cached key must follow the region), and still verify a day later (and the day's key with it)."""
    import calendar
    import datetime

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from asgi_llm_gateway.providers.bedrock._sigv4 import SigV4Signer

    signer = SigV4Signer(access_key=ACCESS_KEY, secret_key=SECRET_KEY, session_token=token)
    body = b'{"messages": [{"role": "user", "content": [{"text": "hi"}]}]}'
    for region in ("us-east-1", "eu-central-1", "us-east-1"):
        host = f"bedrock-runtime.{region}.amazonaws.com"
        theirs = AWSRequest(
            method="POST",
            url=f"https://{host}{path}",
            data=body,
            headers={"host": host, "content-type": "application/json"},
        )
        SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY, token), "bedrock", region).add_auth(theirs)
        when = calendar.timegm(time.strptime(theirs.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ"))
        ours = httpx.Request(
            "POST", f"https://{host}{path}", content=body, headers={"content-type": "application/json"}
        )
        await signer.sign(ours, region, now=when)
        for name in ("authorization", "x-amz-date", "x-amz-security-token"):
            assert ours.headers.get(name) == theirs.headers.get(name), name
    tomorrow = when + 86_400
    later = httpx.Request(
        "POST", f"https://{host}{path}", content=body, headers={"content-type": "application/json"}
    )
    await signer.sign(later, "us-east-1", now=tomorrow)
    assert time.strftime("%Y%m%d", time.gmtime(tomorrow)) in later.headers["authorization"]
    credentials = {ACCESS_KEY: (SECRET_KEY, token)}
    assert (
        verify_sigv4(
            method="POST",
            raw_path=later.url.raw_path.decode(),
            query="",
            headers=dict(later.headers.items()),
            body=body,
            credentials=credentials,
            region="us-east-1",
            now=datetime.datetime.fromtimestamp(tomorrow, datetime.timezone.utc),
        )
        is None
    )


@pytest.mark.parametrize(
    "path", ["/model/a%3A0/converse", "/model/a b/x", "/model/é/x", "/m/~x/%2F", "/model/a+b=c/x", ""]
)
def test_the_canonical_path_is_botocores_quote(path: str) -> None:
    """The shortcut for already-encoded paths gives exactly `quote(path, safe="/~")`, and anything else
    takes `quote` itself."""
    from urllib.parse import quote

    from asgi_llm_gateway.providers.bedrock._sigv4 import _canonical_path

    assert _canonical_path(path) == quote(path, safe="/~")
