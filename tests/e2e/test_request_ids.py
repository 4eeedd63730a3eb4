"""Request ids through the real clients over loopback: every endpoint and status answers with one, the id a
client sent (when safe) is echoed back, an unsafe one is replaced by a fresh `req_…` id, and the Anthropic
door names it the way Anthropic's SDK reads it (`request-id`) as well as OpenAI's way (`x-request-id`).

Ids are checked where each SDK reads them: `_request_id` on the openai and anthropic SDKs' objects,
`request_id` on their errors; raw `httpx` for what no SDK reaches (404, 405, 413, probes, HEAD)."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import anthropic
import httpx
import openai
import pytest

from asgi_llm_gateway import Gateway
from asgi_llm_gateway.auth import api_keys
from tests.support.server import serve

KEY = "sk-gw-request-ids-0001"
GENERATED = re.compile(r"req_[0-9a-f]{24}")
MAX_BODY = 4096
OWN_ID = "trace-7f3a.span_9:01"
HELLO = [{"role": "user", "content": "Hello"}]


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    gateway = Gateway(auth=api_keys([KEY]), max_body_size=MAX_BODY)
    with serve(gateway) as url:
        yield url


@pytest.fixture
def oai(base_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=base_url + "/v1", api_key=KEY, max_retries=0) as client:
        yield client


@pytest.fixture
def claude(base_url: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=base_url, api_key=KEY, max_retries=0) as client:
        yield client


def _generated(value: str | None) -> str:
    assert value is not None and GENERATED.fullmatch(value), value
    return value


# -- the openai SDK: every door it speaks to ---------------------------------------------------------------

OpenAICall = Callable[[openai.OpenAI], "str | None"]


def _chat(client: openai.OpenAI) -> str | None:
    return client.chat.completions.create(model="echo/echo-1", messages=HELLO)._request_id  # type: ignore[arg-type]


def _chat_stream(client: openai.OpenAI) -> str | None:
    with client.chat.completions.with_streaming_response.create(
        model="echo/echo-1",
        messages=HELLO,  # type: ignore[arg-type]
        stream=True,
    ) as response:
        assert "".join(response.iter_lines())
        return response.request_id


def _models(client: openai.OpenAI) -> str | None:
    return client.models.with_raw_response.list().request_id


def _one_model(client: openai.OpenAI) -> str | None:
    return client.models.retrieve("echo/echo-1")._request_id


def _embeddings(client: openai.OpenAI) -> str | None:
    return client.embeddings.create(model="echo/echo-1", input="hello")._request_id


def _responses(client: openai.OpenAI) -> str | None:
    return client.responses.create(model="echo/echo-1", input="hello")._request_id


def _responses_stream(client: openai.OpenAI) -> str | None:
    with client.responses.with_streaming_response.create(
        model="echo/echo-1", input="hello", stream=True
    ) as response:
        assert "".join(response.iter_lines())
        return response.request_id


def _background_and_cancel(client: openai.OpenAI) -> str | None:
    queued = client.responses.create(model="echo/echo-1", input="hello", background=True)
    _generated(queued._request_id)
    fetched = client.responses.retrieve(queued.id)
    _generated(fetched._request_id)
    return client.responses.cancel(queued.id)._request_id


OPENAI_CALLS: dict[str, OpenAICall] = {
    "chat": _chat,
    "chat stream": _chat_stream,
    "models": _models,
    "one model": _one_model,
    "embeddings": _embeddings,
    "responses": _responses,
    "responses stream": _responses_stream,
    "responses background, retrieve, cancel": _background_and_cancel,
}


@pytest.mark.parametrize("what", OPENAI_CALLS)
def test_openai_sdk_reads_a_generated_id(oai: openai.OpenAI, what: str) -> None:
    _generated(OPENAI_CALLS[what](oai))


@pytest.mark.parametrize(
    "what", ["chat", "chat stream", "models", "embeddings", "responses", "responses stream"]
)
def test_the_clients_own_id_is_echoed(base_url: str, what: str) -> None:
    headers = {"x-request-id": OWN_ID}
    with openai.OpenAI(
        base_url=base_url + "/v1", api_key=KEY, max_retries=0, default_headers=headers
    ) as client:
        assert OPENAI_CALLS[what](client) == OWN_ID


def test_openai_errors_carry_the_id(base_url: str, oai: openai.OpenAI) -> None:
    stranger = openai.OpenAI(base_url=base_url + "/v1", api_key="sk-wrong", max_retries=0)
    with stranger, pytest.raises(openai.AuthenticationError) as refused:
        stranger.chat.completions.create(model="echo/echo-1", messages=HELLO)  # type: ignore[arg-type]
    _generated(refused.value.request_id)
    with pytest.raises(openai.BadRequestError) as bad:
        oai.chat.completions.create(model="echo/echo-1", messages=[])
    _generated(bad.value.request_id)
    with pytest.raises(openai.NotFoundError) as missing:
        oai.chat.completions.create(model="nowhere/none", messages=HELLO)  # type: ignore[arg-type]
    _generated(missing.value.request_id)
    with pytest.raises(openai.AuthenticationError) as echoed:
        stranger_with_id = openai.OpenAI(
            base_url=base_url + "/v1",
            api_key="sk-wrong",
            max_retries=0,
            default_headers={"x-request-id": OWN_ID},
        )
        with stranger_with_id:
            stranger_with_id.models.list()
    assert echoed.value.request_id == OWN_ID


# -- the anthropic SDK: the Messages door ------------------------------------------------------------------


def test_anthropic_sdk_reads_the_id_on_messages(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(model="echo/echo-1", max_tokens=16, messages=HELLO)  # type: ignore[arg-type]
    _generated(message._request_id)
    with claude.messages.with_streaming_response.create(
        model="echo/echo-1",
        max_tokens=16,
        messages=HELLO,  # type: ignore[arg-type]
        stream=True,
    ) as streamed:
        assert "".join(streamed.iter_lines())
        assert streamed.headers["request-id"] == _generated(streamed.headers["x-request-id"])
    counted = claude.messages.count_tokens(model="echo/echo-1", messages=HELLO)  # type: ignore[arg-type]
    _generated(counted._request_id)
    models = claude.models.with_raw_response.list()
    assert models.headers["request-id"] == _generated(models.headers["x-request-id"])


def test_anthropic_sdk_errors_carry_the_id(base_url: str, claude: anthropic.Anthropic) -> None:
    stranger = anthropic.Anthropic(base_url=base_url, api_key="sk-wrong", max_retries=0)
    with stranger, pytest.raises(anthropic.AuthenticationError) as refused:
        stranger.messages.create(model="echo/echo-1", max_tokens=16, messages=HELLO)  # type: ignore[arg-type]
    _generated(refused.value.request_id)
    with pytest.raises(anthropic.BadRequestError) as bad:
        claude.messages.create(model="echo/echo-1", max_tokens=16, messages=[])
    _generated(bad.value.request_id)
    message = claude.messages.create(
        model="echo/echo-1",
        max_tokens=16,
        messages=HELLO,  # type: ignore[arg-type]
        extra_headers={"x-request-id": OWN_ID},
    )
    assert message._request_id == OWN_ID


# -- raw HTTP: what no SDK reaches --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/healthz", 200),
        ("HEAD", "/healthz", 200),
        ("GET", "/readyz", 200),
        ("HEAD", "/v1/models", 200),
        ("GET", "/v1/nowhere", 404),
        ("GET", "/v1/chat/completions", 405),
        ("PUT", "/v1/messages", 405),
    ],
)
def test_probes_head_and_routing_errors_carry_the_id(
    base_url: str, method: str, path: str, status: int
) -> None:
    headers = {"authorization": f"Bearer {KEY}"}
    response = httpx.request(method, base_url + path, headers=headers)
    assert response.status_code == status
    _generated(response.headers.get("x-request-id"))
    echoed = httpx.request(method, base_url + path, headers={**headers, "x-request-id": OWN_ID})
    assert echoed.status_code == status and echoed.headers["x-request-id"] == OWN_ID


def test_too_large_a_body_is_a_413_with_the_id(base_url: str) -> None:
    body = {"model": "echo/echo-1", "messages": [{"role": "user", "content": "x" * MAX_BODY}]}
    response = httpx.post(
        base_url + "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {KEY}"}
    )
    assert response.status_code == 413
    _generated(response.headers.get("x-request-id"))


@pytest.mark.parametrize(
    "unsafe",
    ["has space", "x" * 129, "", "semi;colon", 'quote"d', "ünicode"],
    ids=["space", "too long", "empty", "semicolon", "quote", "non-ascii"],
)
def test_an_unsafe_id_is_replaced(base_url: str, unsafe: str) -> None:
    response = httpx.get(base_url + "/healthz", headers=[(b"x-request-id", unsafe.encode())])
    assert response.status_code == 200
    _generated(response.headers["x-request-id"])
    assert response.headers.get_list("x-request-id") == [response.headers["x-request-id"]]


def test_the_longest_safe_id_is_kept(base_url: str) -> None:
    longest = "a-Z_0.9:" * 16
    assert len(longest) == 128
    response = httpx.get(base_url + "/healthz", headers={"x-request-id": longest})
    assert response.headers["x-request-id"] == longest


def test_a_header_injection_attempt_is_never_echoed(base_url: str) -> None:
    """httpx refuses to send a CR/LF in a header, so this one goes over a raw socket: an obs-fold continuation
    line (which some servers join into the value) and a bare CR inside the value."""
    address = urlsplit(base_url)
    host, port = address.hostname or "127.0.0.1", address.port or 80
    for injected in (b"abc\r\n set-cookie: evil=1", b"abc\rset-cookie: evil=1"):
        with socket.create_connection((host, port), timeout=10) as raw:
            raw.sendall(
                b"GET /healthz HTTP/1.1\r\nhost: gateway\r\nconnection: close\r\nx-request-id: "
                + injected
                + b"\r\n\r\n"
            )
            reply = b""
            while chunk := raw.recv(65536):
                reply += chunk
        head = reply.split(b"\r\n\r\n", 1)[0].lower()
        assert b"set-cookie" not in head and b"evil" not in head
        if head.startswith(b"http/1.1 200"):  # the server accepted the request: the id is a fresh one
            [line] = [line for line in head.split(b"\r\n") if line.startswith(b"x-request-id:")]
            _generated(line.split(b":", 1)[1].strip().decode())


_ONE_OF_EACH = [
    ("/v1/chat/completions", {"model": "echo/echo-1", "messages": HELLO}),
    ("/v1/chat/completions", {"model": "echo/echo-1", "messages": HELLO, "stream": True}),
    ("/v1/responses", {"model": "echo/echo-1", "input": "hi"}),
    ("/v1/responses", {"model": "echo/echo-1", "input": "hi", "stream": True}),
    ("/v1/messages", {"model": "echo/echo-1", "max_tokens": 9, "messages": HELLO}),
    ("/v1/messages", {"model": "echo/echo-1", "max_tokens": 9, "messages": HELLO, "stream": True}),
    ("/v1/embeddings", {"model": "echo/echo-1", "input": "hi"}),
    ("/v1/chat/completions", {"model": "echo/echo-1"}),  # a 400
    ("/v1/chat/completions", {"model": "nowhere/none", "messages": HELLO}),  # a 404
]


@pytest.mark.parametrize(("path", "body"), _ONE_OF_EACH)
def test_the_request_id_header_is_sent_exactly_once(
    base_url: str, path: str, body: dict[str, object]
) -> None:
    """One owner: the gateway's wrapper around `send` (`asgi.stamped`) puts the id on every answer; the
    senders no longer add it themselves, so no answer carries it twice (nor none)."""
    headers = {"authorization": f"Bearer {KEY}", "x-api-key": KEY, "x-request-id": OWN_ID}
    with httpx.stream("POST", base_url + path, json=body, headers=headers, timeout=30) as response:
        response.read()
    assert response.headers.get_list("x-request-id") == [OWN_ID], response.status_code
    if path == "/v1/messages":
        assert response.headers.get_list("request-id") == [OWN_ID]
