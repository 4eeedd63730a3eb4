"""The pipeline units on their own: `Attempts` (retry, fallback, slots, hooks), `relay` (events, usage, end
checks), `HookChain`, and `Call.record`. End-to-end behaviour through real clients lives in tests/e2e."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from asgi_llm_gateway import Call, GatewayError, Hooks, Policy, Target, UsageRecord
from asgi_llm_gateway.pipeline.attempts import Attempts
from asgi_llm_gateway.pipeline.hooks import HookChain, UsageHooks
from asgi_llm_gateway.pipeline.relay import relay
from asgi_llm_gateway.pipeline.slots import Slots
from asgi_llm_gateway.providers import EchoProvider

pytestmark = pytest.mark.anyio

FAST = Policy(max_attempts=3, backoff=0.0, max_backoff=0.0)
ECHO = EchoProvider()


def target(name: str, provider: str = "p") -> Target:
    return Target(provider, ECHO, name)


def call(**body: Any) -> Call:
    return Call("req_1", "chat.completions", None, "p/a", {"model": "p/a", **body})


def unavailable(message: str = "down") -> GatewayError:
    return GatewayError(message, status=503, code="upstream_unavailable")


class Recorder(Hooks):
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    async def attempt_started(self, call: Call, target: Target) -> None:
        self.events.append(("start", target.model, call.attempts))

    async def attempt_ended(self, call: Call, target: Target, error: GatewayError | None) -> None:
        self.events.append(("end", target.model, error.status if error else None))


def attempts(policy: Policy = FAST, **kwargs: Any) -> Attempts:
    return Attempts(lambda provider: policy, rng=random.Random(0), **kwargs)


async def test_first_success_is_the_outcome() -> None:
    the_call = call()

    async def attempt(target: Target, policy: Policy) -> str:
        return f"answer from {target.model}"

    outcome = await attempts().run(the_call, [target("a")], None, attempt)
    assert (outcome.result, outcome.target.model, outcome.attempts, outcome.release) == (
        "answer from a",
        "a",
        1,
        None,
    )
    assert outcome.policy is FAST
    assert (the_call.target, the_call.attempts) == (target("a"), 1)


async def test_retries_then_falls_back_to_the_next_target() -> None:
    tried: list[str] = []

    async def attempt(target: Target, policy: Policy) -> str:
        tried.append(target.model)
        if target.model == "a":
            raise unavailable()
        return "ok"

    the_call = call()
    outcome = await attempts().run(the_call, [target("a"), target("b")], None, attempt)
    assert tried == ["a", "a", "a", "b"]
    assert (outcome.target.model, outcome.attempts, the_call.attempts) == ("b", 4, 4)


async def test_an_error_that_cannot_fall_back_is_raised_at_once() -> None:
    tried: list[str] = []

    async def attempt(target: Target, policy: Policy) -> str:
        tried.append(target.model)
        raise GatewayError("bad request", status=400)

    with pytest.raises(GatewayError) as raised:
        await attempts().run(call(), [target("a"), target("b")], None, attempt)
    assert raised.value.status == 400 and tried == ["a"]


async def test_the_last_error_is_raised_when_every_target_fails() -> None:
    async def attempt(target: Target, policy: Policy) -> str:
        raise unavailable(f"{target.model} down")

    the_call = call()
    with pytest.raises(GatewayError) as raised:
        await attempts(Policy(max_attempts=1)).run(the_call, [target("a"), target("b")], None, attempt)
    assert raised.value.message == "b down"
    assert (the_call.target, the_call.attempts) == (target("b"), 2)


async def test_an_unexpected_exception_in_a_provider_is_a_502() -> None:
    async def attempt(target: Target, policy: Policy) -> str:
        raise KeyError("choices")

    with pytest.raises(GatewayError) as raised:
        await attempts(Policy(max_attempts=1)).run(call(), [target("a")], None, attempt)
    assert (raised.value.status, raised.value.code) == (502, "upstream_bad_response")


async def test_the_route_policy_wins_over_the_providers() -> None:
    seen: list[Policy] = []
    route_policy = Policy(max_attempts=1, total_timeout=5)

    async def attempt(target: Target, policy: Policy) -> str:
        seen.append(policy)
        return "ok"

    outcome = await attempts().run(call(), [target("a")], route_policy, attempt)
    assert seen == [route_policy] and outcome.policy is route_policy


async def test_a_kept_slot_is_held_until_released() -> None:
    limited = Policy(max_concurrency=1, queue_timeout=0.05)
    unit = attempts(limited)

    async def attempt(target: Target, policy: Policy) -> str:
        return "ok"

    outcome = await unit.run(call(), [target("a")], None, attempt, keep_slot=True)
    assert outcome.release is not None
    with pytest.raises(GatewayError) as raised:  # the only slot is taken
        await unit.run(call(), [target("a")], None, attempt)
    assert (raised.value.status, raised.value.code) == (503, "provider_busy")
    outcome.release()
    assert (await unit.run(call(), [target("a")], None, attempt)).result == "ok"


async def test_a_cancelled_attempt_frees_its_slot() -> None:
    slots = Slots()
    unit = attempts(Policy(max_concurrency=1, queue_timeout=0.05), slots=slots)

    async def hang(target: Target, policy: Policy) -> str:
        await anyio.sleep_forever()
        raise AssertionError

    with anyio.move_on_after(0.05):
        await unit.run(call(), [target("a")], None, hang)
    release = await slots.acquire("p", 1, 0.05)  # would raise 503 if the slot were still held
    assert release is not None


async def test_attempt_hooks_see_every_attempt_in_order() -> None:
    recorder = Recorder()

    async def attempt(target: Target, policy: Policy) -> str:
        if target.model == "a":
            raise unavailable()
        return "ok"

    await attempts(Policy(max_attempts=1), hooks=HookChain([recorder])).run(
        call(), [target("a"), target("b")], None, attempt
    )
    assert recorder.events == [("start", "a", 1), ("end", "a", 503), ("start", "b", 2), ("end", "b", None)]


async def test_a_failing_observer_hook_is_logged_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(Hooks):
        async def attempt_started(self, call: Call, target: Target) -> None:
            raise RuntimeError("observer bug")

    async def attempt(target: Target, policy: Policy) -> str:
        return "ok"

    with caplog.at_level(logging.ERROR, logger="asgi_llm_gateway"):
        outcome = await attempts(hooks=HookChain([Broken()])).run(call(), [target("a")], None, attempt)
    assert outcome.result == "ok"
    assert "Broken.attempt_started failed" in caplog.text


async def test_admission_refusal_propagates() -> None:
    class Refuse(Hooks):
        async def admit(self, call: Call, targets: Any) -> None:
            raise GatewayError("over budget", status=429, code="budget_exceeded")

    with pytest.raises(GatewayError) as raised:
        await HookChain([Refuse()]).admit(call(), [])
    assert raised.value.code == "budget_exceeded"


def test_no_hooks_means_no_chain() -> None:
    assert HookChain.of([]) is None


async def test_usage_hooks_hand_the_record_to_on_usage() -> None:
    records: list[UsageRecord] = []

    async def on_usage(record: UsageRecord) -> None:
        records.append(record)

    the_call = call(stream=True)
    the_call.target, the_call.attempts, the_call.usage = target("a"), 2, {"total_tokens": 3}
    await UsageHooks(on_usage).request_ended(the_call, the_call.record(200))
    [record] = records
    assert (record.target, record.provider, record.stream, record.usage, record.status) == (
        "p/a",
        "p",
        True,
        {"total_tokens": 3},
        200,
    )


def test_call_record_of_a_failed_call_carries_the_error() -> None:
    record = call().record(503, unavailable())
    assert record.target is None and record.error == {
        "message": "down",
        "type": "server_error",
        "param": None,
        "code": "upstream_unavailable",
    }


# -- relay --------------------------------------------------------------------------------------------


class Lines:
    """A door's encoder that writes one line per chunk, for checking what the relay hands it."""

    def encode(self, chunks: list[dict[str, Any]]) -> bytes:
        return b"".join(f"{chunk.get('choices')}\n".encode() for chunk in chunks)

    def close(self, failure: GatewayError | None) -> bytes:
        return f"end {failure.code if failure else 'ok'}\n".encode()


def chunk(index: int = 0, finish: str | None = None, **delta: Any) -> dict[str, Any]:
    return {"choices": [{"index": index, "delta": delta, "finish_reason": finish}]}


async def batches_of(*batches: list[dict[str, Any]], pause: float = 0) -> AsyncIterator[list[dict[str, Any]]]:
    for batch in batches:
        await anyio.sleep(pause)
        yield batch


async def relayed(
    first: list[dict[str, Any]], rest: AsyncIterator[list[dict[str, Any]]], *, idle_timeout: float = 5
) -> tuple[GatewayError | None, list[Any], Call]:
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    the_call = call(stream=True)
    async with anyio.create_task_group() as group:
        failure = await relay(
            the_call,
            target("a"),
            first,
            rest,
            Lines(),
            send,
            idle_timeout=idle_timeout,
            spawn=group.start_soon,
        )
        group.cancel_scope.cancel()
    return failure, sent, the_call


async def test_relay_sends_one_body_per_batch_and_records_usage() -> None:
    usage = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    failure, sent, the_call = await relayed(
        [chunk(content="a"), chunk(content="b")],
        batches_of([chunk(finish="stop"), {"choices": [], "usage": usage}]),
    )
    assert failure is None and the_call.usage == usage
    assert (
        sent[0]["status"] == 200
        and (b"content-type", b"text/event-stream; charset=utf-8") in sent[0]["headers"]
    )
    # the request id is not the relay's to add: the gateway's wrapper around `send` stamps every answer
    bodies = [message["body"] for message in sent[1:]]
    assert len(bodies) == 3 and bodies[-1] == b"end ok\n" and sent[-1]["more_body"] is False
    assert bodies[1].count(b"\n") == 2  # the finishing chunk and the usage chunk, in one send


async def test_relay_ends_a_cut_stream_with_an_error() -> None:
    failure, sent, _ = await relayed([chunk(content="a")], batches_of())
    assert failure is not None and failure.code == "upstream_stream_incomplete"
    assert sent[-1]["body"] == b"end upstream_stream_incomplete\n"


async def test_relay_waits_for_every_choice_to_finish() -> None:
    failure, _, _ = await relayed(
        [chunk(0, content="a"), chunk(1, content="b")], batches_of([chunk(0, finish="stop")])
    )
    assert failure is not None and failure.code == "upstream_stream_incomplete"


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])  # a loop timer, or a helper task
async def test_relay_ends_a_quiet_stream_with_a_timeout(anyio_backend: str) -> None:
    failure, sent, _ = await relayed(
        [chunk(content="a")], batches_of([chunk(finish="stop")], pause=1), idle_timeout=0.05
    )
    assert failure is not None and failure.status == 504
    assert sent[-1]["body"] == b"end upstream_timeout\n"


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])  # a loop timer, or a helper task
async def test_a_stream_whose_batches_come_within_the_idle_timeout_is_never_cut(anyio_backend: str) -> None:
    """The watch re-arms for what is left since the last batch: a stream slower in all than the idle timeout,
    but never quiet that long, runs to its end."""
    batches = [[chunk(content="b")]] * 5 + [[chunk(finish="stop")]]
    failure, sent, _ = await relayed(
        [chunk(content="a")], batches_of(*batches, pause=0.06), idle_timeout=0.15
    )
    assert failure is None and sent[-1]["body"] == b"end ok\n"


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])  # a loop timer, or a helper task
async def test_a_finished_stream_stops_its_idle_watch_by_itself(anyio_backend: str) -> None:
    """The relay stops the idle watch without a cancellation: the timer is cancelled (asyncio) or the watch
    task returns on its next wake (trio), so the helpers' group ends without being cancelled, and a stream
    that finished is no timeout however long the request lasts afterwards."""
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            failure = await relay(
                call(stream=True),
                target("a"),
                [chunk(content="a")],
                batches_of([chunk(finish="stop")]),
                Lines(),
                send,
                idle_timeout=0.05,
                spawn=group.start_soon,
            )
            await anyio.sleep(0.15)  # past the idle timeout: the watch wakes, sees the stream ended, returns
    assert failure is None and sent[-1]["body"] == b"end ok\n"


async def test_relay_turns_an_upstream_error_mid_stream_into_the_error_event() -> None:
    async def broken() -> AsyncIterator[list[dict[str, Any]]]:
        yield [chunk(content="b")]
        raise GatewayError("bad bytes", status=502, code="upstream_bad_response")

    failure, sent, _ = await relayed([chunk(content="a")], broken())
    assert failure is not None and sent[-1]["body"] == b"end upstream_bad_response\n"


class _SlowCounter(EchoProvider):
    """Counts tokens natively, and never in time."""

    def speaks_messages(self, model: str) -> bool:
        return True

    async def count_message_tokens(self, body: Any, model: str, beta: Any) -> int:
        await anyio.sleep(30)
        return 1


async def test_count_tokens_timeout_is_a_504() -> None:
    """Regression: count_tokens ran under `fail_after` with nothing to turn the TimeoutError into the 504
    every other call gives, so the attempts unit logged a provider bug and answered 502."""
    import httpx

    from asgi_llm_gateway import Gateway

    gateway = Gateway(
        providers={"slow": _SlowCounter()},
        policy=Policy(max_attempts=1, total_timeout=0.05),
    )
    transport = httpx.ASGITransport(app=gateway)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        response = await client.post(
            "/v1/messages/count_tokens",
            json={"model": "slow/m", "messages": [{"role": "user", "content": "hi"}]},
            headers={"anthropic-version": "2023-06-01"},
        )
    assert response.status_code == 504
    assert response.json()["error"]["type"] == "timeout_error"


async def test_gateway_aclose_closes_every_hook_and_a_limits_hooks_limiter() -> None:
    """Regression: `Gateway.aclose` closed providers and the response store but no hook, so a `LimitsHook`'s
    `RedisLimiter` kept its connection pool open after shutdown. One hook failing to close must not keep
    the others open."""
    from asgi_llm_gateway import Gateway
    from asgi_llm_gateway.limits import LimitsHook, MemoryLimiter, Rule

    closed: list[str] = []

    class Closing(Hooks):
        def __init__(self, name: str, fail: bool = False) -> None:
            self.name, self.fail = name, fail

        async def aclose(self) -> None:
            closed.append(self.name)
            if self.fail:
                raise RuntimeError("cannot close")

    class Limiter(MemoryLimiter):
        async def aclose(self) -> None:
            closed.append("limiter")

    limits = LimitsHook(Limiter(), [Rule("requests", 10)])
    gateway = Gateway(hooks=[Closing("first", fail=True), limits, Closing("last")])
    await gateway.aclose()
    assert closed == ["first", "limiter", "last"]
