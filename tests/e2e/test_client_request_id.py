"""The call's request id reaches upstreams that take a client request id, through the real openai SDK over
loopback, with no hooks configured: the client's own `x-request-id`, or the id the gateway generated, is the
`X-Client-Request-Id` the fake OpenAI upstream receives, on every door and every attempt (a retry and a
fallback carry the same id); a provider that documents no such header sends none.

The provider with the header is `OpenAIProvider` (`client_request_id_header`, data on the class, names
OpenAI's `X-Client-Request-Id`); Azure's names none and reads its answers' id from `apim-request-id`."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

import httpx
import openai
import pytest

from asgi_llm_gateway import Call, Gateway, Hooks, Policy, UsageRecord
from asgi_llm_gateway.providers import AzureOpenAIProvider, OpenAICompatibleProvider, OpenAIProvider
from tests.fakes.openai import KEY, FakeOpenAI, Fault
from tests.support.server import serve

OWN_ID = "trace-7f3a.span_9:01"
GENERATED = re.compile(r"req_[0-9a-f]{24}")
HELLO = [{"role": "user", "content": "Hello"}]
HEADER = "x-client-request-id"  # as the fake records it (httpx's header names, lowercased)


class Rig:
    """Two fake OpenAI upstreams: "a" behind a provider that sends the id, "b" behind one that does not."""

    def __init__(self, url: str, a: FakeOpenAI, b: FakeOpenAI, a_url: str) -> None:
        self.url, self.a, self.b, self.a_url = url, a, b, a_url

    def received(self, fake: FakeOpenAI, since: int) -> list[str | None]:
        return [request["headers"].get(HEADER) for request in fake.requests[since:]]


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    a, b = FakeOpenAI(), FakeOpenAI()
    with serve(a.app()) as a_url, serve(b.app()) as b_url:
        gateway = Gateway(
            providers={
                "a": OpenAIProvider(api_key=KEY, base_url=f"{a_url}/v1"),
                "b": OpenAICompatibleProvider(api_key=KEY, base_url=f"{b_url}/v1"),
            },
            routes={"ab": ["a/gpt-4.1", "b/gpt-4.1"]},
            policy=Policy(max_attempts=2, backoff=0.01, max_backoff=0.05),
        )
        assert gateway.hooks is None  # the id goes upstream without any hook
        with serve(gateway) as url:
            yield Rig(url, a, b, a_url)


def _client(rig: Rig, request_id: str | None = None) -> openai.OpenAI:
    headers = {"x-request-id": request_id} if request_id else None
    return openai.OpenAI(base_url=rig.url + "/v1", api_key="unused", max_retries=0, default_headers=headers)


def _chat(client: openai.OpenAI, model: str) -> str | None:
    return client.chat.completions.create(model=model, messages=HELLO)._request_id  # type: ignore[arg-type]


def _chat_stream(client: openai.OpenAI, model: str) -> str | None:
    with client.chat.completions.with_streaming_response.create(
        model=model,
        messages=HELLO,  # type: ignore[arg-type]
        stream=True,
    ) as response:
        assert "".join(response.iter_lines())
        return response.request_id


def _responses(client: openai.OpenAI, model: str) -> str | None:
    return client.responses.create(model=model, input="hello", store=False)._request_id


def _embeddings(client: openai.OpenAI, model: str) -> str | None:
    return client.embeddings.create(
        model=model.replace("gpt-4.1", "text-embedding-3-small"), input="hi"
    )._request_id


DOORS: dict[str, Callable[[openai.OpenAI, str], str | None]] = {
    "chat": _chat,
    "chat stream": _chat_stream,
    "responses": _responses,
    "embeddings": _embeddings,
}


@pytest.mark.parametrize("door", DOORS)
def test_the_clients_own_id_goes_upstream_as_x_client_request_id(rig: Rig, door: str) -> None:
    since = len(rig.a.requests)
    with _client(rig, OWN_ID) as client:
        assert DOORS[door](client, "a/gpt-4.1") == OWN_ID
    assert rig.received(rig.a, since) == [OWN_ID]


@pytest.mark.parametrize("door", DOORS)
def test_a_generated_id_goes_upstream_too(rig: Rig, door: str) -> None:
    since = len(rig.a.requests)
    with _client(rig) as client:
        answered = DOORS[door](client, "a/gpt-4.1")
    assert answered is not None and GENERATED.fullmatch(answered)
    assert rig.received(rig.a, since) == [answered]


def test_every_attempt_carries_the_calls_id_and_a_provider_without_the_header_sends_none(rig: Rig) -> None:
    """Two failed attempts on "a" (a retry), then the fallback to "b", whose provider names no header."""
    a_since, b_since = len(rig.a.requests), len(rig.b.requests)
    rig.a.faults += [Fault(503, {"error": {"message": "busy"}})] * 2
    with _client(rig) as client:
        answer = client.chat.completions.with_raw_response.create(model="ab", messages=HELLO)  # type: ignore[arg-type]
    assert answer.http_response.headers["x-llm-gateway-target"] == "b/gpt-4.1"
    answered = answer.request_id
    assert answered is not None and GENERATED.fullmatch(answered)
    assert rig.received(rig.a, a_since) == [answered, answered]
    assert rig.received(rig.b, b_since) == [None]


def test_the_fake_refuses_a_client_request_id_openai_would_refuse(rig: Rig) -> None:
    """What the real API refuses (not ASCII, over 512 characters); the gateway's ids (1-128 safe characters)
    never are."""
    body = {"model": "gpt-4.1", "messages": HELLO}
    auth = (b"authorization", f"Bearer {KEY}".encode())
    for value, status in ((b"x" * 512, 200), (b"x" * 513, 400), ("é".encode(), 400)):
        response = httpx.post(
            rig.a_url + "/v1/chat/completions",
            json=body,
            headers=[auth, (b"x-client-request-id", value)],
        )
        assert response.status_code == status, value


def test_azure_sends_no_client_id_and_its_apim_request_id_is_recorded() -> None:
    """Azure's spec documents no client request id header, and names its answers' id `apim-request-id`."""
    ended: list[str | None] = []

    class Record(Hooks):
        async def request_ended(self, call: Call, record: UsageRecord) -> None:
            ended.append(call.upstream_request_id)

    azure = FakeOpenAI(flavour="azure")
    with serve(azure.app()) as azure_url:
        provider = AzureOpenAIProvider(api_key=KEY, base_url=azure_url, api_version="2024-10-21")
        with serve(Gateway(providers={"azure": provider}, hooks=[Record()])) as url:
            client = openai.OpenAI(base_url=url + "/v1", api_key="any", max_retries=0)
            client.chat.completions.create(model="azure/gpt-4.1", messages=HELLO)  # type: ignore[arg-type]
            client.close()
    deadline = time.monotonic() + 5
    while not ended and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ended and ended[0] is not None and ended[0].startswith("req_upstream")
    assert [request["headers"].get(HEADER) for request in azure.requests] == [None]
