"""Hooks through the real client: the openai SDK against the gateway on loopback, in front of two fake OpenAI
upstreams. What a hook sees for a plain call, a retried-then-fallen-back call, a stream, an admission refusal
and a client that leaves; and that `on_usage` gets the same record as `request_ended`."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

import anyio
import openai
import pytest

from asgi_llm_gateway import Call, Gateway, GatewayError, Hooks, Policy, Target, UsageRecord
from asgi_llm_gateway.providers import OpenAIProvider
from tests.fakes.openai import KEY, FakeOpenAI, Fault
from tests.support.server import serve

HELLO = [{"role": "user", "content": "hello there"}]


class Recorder(Hooks):
    """Every hook call, in order, as (hook, detail)."""

    def __init__(self, refuse: bool = False) -> None:
        self.events: list[tuple[str, Any]] = []
        self.refuse = refuse

    async def request_started(self, call: Call) -> None:
        self.events.append(("request_started", (call.endpoint, call.model, call.stream)))
        call.state[Recorder] = "reserved"

    async def admit(self, call: Call, targets: Sequence[Target]) -> None:
        self.events.append(("admit", [target.name for target in targets]))
        if self.refuse:
            raise GatewayError("Budget exhausted for this key.", status=429, code="budget_exceeded")

    async def attempt_started(self, call: Call, target: Target) -> None:
        self.events.append(("attempt_started", (target.name, call.attempts)))

    async def attempt_ended(self, call: Call, target: Target, error: GatewayError | None) -> None:
        self.events.append(("attempt_ended", (target.name, error.status if error else None)))

    async def request_ended(self, call: Call, record: UsageRecord) -> None:
        self.events.append(("request_ended", (record.status, record.target, call.state.get(Recorder))))
        self.record = record

    def names(self) -> list[str]:
        return [name for name, _ in self.events]


class Rig:
    def __init__(
        self, a: FakeOpenAI, b: FakeOpenAI, hooks: Recorder, usage: list[UsageRecord], url: str
    ) -> None:
        self.a, self.b, self.hooks, self.usage, self.url = a, b, hooks, usage, url

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key="client", max_retries=0)


@pytest.fixture(params=[False], ids=["admitting"])
def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    a, b, hooks = FakeOpenAI(), FakeOpenAI(), Recorder(refuse=request.param)
    usage: list[UsageRecord] = []

    async def on_usage(record: UsageRecord) -> None:
        usage.append(record)

    with serve(a.app()) as a_url, serve(b.app()) as b_url:
        gateway = Gateway(
            providers={
                "a": OpenAIProvider(api_key=KEY, base_url=a_url + "/v1"),
                "b": OpenAIProvider(api_key=KEY, base_url=b_url + "/v1"),
            },
            routes={"ab": ["a/m", "b/m"]},
            policy=Policy(max_attempts=2, backoff=0.01, max_backoff=0.05),
            on_usage=on_usage,
            hooks=[hooks],
        )
        with serve(gateway) as url:
            yield Rig(a, b, hooks, usage, url)


def wait_for_end(rig: Rig) -> None:
    deadline = time.monotonic() + 3
    while "request_ended" not in rig.hooks.names() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_a_plain_call_passes_every_hook_once_in_order(rig: Rig) -> None:
    with rig.client() as client:
        client.chat.completions.create(model="a/m", messages=HELLO)
    wait_for_end(rig)
    assert rig.hooks.events == [
        ("request_started", ("chat.completions", "a/m", False)),
        ("admit", ["a/m"]),
        ("attempt_started", ("a/m", 1)),
        ("attempt_ended", ("a/m", None)),
        ("request_ended", (200, "a/m", "reserved")),
    ]
    assert rig.usage == [rig.hooks.record]  # on_usage is a hook like any other: the same record
    assert rig.usage[0].usage is not None and rig.usage[0].usage["total_tokens"] > 0


def test_retries_and_fallback_are_attempts_a_hook_sees(rig: Rig) -> None:
    rig.a.faults += [Fault(503, {"error": {"message": "busy"}})] * 2
    with rig.client() as client:
        assert client.chat.completions.create(model="ab", messages=HELLO).model == "b/m"
    wait_for_end(rig)
    attempts = [detail for name, detail in rig.hooks.events if name.startswith("attempt_")]
    assert attempts == [("a/m", 1), ("a/m", 503), ("a/m", 2), ("a/m", 503), ("b/m", 3), ("b/m", None)]
    assert rig.usage[0].target == "b/m"


def test_a_stream_ends_its_call_after_its_last_chunk(rig: Rig) -> None:
    with rig.client() as client:
        stream = client.chat.completions.create(
            model="a/m", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "hello there"
    wait_for_end(rig)
    assert rig.hooks.names() == [
        "request_started",
        "admit",
        "attempt_started",
        "attempt_ended",
        "request_ended",
    ]
    assert rig.usage[0].stream and rig.usage[0].status == 200 and rig.usage[0].usage is not None


@pytest.mark.parametrize("rig", [True], ids=["refusing"], indirect=True)
def test_an_admission_refusal_reaches_the_client_and_no_upstream(rig: Rig) -> None:
    with rig.client() as client, pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="ab", messages=HELLO)
    assert caught.value.body["code"] == "budget_exceeded"  # type: ignore[index]
    assert not rig.a.requests and not rig.b.requests
    wait_for_end(rig)
    assert rig.hooks.names() == ["request_started", "admit", "request_ended"]  # a started call always ends
    [record] = rig.usage
    assert (record.status, record.target, record.error["code"]) == (429, None, "budget_exceeded")  # type: ignore[index]


def test_a_call_the_client_abandons_ends_with_499(rig: Rig) -> None:
    rig.a.faults.append(Fault(None, delay=2.0))
    with rig.client() as client, pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.3).chat.completions.create(model="a/m", messages=HELLO)
    wait_for_end(rig)
    assert rig.hooks.events[-1][1][0] == 499 and rig.usage[-1].status == 499


class SlowRecorder(Hooks):
    """A `request_ended` that awaits before it records, as one that writes to a database does."""

    def __init__(self) -> None:
        self.records: list[UsageRecord] = []

    async def request_ended(self, call: Call, record: UsageRecord) -> None:
        await anyio.sleep(0.05)
        self.records.append(record)


@pytest.mark.parametrize("fail", [False, True], ids=["answered", "failed"])
def test_a_hook_that_awaits_in_request_ended_gets_every_record(fail: bool) -> None:
    """Regression: after a non-streamed answer (or an error answer) the client's `http.disconnect` made the
    disconnect watch cancel the request's scope while the call was being settled, so a `request_ended` (or
    `on_usage`) that awaited anything was cancelled and the record lost; only streams kept theirs."""
    upstream, slow = FakeOpenAI(), SlowRecorder()
    if fail:
        upstream.faults += [
            Fault(400, {"error": {"message": "refused", "type": "invalid_request_error"}})
        ] * 3
    with serve(upstream.app()) as upstream_url:
        gateway = Gateway(
            providers={"a": OpenAIProvider(api_key=KEY, base_url=upstream_url + "/v1")},
            policy=Policy(max_attempts=1),
            hooks=[slow],
        )
        with serve(gateway) as url, openai.OpenAI(base_url=url + "/v1", api_key="c", max_retries=0) as client:
            for _ in range(3):
                with contextlib.suppress(openai.APIError):
                    client.chat.completions.create(model="a/m", messages=HELLO)
            deadline = time.monotonic() + 3
            while len(slow.records) < 3 and time.monotonic() < deadline:
                time.sleep(0.02)
    assert len(slow.records) == 3
    assert {record.status for record in slow.records} == ({400} if fail else {200})
