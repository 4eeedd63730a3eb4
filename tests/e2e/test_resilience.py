"""Fault injection: what the client sees and what the upstream saw, for each failure mode (issue 6)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest

from asgi_llm_gateway import Gateway
from asgi_llm_gateway.policy import Group, Policy, Route
from asgi_llm_gateway.providers import OpenAIProvider
from asgi_llm_gateway.usage import UsageRecord
from tests.fakes.openai import KEY, FakeOpenAI, Fault
from tests.support.server import ServedURL, serve

FAST = Policy(backoff=0.01, max_backoff=0.05)
HELLO = [{"role": "user", "content": "hello there"}]


def error_body(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "server_error", "param": None, "code": None}}


class Rig:
    """Two fake upstreams (`a` and `b`) behind one gateway, plus the usage records it produced."""

    def __init__(self, a: FakeOpenAI, b: FakeOpenAI, gateway: Gateway, url: ServedURL) -> None:
        self.a, self.b, self.gateway, self.url = a, b, gateway, url
        self.records: list[UsageRecord] = []

    def client(self, **options: Any) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key="client", max_retries=0, **options)


@pytest.fixture
def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    marker = request.node.get_closest_marker("gateway")
    options: dict[str, Any] = dict(marker.kwargs) if marker else {}
    a, b = FakeOpenAI(), FakeOpenAI()
    records: list[UsageRecord] = []

    async def on_usage(record: UsageRecord) -> None:
        records.append(record)

    with serve(a.app()) as a_url, serve(b.app()) as b_url:
        gateway = Gateway(
            providers={
                "a": OpenAIProvider(api_key=KEY, base_url=a_url + "/v1"),
                "b": OpenAIProvider(api_key=KEY, base_url=b_url + "/v1"),
            },
            routes=options.pop("routes", {"ab": ["a/m", "b/m"]}),
            policy=options.pop("policy", FAST),
            on_usage=on_usage,
            **options,
        )
        with serve(gateway) as url:
            rig = Rig(a, b, gateway, url)
            rig.records = records
            yield rig


def wait_for(condition: Callable[[], object], seconds: float = 3.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_fails_twice_then_succeeds(rig: Rig) -> None:
    rig.a.faults += [Fault(500, error_body("boom")), Fault(502, error_body("bad gateway"))]
    with rig.client() as client:
        raw = client.chat.completions.with_raw_response.create(model="a/m", messages=HELLO)
    assert raw.parse().choices[0].message.content == "hello there"
    assert raw.headers["x-llm-gateway-attempts"] == "3"
    assert len(rig.a.requests) == 3 and not rig.b.requests


def test_429_retry_after_is_honoured(rig: Rig) -> None:
    rig.a.faults.append(Fault(429, error_body("slow down"), {"retry-after": "0.6"}))
    started = time.monotonic()
    with rig.client() as client:
        completion = client.chat.completions.create(model="a/m", messages=HELLO)
    assert time.monotonic() - started >= 0.55
    assert completion.choices[0].message.content == "hello there"
    assert len(rig.a.requests) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413])
def test_client_errors_are_never_retried(rig: Rig, status: int) -> None:
    rig.a.faults.append(Fault(status, error_body("no")))
    with rig.client() as client, pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model="ab", messages=HELLO)
    assert len(rig.a.requests) == 1 and not rig.b.requests


def test_x_should_retry_false_is_not_retried_but_may_fall_back(rig: Rig) -> None:
    """As the official SDKs do, the upstream's `x-should-retry: false` wins over its status: one attempt on
    that target; another target may still answer."""
    fault = Fault(503, error_body("do not bother"), {"x-should-retry": "false"})
    rig.a.faults.append(fault)
    with rig.client() as client, pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="a/m", messages=HELLO)
    assert caught.value.status_code == 503 and len(rig.a.requests) == 1
    rig.a.faults.append(fault)
    with rig.client() as client:
        assert client.chat.completions.create(model="ab", messages=HELLO).model == "b/m"
    assert (len(rig.a.requests), len(rig.b.requests)) == (2, 1)


def test_x_should_retry_true_retries_what_the_status_alone_would_not(rig: Rig) -> None:
    rig.a.faults.append(Fault(409, error_body("lock timeout, try again"), {"x-should-retry": "true"}))
    with rig.client() as client:
        raw = client.chat.completions.with_raw_response.create(model="a/m", messages=HELLO)
    assert raw.parse().choices[0].message.content == "hello there"
    assert raw.headers["x-llm-gateway-attempts"] == "2" and len(rig.a.requests) == 2


@pytest.mark.gateway(policy=Policy(max_attempts=2, backoff=0.01))
def test_fallback_to_the_next_target_names_who_answered(rig: Rig) -> None:
    rig.a.faults += [Fault(503, error_body("overloaded"))] * 2
    with rig.client() as client:
        raw = client.chat.completions.with_raw_response.create(model="ab", messages=HELLO)
    completion = raw.parse()
    assert completion.model == "b/m"
    assert raw.headers["x-llm-gateway-provider"] == "b"
    assert (len(rig.a.requests), len(rig.b.requests)) == (2, 1)


@pytest.mark.gateway(policy=Policy(max_attempts=1, backoff=0.01, max_backoff=0.05, budget=60))
def test_long_retry_after_moves_on_to_the_fallback_instead_of_waiting(rig: Rig) -> None:
    rig.a.faults.append(Fault(429, error_body("later"), {"retry-after": "30"}))
    started = time.monotonic()
    with rig.client() as client:
        assert client.chat.completions.create(model="ab", messages=HELLO).model == "b/m"
    assert time.monotonic() - started < 5


@pytest.mark.gateway(
    routes={
        "ab": Route(
            ["a/m", "b/m"], policy=Policy(max_attempts=1, fallback_on=frozenset({"context_length_exceeded"}))
        )
    }
)
def test_fallback_on_context_length_when_enabled(rig: Rig) -> None:
    rig.a.faults.append(
        Fault(
            400,
            {
                "error": {
                    "message": "too long",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "context_length_exceeded",
                }
            },
        )
    )
    with rig.client() as client:
        assert client.chat.completions.create(model="ab", messages=HELLO).model == "b/m"


def test_all_targets_failing_gives_the_last_error(rig: Rig) -> None:
    rig.a.faults += [Fault(500, error_body("a down"))] * 3
    rig.b.faults += [Fault(503, error_body("b down"))] * 3
    with rig.client() as client, pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="ab", messages=HELLO)
    assert caught.value.status_code == 503
    assert (len(rig.a.requests), len(rig.b.requests)) == (3, 3)
    wait_for(lambda: rig.records)  # the usage hook runs after the response is sent
    assert rig.records[-1].status == 503 and rig.records[-1].target == "b/m"


def test_stream_is_retried_before_the_first_byte(rig: Rig) -> None:
    rig.a.faults.append(Fault(503, error_body("busy")))
    with rig.client() as client:
        text = "".join(
            chunk.choices[0].delta.content or ""
            for chunk in client.chat.completions.create(model="a/m", messages=HELLO, stream=True)
        )
    assert text == "hello there"
    assert len(rig.a.requests) == 2


def test_stream_failing_after_the_first_byte_is_not_retried_and_never_claims_stop(rig: Rig) -> None:
    rig.a.faults.append(Fault(None, cut_after=2))
    chunks = []
    with rig.client() as client, pytest.raises(openai.APIError):
        for chunk in client.chat.completions.create(model="ab", messages=HELLO, stream=True):
            chunks.append(chunk)
    assert chunks and all(c.choices[0].finish_reason is None for c in chunks)
    assert len(rig.a.requests) == 1 and not rig.b.requests


@pytest.mark.gateway(policy=Policy(max_attempts=1, total_timeout=0.5))
def test_slow_first_byte_non_streaming_is_504(rig: Rig) -> None:
    rig.a.faults.append(Fault(None, delay=3))
    started = time.monotonic()
    with rig.client() as client, pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="a/m", messages=HELLO)
    assert caught.value.status_code == 504
    assert caught.value.code == "upstream_timeout"
    assert time.monotonic() - started < 2.5


@pytest.mark.gateway(policy=Policy(max_attempts=1, first_token_timeout=0.5))
def test_slow_first_token_streaming_is_504(rig: Rig) -> None:
    rig.a.faults.append(Fault(None, delay=3))
    with rig.client() as client, pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="a/m", messages=HELLO, stream=True)
    assert caught.value.status_code == 504


@pytest.mark.gateway(policy=Policy(max_attempts=1, idle_timeout=0.5))
def test_stall_mid_stream_ends_in_an_error_event(rig: Rig) -> None:
    rig.a.faults.append(Fault(None, stall_after=2, stall=10))
    started = time.monotonic()
    with rig.client() as client, pytest.raises(openai.APIError) as caught:
        list(client.chat.completions.create(model="a/m", messages=HELLO, stream=True))
    assert "timed out" in caught.value.message
    assert time.monotonic() - started < 3


def test_garbage_stream_event_is_an_error(rig: Rig) -> None:
    rig.a.faults += [Fault(200, raw="data: {not json\n\n", headers={"content-type": "text/event-stream"})] * 3
    with rig.client() as client, pytest.raises(openai.APIStatusError) as caught:
        list(client.chat.completions.create(model="a/m", messages=HELLO, stream=True))
    assert caught.value.status_code == 502


def test_wrong_content_type_for_a_stream_is_502(rig: Rig) -> None:
    rig.a.faults += [Fault(200, body={"unexpected": "json"})] * 3
    with rig.client() as client, pytest.raises(openai.APIStatusError) as caught:
        list(client.chat.completions.create(model="a/m", messages=HELLO, stream=True))
    assert caught.value.status_code == 502


@pytest.mark.gateway(
    routes={"pool": [Group({"a/m": 1, "b/m": 1})]},
    policy=Policy(max_attempts=1, cooldown_after=1, cooldown=60),
)
def test_failing_deployment_is_cooled_down_and_skipped(rig: Rig) -> None:
    rig.gateway.rng = random.Random(1)
    rig.a.faults += [Fault(500, error_body("a is broken"))] * 50
    with rig.client() as client:
        for _ in range(20):
            assert client.chat.completions.create(model="pool", messages=HELLO).model == "b/m"
    assert len(rig.a.requests) <= 1, "a must be skipped once it is cooling down"
    assert len(rig.b.requests) == 20


@pytest.mark.gateway(policy=Policy(max_attempts=1, cooldown_after=1, cooldown=60))
def test_cooled_down_target_is_tried_last_not_never(rig: Rig) -> None:
    """Issue 12: `a` is cooling down when `b`, the only healthy target, fails; `a` (recovered by now) must
    still get its chance, after `b`, instead of the call failing untried."""
    rig.a.faults.append(Fault(500, error_body("a hiccup")))
    with rig.client() as client:
        assert client.chat.completions.create(model="ab", messages=HELLO).model == "b/m"  # a cools down
        rig.b.faults.append(Fault(503, error_body("b down")))
        raw = client.chat.completions.with_raw_response.create(model="ab", messages=HELLO)
        assert raw.parse().model == "a/m"
        assert raw.headers["x-llm-gateway-attempts"] == "2"  # b first (healthy), then a (cooling)
        assert (len(rig.a.requests), len(rig.b.requests)) == (2, 2)
        # a's success ended its cooldown, and b is the one cooling now: a is first again.
        assert client.chat.completions.create(model="ab", messages=HELLO).model == "a/m"
    assert (len(rig.a.requests), len(rig.b.requests)) == (3, 2)


@pytest.mark.gateway(routes={"pool": [Group({"a/m": 9, "b/m": 1})]})
def test_weighted_load_balancing(rig: Rig) -> None:
    """100 different conversations spread over the group by its weights (one conversation sticks to one
    deployment: cache affinity, tests/e2e/test_caching_affinity.py)."""
    rig.gateway.rng = random.Random(7)
    with rig.client() as client:
        for n in range(100):
            client.chat.completions.create(model="pool", messages=[{"role": "user", "content": f"hello {n}"}])
    assert 75 <= len(rig.a.requests) <= 98
    assert len(rig.a.requests) + len(rig.b.requests) == 100


@pytest.mark.gateway(provider_policies={"a": Policy(max_concurrency=1, queue_timeout=0.3, max_attempts=1)})
def test_concurrency_limit_sheds_load_with_503(rig: Rig) -> None:
    rig.a.faults.append(Fault(None, delay=1.5))

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=rig.url + "/v1", timeout=10) as http:
            body = {"model": "a/m", "messages": HELLO}
            slow = asyncio.create_task(http.post("/chat/completions", json=body))
            await asyncio.sleep(0.2)
            shed = await http.post("/chat/completions", json=body)
            assert shed.json()["error"]["code"] == "provider_busy"
            return [(await slow).status_code, shed.status_code]

    assert asyncio.run(burst()) == [200, 503]
    assert len(rig.a.requests) == 1


def test_client_disconnect_cancels_the_upstream_call_promptly(rig: Rig) -> None:
    rig.a.faults.append(Fault(None, delay=5))
    with rig.client(timeout=0.5) as client, pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="a/m", messages=HELLO)
    wait_for(lambda: rig.records)
    assert [r.status for r in rig.records] == [499]


def test_client_disconnect_mid_stream_stops_reading_upstream(rig: Rig) -> None:
    rig.a.chunk_delay = 0.05
    long_text = " ".join(f"w{i}" for i in range(200))
    with rig.client() as client:
        stream = client.chat.completions.create(
            model="a/m", messages=[{"role": "user", "content": long_text}], stream=True
        )
        for index, _ in enumerate(stream):
            if index == 3:
                break
        stream.close()
    wait_for(lambda: rig.records and rig.a.abandoned)
    assert [r.status for r in rig.records] == [499]
    assert rig.a.abandoned == 1, "the upstream stream must be dropped, not read to its end"


def test_upstream_garbage_never_becomes_a_500_traceback(rig: Rig) -> None:
    for raw in ("", "null", "[]", '{"choices": "nope"}', '{"choices": [{"index": 0}]}'):
        rig.a.faults += [Fault(200, raw=raw, headers={"content-type": "application/json"})] * 3
        response = httpx.post(
            rig.url + "/v1/chat/completions", json={"model": "a/m", "messages": HELLO}, timeout=5
        )
        assert response.status_code == 502, raw
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_no_task_or_connection_leak_after_many_random_disconnects(rig: Rig) -> None:
    """A few thousand requests, a third of them abandoned at a random moment; afterwards the gateway's
    tasks and upstream connections are back to baseline."""
    rig.a.chunk_delay = 0.002
    provider = rig.gateway.providers["a"]
    assert isinstance(provider, OpenAIProvider)
    gateway_loop = rig.url.loop

    def gateway_tasks() -> int:
        return len(asyncio.all_tasks(gateway_loop))

    def in_use_connections() -> int:
        connector = provider.client._transport.client.connector  # type: ignore[attr-defined]
        return sum(len(handlers) for handlers in connector._acquired_per_host.values())

    httpx.post(rig.url + "/v1/chat/completions", json={"model": "a/m", "messages": HELLO}, timeout=5)
    baseline_tasks = gateway_tasks()

    outcomes = {"completed": 0, "abandoned": 0}

    async def one(http: httpx.AsyncClient, rng: random.Random) -> None:
        body = {
            "model": "a/m",
            "messages": [{"role": "user", "content": "a b c d e f g h"}],
            "stream": rng.random() < 0.5,
        }
        request = http.post("/v1/chat/completions", json=body)
        if rng.random() < 0.35:
            try:
                await asyncio.wait_for(request, timeout=rng.uniform(0.0005, 0.02))
            except (asyncio.TimeoutError, httpx.HTTPError):
                outcomes["abandoned"] += 1
                return
        else:
            response = await request
            assert response.status_code == 200
        outcomes["completed"] += 1

    async def load() -> None:
        rng = random.Random(3)
        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(base_url=rig.url, timeout=10, limits=limits) as http:
            for _ in range(25):
                await asyncio.gather(*(one(http, rng) for _ in range(80)))

    asyncio.run(load())
    deadline = time.monotonic() + 5
    while (gateway_tasks() > baseline_tasks or in_use_connections()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gateway_tasks() <= baseline_tasks
    assert in_use_connections() == 0
    assert outcomes["completed"] + outcomes["abandoned"] == 2000
    assert outcomes["abandoned"] >= 400
